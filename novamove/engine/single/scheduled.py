"""The pre-checks of a move without a named target (Nova's scheduler chooses the host)."""

from __future__ import annotations

from novamove import errors
from novamove.engine.resolve import resolve_server
from novamove.engine.single import checks, preflight
from novamove.model import Server


def prepare_unnamed(cloud, server_ref: str, *, mode: str, strategy: str) -> tuple[Server, str, list[str]]:
    """(server, mode, the hosts that pass the pre-checks); refuses as a named target would:
    a busy or unmovable server, a down source, and no host that passes."""
    checks.check_unnamed_strategy(strategy)   # bad input: refused before any read
    server = resolve_server(cloud, server_ref)
    chosen_mode = checks.choose_mode(server, mode)
    hosts = cloud.compute_hosts(with_resources=True)
    checks.check_source(server, {h.name: h for h in hosts}.get(server.host))
    candidates, refused = checks.scheduler_candidates(server, hosts)
    candidates, predicted = preflight.filter_candidates(cloud, server, chosen_mode, hosts, candidates)
    refused += predicted
    if not candidates:
        why = "; ".join(refused) if refused else "it is the only compute"
        raise errors.NoCapacity(f"no other compute can take {server.name}: {why}")
    return server, chosen_mode, candidates
