"""Pre-flight: the refusals Nova would give a move, predicted before any mutating call.

The rules are novamove.refusals (pure) applied by checks.check_refusals; the reads they need
are novamove.engine.preflight's.
"""

from __future__ import annotations

from typing import Optional

from novamove import errors, refusals
from novamove.engine.preflight import TraitCache, hard_groups, pinned_zone_hosts
from novamove.engine.single import checks
from novamove.model import LIVE, Host, Server


def check_named_target(cloud, server: Server, target: Host, mode: str,
                       traits: Optional[TraitCache] = None) -> None:
    """Raise PreconditionFailed (exit 4) with Nova's reason when Nova would refuse the move."""
    traits = traits or TraitCache(cloud)
    host_traits = traits.of(target) if refusals.needs_traits(server) else None
    groups, host_of = hard_groups(cloud, server)
    checks.check_refusals(server, target, mode, host_traits, groups, host_of, pinned_zone_hosts(cloud, server))


def filter_candidates(cloud, server: Server, mode: str, hosts: list[Host],
                      candidates: list[str]) -> tuple[list[str], list[str]]:
    """Without a named target: the candidates Nova's scheduler would not refuse, and why each
    other one would be refused (a live-blocking feature refuses every host: raised at once)."""
    if mode == LIVE:
        why = refusals.live_refusal(server)
        if why:
            raise errors.PreconditionFailed(
                f"Nova would refuse to live-migrate {server.name}: {why}; a cold migration (--cold) "
                "moves it, with a restart")
    by_name = {h.name: h for h in hosts}
    cache = TraitCache(cloud)
    wants_traits = refusals.needs_traits(server)
    groups, host_of = hard_groups(cloud, server)
    zone_hosts = pinned_zone_hosts(cloud, server)
    passing, refused = [], []
    for name in candidates:
        host = by_name[name]
        why = checks.refusal(server, host, "", cache.of(host) if wants_traits else None, groups, host_of,
                             zone_hosts)
        if why:
            refused.append(why)
        else:
            passing.append(name)
    return passing, refused
