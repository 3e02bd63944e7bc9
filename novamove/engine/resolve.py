"""Turning what the operator typed into one server and one compute host."""

from __future__ import annotations

from typing import Optional, Sequence

from novamove import errors
from novamove.model import Host, Server


def pick_server(name_or_id: str, candidates: Sequence[Server]) -> Server:
    """Exactly one match, or NotFound / Ambiguous listing the candidates."""
    if not candidates:
        raise errors.NotFound(f"no server named or with id {name_or_id!r} (searched all projects)")
    if len(candidates) > 1:
        listed = ", ".join(f"{s.id} (project {s.project_id or '?'}, host {s.host or '-'})"
                           for s in candidates[:10])
        more = f" and {len(candidates) - 10} more" if len(candidates) > 10 else ""
        raise errors.Ambiguous(f"{len(candidates)} servers are named {name_or_id!r}: {listed}{more}; "
                               "use the UUID")
    return candidates[0]


def resolve_server(cloud, name_or_id: str) -> Server:
    return pick_server(name_or_id, cloud.find_servers(name_or_id))


def pick_host(name: str, hosts: Sequence[Host]) -> Host:
    """Match a service host, else a hypervisor hostname, else a unique short name.

    Real clouds often name the node `cmp1.example.org` while the service host is `cmp1` (or
    the other way round); the migrate APIs want the service host, so that is what we return.
    """
    for h in hosts:
        if h.name == name:
            return h
    for h in hosts:
        if h.hypervisor_hostname == name:
            return h
    short = name.split(".")[0]
    matches = [h for h in hosts
               if h.name.split(".")[0] == short or (h.hypervisor_hostname or "").split(".")[0] == short]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(h.name for h in hosts)) or "none"
    if len(matches) > 1:
        raise errors.Ambiguous(f"host {name!r} matches several computes: "
                               + ", ".join(h.name for h in matches))
    raise errors.NotFound(f"no compute host {name!r} (known: {known})")


def resolve_host(cloud, name: str, hosts: Optional[Sequence[Host]] = None) -> Host:
    return pick_host(name, hosts if hosts is not None else cloud.compute_hosts(with_resources=False))
