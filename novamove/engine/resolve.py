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
    A short-name match must not contradict a domain given on either side: `cmp1.dc2.example.org`
    never picks `cmp1.dc1.example.org`, though it may pick a bare `cmp1`.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise errors.UsageError(f"a host name is needed, not {name!r}")
    for h in hosts:
        if h.name == name:
            return h
    for h in hosts:
        if h.hypervisor_hostname == name:
            return h
    short, _, domain = name.partition(".")

    def candidate(h: Host) -> bool:
        names = [n for n in (h.name, h.hypervisor_hostname) if n]
        if not any(n.partition(".")[0] == short for n in names):
            return False
        # A domain on either side that differs from the one typed says "another host".
        return not domain or all(not n.partition(".")[2] or n.partition(".")[2] == domain for n in names)

    matches = [h for h in hosts if candidate(h)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(h.name for h in hosts)) or "none"
    if len(matches) > 1:
        raise errors.Ambiguous(f"host {name!r} matches several computes: "
                               + ", ".join(h.name for h in matches))
    raise errors.NotFound(f"no compute host {name!r} (known: {known})")


def resolve_host(cloud, name: str, hosts: Optional[Sequence[Host]] = None) -> Host:
    return pick_host(name, hosts if hosts is not None else cloud.compute_hosts(with_resources=False))
