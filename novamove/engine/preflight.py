"""The reads pre-flight checks need (novamove.refusals has the rules), shared by the single
moves (engine/single/preflight.py) and the planner's gathering (engine/batch/drain.py).

Only what a server could be refused for is read: a destination's placement traits when the
server requires or forbids one, the hard-policy groups (one listing) and the hosts of the
members of the server's. Every read is an adapter verb (NOVAMOVE_FAULT faults it as cloud.VERB; the engine's
patient reads retry it, novamove/retry.py); traits are cached per run in a `TraitCache`.
"""

from __future__ import annotations

from typing import Optional

from novamove import errors
from novamove.model import Host, Server, ServerGroup

HARD_POLICIES = ("affinity", "anti-affinity")


class TraitCache:
    """Placement traits of compute nodes, read once per run (a drain of N servers does not read
    a host's traits N times). Unknown (no node, no provider) is None: no prediction."""

    def __init__(self, cloud) -> None:
        self._cloud = cloud
        self._traits: dict[str, Optional[frozenset[str]]] = {}

    def of(self, host: Host) -> Optional[frozenset[str]]:
        node = host.hypervisor_hostname
        if not node or not hasattr(self._cloud, "provider_traits"):
            return None
        if node not in self._traits:
            try:
                self._traits[node] = frozenset(self._cloud.provider_traits(node))
            except (errors.NotFound, errors.Forbidden):
                # No provider, or a policy that hides placement from this user: Nova decides.
                self._traits[node] = None
        return self._traits[node]


def hard_groups(cloud, server: Server) -> tuple[list[ServerGroup], dict[str, Optional[str]]]:
    """The server's hard-policy groups and the hosts of their other members. Read from the
    groups' member lists (one listing), not from the server's own `server_groups`: Nova shows
    those (2.71) on GET /servers/{id} only, not in the listing a server found by name comes from."""
    try:
        listed = cloud.list_server_groups()
    except errors.Forbidden:
        return [], {}       # a policy that hides other projects' groups: Nova's filters decide
    groups = [g for g in listed
              if g.policy in HARD_POLICIES and (server.id in g.members or g.id in server.server_groups)]
    host_of: dict[str, Optional[str]] = {server.id: server.host}
    for member in sorted({m for g in groups for m in g.members} - {server.id}):
        try:
            host_of[member] = cloud.get_server(member).host
        except errors.NotFound:
            pass            # deleted since the listing: binds nothing
    return groups, host_of


def pinned_zone_hosts(cloud, server: Server) -> Optional[set[str]]:
    """The hosts a server pinned to an availability zone may move to (the zone's aggregates'),
    or None: not pinned, a zone no aggregate has (the default zone restricts nothing), or the
    aggregates hidden from this user."""
    if not server.pinned_zone or not hasattr(cloud, "zone_hosts"):
        return None
    try:
        return cloud.zone_hosts(server.pinned_zone)
    except errors.Forbidden:
        return None
