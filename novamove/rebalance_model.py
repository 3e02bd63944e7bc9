"""The hosts a rebalance plans over, as the plan changes them (the model of novamove.rebalance).

A host's *usage* is the largest of its resource shares, used / capacity, in percent. `_Hosts`
keeps, per host, what it holds now, its peak (what it holds plus everything planned into it,
nothing planned out of it counted as gone), its servers and the hosts of each server group, and
takes a planned move back exactly (`undo`). Pure logic, like the planner that uses it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from novamove.model import Host, PlanStep, Resources, Server
from novamove.planner import HARD_ANTI_AFFINITY

# Scopes (and zones) up to this many hosts also try the slower ways (spread: the repeated best
# single move, the improvement and pruning; pack: destinations by usage and by size): their
# scans grow with hosts x moves.
SMALL_SCOPE = 300
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
SOFT_AFFINITY = "soft-affinity"
_FIELDS = 4                      # vcpus, memory_mb, disk_gb, pcpus (Resources.FIELDS)

# How many destinations a server's search looks at before it gives up on that server (the
# least loaded ones first, or the fullest at the level): beyond a few hundred the chance that a
# host further down takes it is small, and an exhaustive scan per server grows with hosts x moves.
SEARCH_DEPTH = 256



@dataclass(frozen=True)
class Figures:
    """What a plan claims about the hosts in scope, before or after it."""
    max_usage: float             # percent, the most loaded host
    spread: float                # population standard deviation of the hosts' usage, points
    hosts_empty: int             # hosts holding no server
    servers: int
    # the most loaded host a plan can lower (one holding a server that may move): a host whose
    # servers all stay (a down compute, skip-tagged servers) is counted in max_usage only
    lowerable_max: float = 0.0


def _vec(r: Resources) -> list[float]:
    return [r.vcpus, r.memory_mb, r.disk_gb, r.pcpus]


def usage_of(capacity: Sequence[float], used: Sequence[float]) -> float:
    """Percent of the scarcest resource; a demand on a resource the host lacks is infinite."""
    worst = 0.0
    for cap, use in zip(capacity, used):
        if cap > 0:
            worst = max(worst, 100.0 * use / cap)
        elif use > 0:
            return math.inf
    return worst


class _Hosts:
    """The hosts in scope as the plan changes them: usage, servers, group members."""

    def __init__(self, hosts: Sequence[Host], servers: Sequence[Server], groups, need,
                 traits: Optional[Mapping[str, frozenset]] = None) -> None:
        self.cap = {h.name: _vec(h.capacity) for h in hosts}
        self.used = {h.name: _vec(h.used) for h in hosts}
        self.peak = {h.name: _vec(h.used) for h in hosts}   # used + planned in, nothing out
        self.zone = {h.name: h.service.zone for h in hosts}
        self.up = {h.name: h.service.up for h in hosts}
        self.destination_ok = {h.name: h.service.enabled and h.service.up for h in hosts}
        # host -> {server id: server} (a dict: removing one is O(1), not a scan with __eq__)
        self.servers: dict[str, dict[str, Server]] = {h.name: {} for h in hosts}
        for s in servers:
            if s.host in self.servers:
                self.servers[s.host][s.id] = s
        self.need = need
        self.groups = {g.id: g for g in groups}
        self.groups_of: dict[str, list[str]] = {}
        for g in groups:
            for m in g.members:
                self.groups_of.setdefault(m, []).append(g.id)
        for s in servers:
            for gid in s.server_groups:
                if gid in self.groups and gid not in self.groups_of.get(s.id, ()):
                    self.groups_of.setdefault(s.id, []).append(gid)
        # group id -> hosts where a member is now or will be during the plan (a member being
        # moved is on both hosts until its move ends)
        host_of = {s.id: s.host for s in servers}
        self.group_hosts: dict[str, set[str]] = {
            g.id: {host_of[m] for m in g.members if host_of.get(m)} for g in groups}
        for s in servers:
            for gid in self.groups_of.get(s.id, ()):
                if s.host:
                    self.group_hosts[gid].add(s.host)
        # Servers whose flavor requires or forbids provider traits, and each host's traits
        # (a host missing from `traits` has none): only these servers pay for the check.
        self.traits = {n: frozenset(t) for n, t in (traits or {}).items()}
        self.trait_needs = {s.id: (s.flavor.required_traits, s.flavor.forbidden_traits) for s in servers
                            if s.flavor is not None and (s.flavor.required_traits or s.flavor.forbidden_traits)}
        self.gave: set[str] = set()
        self.took: set[str] = set()
        self.moved: set[str] = set()          # a server moves at most once in a plan

    def usage(self, name: str) -> float:
        return usage_of(self.cap[name], self.used[name])

    def fits(self, name: str, need: Resources) -> bool:
        """Room for `need` at the host's peak: what it holds plus everything planned into it,
        as if nothing planned out of it had left yet (so any order of the moves is safe)."""
        return all(b + n <= c + 1e-9 for b, n, c in zip(self.peak[name], _vec(need), self.cap[name]))

    def hard_ok(self, server: Server, dest: str) -> bool:
        if self.trait_needs and server.id in self.trait_needs:
            required, forbidden = self.trait_needs[server.id]
            have = self.traits.get(dest, frozenset())
            if not required <= have or forbidden & have:
                return False
        for gid in self.groups_of.get(server.id, ()):
            g = self.groups[gid]
            if g.policy == HARD_ANTI_AFFINITY and dest in self.group_hosts[gid]:
                return False
        return True

    def soft_penalty(self, server: Server, dest: str) -> int:
        """Soft policies are preferences: count the ones a destination would go against."""
        bad = 0
        for gid in self.groups_of.get(server.id, ()):
            g = self.groups[gid]
            if g.policy == SOFT_ANTI_AFFINITY and dest in self.group_hosts[gid]:
                bad += 1
            elif g.policy == SOFT_AFFINITY and dest not in self.group_hosts[gid]:
                bad += 1
        return bad

    def move(self, server: Server, source: str, dest: str) -> tuple:
        """Plan `server` from `source` to `dest`; returns what `undo` needs to take it back."""
        token = (server, source, dest, source in self.gave, dest in self.took,
                 [gid for gid in self.groups_of.get(server.id, ()) if dest not in self.group_hosts[gid]])
        need = _vec(self.need(server))
        for i in range(_FIELDS):
            self.used[source][i] -= need[i]
            self.used[dest][i] += need[i]
            self.peak[dest][i] += need[i]
        del self.servers[source][server.id]
        self.servers[dest][server.id] = server
        for gid in self.groups_of.get(server.id, ()):
            self.group_hosts[gid].add(dest)
        self.gave.add(source)
        self.took.add(dest)
        self.moved.add(server.id)
        return token

    def undo(self, token: tuple) -> None:
        server, source, dest, had_gave, had_took, new_groups = token
        need = _vec(self.need(server))
        for i in range(_FIELDS):
            self.used[source][i] += need[i]
            self.used[dest][i] -= need[i]
            self.peak[dest][i] -= need[i]
        del self.servers[dest][server.id]
        self.servers[source][server.id] = server
        for gid in new_groups:
            self.group_hosts[gid].discard(dest)
        if not had_gave:
            self.gave.discard(source)
        if not had_took:
            self.took.discard(dest)
        self.moved.discard(server.id)

    def usage_without(self, name: str, server: Server) -> float:
        return usage_of(self.cap[name], [u - n for u, n in zip(self.used[name], _vec(self.need(server)))])

    def usage_with(self, name: str, server: Server) -> float:
        return usage_of(self.cap[name], [u + n for u, n in zip(self.used[name], _vec(self.need(server)))])

    def figures(self, names: Iterable[str], modes: Mapping[str, str]) -> Figures:
        names = list(names)
        usages = [self.usage(n) for n in names]
        lowerable = [self.usage(n) for n in names if any(s.id in modes for s in self.servers[n].values())]
        finite = [u for u in usages if math.isfinite(u)]
        return Figures(max_usage=round(max(usages, default=0.0), 2),
                       spread=round(statistics.pstdev(finite), 2) if len(finite) > 1 else 0.0,
                       hosts_empty=sum(1 for n in names if not self.servers[n]),
                       servers=sum(len(self.servers[n]) for n in names),
                       lowerable_max=round(max(lowerable, default=0.0), 2))


def _steps(model: _Hosts, tokens: list[tuple], modes: Mapping[str, str]) -> list[PlanStep]:
    return [PlanStep(t[0].id, t[0].name, t[1], t[2], modes[t[0].id], None, model.need(t[0]))
            for t in tokens]
