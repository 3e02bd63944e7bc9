"""Rebalance and consolidate from Placement alone: `spread` and `pack` plans.

Pure logic over novamove.model values, like the drain planner: no API calls, no clock, no
randomness, so a plan is reproducible from one snapshot of the cloud and cheap to test.

A host's *usage* is the largest of its resource shares, used / capacity, in percent, where
capacity is Placement's inventory x allocation ratio - reserved (`Host.capacity`) and used is
Placement's usages (`Host.used`); PCPU counts only where a host has PCPU inventory.

- **spread** lowers the most loaded host of each availability zone toward the others, one
  move at a time, always the move that lowers the worse of its two hosts the most, and stops
  when the most loaded host cannot be lowered by at least `min_gain` points (so a second run
  on the result plans nothing: no ping-pong).
- **pack** empties hosts, least loaded first: a host is emptied only when every one of its
  servers finds a destination (best fit: the fullest host that still has room), so the plan
  never moves servers off a host it cannot empty.

Every plan can run in any order, several moves at once (the way `apply` runs it under its
caps): each destination is checked at its peak, what it holds now plus everything planned into
it, with nothing that is planned out of it counted as gone (a move holds its allocation on both
hosts until it ends); a server moves at most once; a hard anti-affinity group counts a moving
member on both hosts. So no intermediate state of the cloud overfills a host or breaks a hard
server-group policy. Servers keep their
availability zone; a hard-affinity member, a server tagged `novamove:maintenance=skip` or
`stop`, and a server Nova cannot move in its state stay where they are, with the reason.
"""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Host, Plan, PlanStep, Resources, Server
from novamove.planner import (CloudState, HARD_AFFINITY, HARD_ANTI_AFFINITY, move_mode,
                              _NeedMemo)

GOALS = ("spread", "pack")
SPREAD, PACK = GOALS
DEFAULT_MIN_GAIN = 2.0          # percentage points a spread move must gain
# Scopes (and zones) up to this many hosts also try the slower ways (spread: the repeated best
# single move; pack: destinations by usage and by size): their scans grow with hosts x moves.
SMALL_SCOPE = 300
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
SOFT_AFFINITY = "soft-affinity"
_FIELDS = 4                      # vcpus, memory_mb, disk_gb, pcpus (Resources.FIELDS)


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


@dataclass
class RebalancePlan(Plan):
    goal: str = SPREAD
    hosts: tuple[str, ...] = ()                # the scope
    max_moves: Optional[int] = None
    min_gain: float = DEFAULT_MIN_GAIN
    before: Optional[Figures] = None
    after: Optional[Figures] = None
    emptied: tuple[str, ...] = ()              # pack: hosts the plan empties
    unmovable: list[PlanStep] = field(default_factory=list)   # servers left where they are, why
    # What `novamove rebalance` / `apply` need besides the moves (novamove.rebalance_io saves them).
    zone: Optional[str] = None
    aggregate: Optional[str] = None
    max_parallel: int = 4
    max_per_host: int = 2
    disable_emptied: bool = False              # pack: leave the emptied hosts disabled (tagged)
    reason: Optional[str] = None               # operator text added to that disabled reason
    cloud: Optional[str] = None                # the cloud it was made on: apply checks it
    pinned: tuple[str, ...] = ()               # servers whose intent chose live or cold

    @property
    def moves(self) -> list[PlanStep]:
        return self.steps

    @property
    def ram_bytes_to_copy(self) -> int:
        """A live move copies the guest's RAM (at least once)."""
        return int(sum(s.need.memory_mb for s in self.steps if s.mode == LIVE) * 2 ** 20)


# ------------------------------------------------------------------------------ the model

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


# ----------------------------------------------------------------------- which servers move

def movable(server: Server, intent: Optional[str], hosts: _Hosts) -> tuple[Optional[str], Optional[str]]:
    """(live|cold, None) for a server the plan may move, else (None, why it stays)."""
    if intent in ("skip", "stop"):
        return None, f"novamove:maintenance={intent}: never moved by a rebalance"
    if not hosts.up.get(server.host or "", False):
        return None, f"nova-compute on {server.host} is down: Nova cannot move its servers"
    for gid in hosts.groups_of.get(server.id, ()):
        if hosts.groups[gid].policy == HARD_AFFINITY:
            return None, f"hard affinity group {gid}: its members stay together"
    mode, why = move_mode(server, intent if intent in (LIVE, COLD) else "auto")
    return mode, why


def _validate(state: CloudState, goal: str, scope: Sequence[str], zone: Optional[str],
              max_moves: Optional[int], min_gain: float) -> list[Host]:
    if goal not in GOALS:
        raise UsageError(f"unknown goal {goal!r}: expected one of {', '.join(GOALS)}")
    if max_moves is not None and max_moves < 1:
        raise UsageError("--max-moves must be at least 1 (leave it out for no limit)")
    if not isinstance(min_gain, (int, float)) or math.isnan(min_gain) or min_gain < 0:
        raise UsageError(f"--min-gain must be a number of percentage points >= 0, not {min_gain!r}")
    by_name = {h.name: h for h in state.hosts}
    for name in scope:
        if name not in by_name:
            raise NotFound(f"no compute host named {name!r}")
    if zone is not None:
        if not any(h.service.zone == zone for h in state.hosts):
            raise NotFound(f"no compute host in availability zone {zone!r}")
        others = sorted(n for n in scope if by_name[n].service.zone != zone)
        if others:
            raise UsageError(f"host {others[0]!r} is not in availability zone {zone!r}")
    chosen = [by_name[n] for n in dict.fromkeys(scope)] if scope else [
        h for h in state.hosts if zone is None or h.service.zone == zone]
    if len(chosen) < 2:
        raise UsageError("a rebalance needs at least two hosts in scope")
    return chosen


def plan_rebalance(state: CloudState, *, goal: str = SPREAD, hosts: Sequence[str] = (),
                   zone: Optional[str] = None, max_moves: Optional[int] = None,
                   min_gain: float = DEFAULT_MIN_GAIN, intents: Optional[Mapping[str, str]] = None,
                   created_at: Optional[str] = None,
                   traits: Optional[Mapping[str, frozenset]] = None) -> RebalancePlan:
    """Plan `goal` over the hosts named (or the zone's, or every host). Bad input raises
    (UsageError / NotFound) before any planning. `traits` {host: its provider's traits}: a
    server whose flavor requires (forbids) a trait only goes to a host that has (lacks) it."""
    scope_hosts = _validate(state, goal, hosts, zone, max_moves, min_gain)
    names = [h.name for h in scope_hosts]
    in_scope = set(names)
    model = _Hosts(scope_hosts, state.servers, state.groups, _NeedMemo(), traits)
    intents = intents or {}
    modes: dict[str, str] = {}
    unmovable: list[PlanStep] = []
    for name in names:
        for server in model.servers[name].values():
            mode, why = movable(server, intents.get(server.id), model)
            if mode:
                modes[server.id] = mode
            else:
                unmovable.append(PlanStep(server.id, server.name, name, None, COLD, why,
                                          model.need(server)))
    before = model.figures(names, modes)
    limit = max_moves if max_moves is not None else math.inf
    if goal == SPREAD:
        steps = _spread(model, names, modes, limit, min_gain)
        emptied: tuple[str, ...] = ()
    else:
        steps, emptied = _pack(model, names, modes, limit)
    return RebalancePlan(kind="rebalance", steps=steps, created_at=created_at, goal=goal,
                         hosts=tuple(names), max_moves=max_moves, min_gain=min_gain,
                         before=before, after=model.figures(names, modes), emptied=emptied,
                         unmovable=unmovable)


# ------------------------------------------------------------------------------------ spread

def _spread(model: _Hosts, names: list[str], modes: Mapping[str, str], limit: float,
            min_gain: float) -> list[PlanStep]:
    """Zone by zone (servers keep their zone), at most `limit` moves in all."""
    steps: list[PlanStep] = []
    by_zone: dict[Optional[str], list[str]] = {}
    for n in names:
        by_zone.setdefault(model.zone[n], []).append(n)
    for zone_hosts in by_zone.values():
        steps.extend(_spread_zone(model, zone_hosts, modes, limit - len(steps), min_gain))
    return steps


def _steps(model: _Hosts, tokens: list[tuple], modes: Mapping[str, str]) -> list[PlanStep]:
    return [PlanStep(t[0].id, t[0].name, t[1], t[2], modes[t[0].id], None, model.need(t[0]))
            for t in tokens]


def _spread_zone(model: _Hosts, zone_hosts: list[str], modes: Mapping[str, str], limit: float,
                 min_gain: float) -> list[PlanStep]:
    """Three ways to the same goal, the best kept (lower maximum, then fewer moves): moves
    toward the lowest level every host can be brought to (onto the least loaded hosts, or onto
    the fullest that stay at the level), and the best single move repeated.

    A host none of whose servers may move (a down compute, only skip-tagged servers) cannot be
    lowered: it is measured by nobody, so the others are still brought down below it."""
    measured = [n for n in zone_hosts
                if any(s.id in modes for s in model.servers[n].values()) or not model.servers[n]]
    if not measured:
        return []
    now = max(model.usage(n) for n in measured)
    tried = []
    ways = [(_by_level, False), (_by_level, True), (_by_best_move, False)]
    if len(zone_hosts) > SMALL_SCOPE:
        ways = ways[:1]              # each way is a whole plan, and the others grow with hosts x moves
    small = len(zone_hosts) <= SMALL_SCOPE
    for rank, (way, tight) in enumerate(ways):
        tokens = way(model, zone_hosts, measured, modes, limit, min_gain, tight)
        if small and tokens:
            tokens = _prune(model, zone_hosts, measured, tokens)
            tried.append((_top_level(model, zone_hosts, measured), len(tokens), 2 * rank, list(tokens)))
            tokens = _improve(model, zone_hosts, measured, modes, limit, tokens)
        if small and tokens:
            tokens = _prune(model, zone_hosts, measured, tokens)
        tried.append((_top_level(model, zone_hosts, measured), len(tokens), 2 * rank + 1, tokens))
        for token in reversed(tokens):
            model.undo(token)
    lowest = min(t[0] for t in tried)
    # Moves that lower the maximum by less than `min_gain` points in all are not worth making
    # (the rule a single move keeps): the fewest moves within that of the lowest maximum.
    achieved, _, _, tokens = min((t for t in tried if t[0] <= lowest + SELECT_TOLERANCE * min_gain + 1e-9),
                                 key=lambda t: (t[1], t[0], t[2]))
    if not tokens or achieved > now - min_gain + 1e-9:
        return []
    return _steps(model, [model.move(t[0], t[1], t[2]) for t in tokens], modes)


SELECT_TOLERANCE = 0.5

# An improvement round must lower the most loaded host by at least this many points: smaller
# gains cost moves that a plan within a few points of the optimum does not need.
IMPROVE_STEP = 0.5


def _improve(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
             limit: float, tokens: list[tuple]) -> list[tuple]:
    """After a way's plan (its moves applied): lower the most loaded hosts further, round by
    round. A round brings every host above (maximum - IMPROVE_STEP) down to it, each by one
    change (a server off it to a host that stays at that level; a server planned into it sent
    elsewhere or left where it was) or by a chain of two (the server to a host B that would then
    be too loaded, and a server of B to a third host). A round that cannot lower them all is
    taken back and ends the search. Every move keeps the plan's rules (room at the destination's
    peak, a server moves once, hard policies, traits, zone), so any subset and any order of the
    moves stays valid."""
    plan = {t[0].id: t for t in tokens}
    dests = [n for n in zone_hosts if model.destination_ok[n]]
    while len(plan) < limit:
        counted = _counted(model, zone_hosts, measured)
        target = max(model.usage(n) for n in counted) - IMPROVE_STEP
        done: list[tuple] = []
        for top in sorted(n for n in counted if model.usage(n) > target + 1e-9):
            while model.usage(top) > target + 1e-9:
                got = _lower(model, plan, top, dests, modes, target)
                if got is None or len(plan) > limit:
                    for change in reversed(done + (got or [])):
                        _unshift(model, plan, change)
                    return list(plan.values())
                done.extend(got)
        if not done:
            break
    return list(plan.values())


def _shift(model: _Hosts, plan: dict, server: Server, dest: str) -> Optional[tuple]:
    """Plan `server` to `dest` from where it is now, in place of its planned move if it has one
    (to its own host: the planned move is dropped). None, nothing changed, if the rules refuse."""
    old = plan.get(server.id)
    here = old[2] if old else server.host
    if dest == here or (dest != server.host and not model.destination_ok[dest]):
        return None
    if old:
        model.undo(old)
        del plan[server.id]
    if dest != server.host:
        if not (model.fits(dest, model.need(server)) and model.hard_ok(server, dest)):
            if old:
                plan[server.id] = model.move(server, old[1], old[2])
            return None
        plan[server.id] = model.move(server, server.host, dest)
    return (server, old[2] if old else None)


def _unshift(model: _Hosts, plan: dict, change: tuple) -> None:
    server, was = change
    if server.id in plan:
        model.undo(plan.pop(server.id))
    if was is not None:
        plan[server.id] = model.move(server, server.host, was)


def _on(model: _Hosts, host: str, modes: Mapping[str, str]) -> list[Server]:
    """Servers now on `host` (planned or not) that the plan may move, smallest first, one of
    each kind: servers of the same size, groups, traits and planned move are interchangeable
    here, and a host of a big zone holds hundreds of them in a few flavors."""
    seen: dict[tuple, Server] = {}
    for s in model.servers[host].values():
        if s.id in modes:
            kind = (tuple(_vec(model.need(s))), tuple(model.groups_of.get(s.id, ())),
                    model.trait_needs.get(s.id), s.host)
            if kind not in seen or (s.name, s.id) < (seen[kind].name, seen[kind].id):
                seen[kind] = s
    return sorted(seen.values(), key=lambda s: (model.need(s).memory_mb, model.need(s).vcpus, s.name, s.id))


# How many destinations a chain looks at for each of its two moves (least loaded first).
CHAIN_DEPTH = 24


def _lower(model: _Hosts, plan: dict, top: str, dests: list[str], modes: Mapping[str, str],
           target: float) -> Optional[list[tuple]]:
    """One change, else a chain of two, that brings `top` to `target` or below with every host
    it touches at `target` or below; the changes (applied), or None (nothing changed)."""
    order = sorted((n for n in dests if n != top and model.usage(n) <= target + 1e-9),
                   key=lambda n: (model.usage(n), n))

    start = model.usage(top)

    def low(*others: str) -> Optional[tuple]:
        """None unless `top` went down and every other host touched is at `target` or below;
        else a sort key: `top` at the target first, then the lowest of the hosts touched."""
        now = model.usage(top)
        if now >= start - 1e-9 or any(model.usage(h) > target + 1e-9 for h in others):
            return None
        return (now > target + 1e-9, max([now] + [model.usage(h) for h in others]))

    best: Optional[tuple] = None
    for server in _on(model, top, modes):
        for dest in [server.host] + order if server.host != top else order:
            change = _shift(model, plan, server, dest)
            if change is None:
                continue
            got = low(dest, server.host)
            if got is not None:
                key = (got, model.soft_penalty(server, dest), dest, server.id)
                if best is None or key < best[0]:
                    best = (key, server, dest)
            _unshift(model, plan, change)
            if got is not None:
                break                # least loaded first: the first that takes it is the best
    if best is not None and not best[0][0][0]:
        return [_shift(model, plan, best[1], best[2])]
    for server in _on(model, top, modes):
        for b in order[:CHAIN_DEPTH]:
            first = _shift(model, plan, server, b)
            if first is None:
                continue
            for other in (o for o in _on(model, b, modes) if o.id != server.id):
                for c in ([top] + order)[:CHAIN_DEPTH + 1]:
                    if c == b:
                        continue
                    second = _shift(model, plan, other, c)
                    if second is None:
                        continue
                    got = low(b, c, server.host, other.host)
                    if got is not None and not got[0]:
                        return [first, second]
                    _unshift(model, plan, second)
            _unshift(model, plan, first)
    if best is not None:             # part of the way down: the next change takes it further
        return [_shift(model, plan, best[1], best[2])]
    return None


def _counted(model: _Hosts, zone_hosts: list[str], measured: list[str]) -> list[str]:
    """The hosts whose usage the plan answers for: those it may lower, and any host that takes
    a server (even one whose own servers all stay)."""
    mine = set(measured)
    return [n for n in zone_hosts if n in mine or any(s.host != n for s in model.servers[n].values())]


def _top_level(model: _Hosts, zone_hosts: list[str], measured: list[str]) -> float:
    return max(model.usage(n) for n in _counted(model, zone_hosts, measured))


def _prune(model: _Hosts, zone_hosts: list[str], measured: list[str], tokens: list[tuple]) -> list[tuple]:
    """Drop the moves the plan's maximum does not need: a move is dropped when its server,
    left where it is, keeps its host at or below the maximum the plan reaches (smallest first:
    the most moves dropped). Any subset of a valid plan is valid (peaks only shrink, a hard
    anti-affinity group is on fewer hosts), so the moves kept are re-applied as they were."""
    goal = _top_level(model, zone_hosts, measured)
    used = {n: list(v) for n, v in model.used.items()}
    order = sorted(range(len(tokens)), key=lambda i: (model.need(tokens[i][0]).memory_mb,
                                                      model.need(tokens[i][0]).vcpus, -i))
    dropped: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i in order:
            if i in dropped:
                continue
            server, source, dest = tokens[i][:3]
            need = _vec(model.need(server))
            back = [u + n for u, n in zip(used[source], need)]
            if usage_of(model.cap[source], back) <= goal + 1e-9:
                used[source] = back
                used[dest] = [u - n for u, n in zip(used[dest], need)]
                dropped.add(i)
                changed = True
    if not dropped:
        return tokens
    for token in reversed(tokens):
        model.undo(token)
    return [model.move(t[0], t[1], t[2]) for i, t in enumerate(tokens) if i not in dropped]


def _by_best_move(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
                  limit: float, min_gain: float, tight: bool = False) -> list[tuple]:
    """Repeat the move that lowers the most loaded host the most; keep the shortest prefix
    that reaches the lowest maximum seen (a later move lowered no maximum)."""
    tokens: list[tuple] = []
    best_max, keep = max(model.usage(n) for n in measured), 0
    while len(tokens) < limit:
        token = _best_move(model, zone_hosts, measured, modes, min_gain)
        if token is None:
            break
        tokens.append(token)
        now = max(model.usage(n) for n in measured)
        if now < best_max - 1e-9:
            best_max, keep = now, len(tokens)
    for token in reversed(tokens[keep:]):
        model.undo(token)
    return tokens[:keep]


def _best_move(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
               min_gain: float) -> Optional[tuple]:
    top = max(measured, key=lambda n: (model.usage(n), n))
    top_usage = model.usage(top)
    dests = sorted((n for n in zone_hosts if n != top and model.destination_ok[n]),
                   key=lambda n: (model.usage(n), n))
    best: Optional[tuple] = None
    for server in (s for s in model.servers[top].values() if s.id in modes and s.id not in model.moved):
        src_after = model.usage_without(top, server)
        lowest = math.inf            # the lowest usage a destination of this server ends at
        for dest in dests:
            now = model.usage(dest)
            if now >= top_usage - min_gain or now >= lowest:
                break                # sorted by usage: nothing further ends lower
            if not (model.fits(dest, model.need(server)) and model.hard_ok(server, dest)):
                continue
            after = model.usage_with(dest, server)
            lowest = min(lowest, after)
            gain = top_usage - max(src_after, after)
            key = (-gain, model.soft_penalty(server, dest), after, dest, server.name, server.id)
            if gain >= max(min_gain, 1e-9) and (best is None or key < best[0]):
                best = (key, server, dest)
    return model.move(best[1], top, best[2]) if best else None


def _by_level(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
              limit: float, min_gain: float, tight: bool = False) -> list[tuple]:
    """The lowest level every host can be brought to, then the moves to it. A small zone is
    searched by halving, to half a point (each level tried with `_to_level` and taken back); a
    large one upward from the lowest possible level (0.5, 1, 2, 4 ... points above it), the first
    that works kept as the plan: its hosts are many and small next to the zone, so that comes
    within a point or two, and each try costs a whole plan."""
    now = max(model.usage(n) for n in measured)
    low, high = _lowest_possible(model, zone_hosts, measured, modes), now - min_gain
    best: Optional[float] = None
    if len(zone_hosts) > SMALL_SCOPE:
        step = 0.5
        while low + step <= high + 1e-9:
            tokens = _to_level(model, zone_hosts, measured, modes, low + step, limit, tight)
            if tokens is not None:
                return tokens        # the first level that works: its moves are the plan
            step *= 2
        return (_to_level(model, zone_hosts, measured, modes, high, limit, tight) if high > low else None) or []
    while True:
        if high < low - 1e-9:
            break
        level = high if best is None and high - low < 0.5 else (low + high) / 2
        tokens = _to_level(model, zone_hosts, measured, modes, level, limit, tight)
        if tokens is not None:
            best = min(level, max(model.usage(n) for n in measured))
            high = best - 0.5
            for token in reversed(tokens):
                model.undo(token)
        else:
            low = level + 0.5
    if best is None:
        return []
    return _to_level(model, zone_hosts, measured, modes, best, limit, tight) or []


def _lowest_possible(model: _Hosts, zone_hosts: list[str], measured: list[str],
                     modes: Mapping[str, str]) -> float:
    """No plan gets the zone's most loaded host below this: the zone's usage if it were one
    host, and each host's usage by the servers that stay on it."""
    total_cap = [sum(model.cap[n][i] for n in zone_hosts) for i in range(_FIELDS)]
    total_used = [sum(model.used[n][i] for n in zone_hosts) for i in range(_FIELDS)]
    low = usage_of(total_cap, total_used)
    for n in measured:
        staying = [0.0] * _FIELDS
        for server in model.servers[n].values():
            if server.id not in modes:
                for i, v in enumerate(_vec(model.need(server))):
                    staying[i] += v
        low = max(low, usage_of(model.cap[n], staying))
    return low


class _Ranking:
    """Destinations sorted by usage, kept sorted as moves change them (bisect: each update is a
    memmove, not a sort of the zone)."""

    def __init__(self, model: _Hosts, names: Iterable[str]) -> None:
        self.model = model
        self.key = {n: (model.usage(n), n) for n in names}
        self.keys = sorted(self.key.values())

    def update(self, name: str) -> None:
        old = self.key.get(name)
        if old is None:
            return
        del self.keys[bisect.bisect_left(self.keys, old)]
        self.key[name] = new = (self.model.usage(name), name)
        bisect.insort(self.keys, new)

    def add(self, name: str) -> None:
        if name not in self.key:
            self.key[name] = new = (self.model.usage(name), name)
            bisect.insort(self.keys, new)

    def up_to(self, level: float, tight: bool) -> Iterable[str]:
        """Names at or below `level`: least loaded first, or with `tight` fullest first."""
        end = bisect.bisect_right(self.keys, (level + 1e-9, "\uffff"))
        if tight:
            return (self.keys[i][1] for i in range(end - 1, -1, -1))
        return (self.keys[i][1] for i in range(end))


def _to_level(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
              level: float, limit: float, tight: bool) -> Optional[list[tuple]]:
    """Move servers off every host above `level` onto hosts that stay at or below it, fewest
    moves first (one server that brings its host down alone, the smallest such; else the
    largest). Returns the moves' undo tokens, or None (taken back) when it cannot."""
    tokens: list[tuple] = []
    over = sorted((n for n in measured if model.usage(n) > level + 1e-9),
                  key=lambda n: (-model.usage(n), n))
    ranking = _Ranking(model, (n for n in zone_hosts if model.destination_ok[n]
                               and model.usage(n) <= level + 1e-9))
    for host in over:
        while model.usage(host) > level + 1e-9:
            token = _one_move_down(model, host, ranking, modes, level, tight)
            if token is None or len(tokens) >= limit:
                if token is not None:
                    model.undo(token)
                for t in reversed(tokens):
                    model.undo(t)
                return None
            tokens.append(token)
            ranking.update(token[2])
        if model.destination_ok[host]:
            ranking.add(host)        # brought down, it may take a server (room at its peak)
    return tokens


def _one_move_down(model: _Hosts, host: str, ranking: _Ranking, modes: Mapping[str, str],
                   level: float, tight: bool) -> Optional[tuple]:
    # What the host must shed, per resource, to be at `level`: a server that sheds at least
    # that alone brings it down in one move.
    cap, used = model.cap[host], model.used[host]
    excess = [u - level * c / 100.0 - 1e-9 for u, c in zip(used, cap)]
    # Servers of one kind (size, groups, traits) find the same destinations: each kind is
    # searched once, by the server that comes first in its list (a failed search of a big
    # host's eighty servers in five flavors is five searches, not eighty). A need is one shared
    # object per flavor (_NeedMemo): its id is the size's key, cheaper than hashing it.
    enough: dict[tuple, tuple] = {}
    rest: dict[tuple, tuple] = {}
    need_of, groups_of, trait_needs, moved = model.need, model.groups_of, model.trait_needs, model.moved
    for server in model.servers[host].values():
        if server.id not in modes or server.id in moved:
            continue
        need = need_of(server)
        kind = (id(need), tuple(groups_of.get(server.id, ())), trait_needs.get(server.id))
        size = (need.memory_mb, need.vcpus, server.name, server.id)
        if kind in enough:
            if size < enough[kind][0]:
                enough[kind] = (size, server)
        elif kind in rest:
            if size > rest[kind][0]:
                rest[kind] = (size, server)
        elif all(n >= e for n, e in zip((need.vcpus, need.memory_mb, need.disk_gb, need.pcpus), excess) if e > 0):
            enough[kind] = (size, server)
        else:
            rest[kind] = (size, server)
    candidates = sorted(enough.values(), key=lambda t: t[0]) + sorted(rest.values(), key=lambda t: t[0], reverse=True)
    for _, server in candidates:
        dest = _destination(model, server, ranking.up_to(level, tight), level, tight)
        if dest is not None:
            return model.move(server, host, dest)
    return None


# How many destinations a server's search looks at before it gives up on that server (the
# least loaded ones first, or the fullest at the level): beyond a few hundred the chance that a
# host further down takes it is small, and an exhaustive scan per server grows with hosts x moves.
SEARCH_DEPTH = 256


def _destination(model: _Hosts, server: Server, hosts: Iterable[str], level: float,
                 tight: bool) -> Optional[str]:
    """A host that takes `server` and stays at or below `level`: the least loaded one, or with
    `tight` the one it fills the most (`hosts` come in that order); soft policies first, then a
    host without PCPU for a server that needs none (the few PCPU hosts are the only room for
    pinned servers: a shared one placed there can leave a pinned one nowhere to go)."""
    best: Optional[tuple] = None
    need = _vec(model.need(server))
    shared = not need[3]
    for rank, dest in enumerate(hosts):
        if rank >= SEARCH_DEPTH or (best is not None and (best[0][:2] == (0, 0) or rank > 64)):
            break                    # the first without an objection, or a few to compare
        if server.host == dest:
            continue
        cap, used, peak = model.cap[dest], model.used[dest], model.peak[dest]
        ok = True
        for i in range(_FIELDS):
            n = need[i]
            if n and (peak[i] + n > cap[i] + 1e-9 or used[i] + n > level * cap[i] / 100.0 + 1e-9):
                ok = False
                break
        if not ok or not model.hard_ok(server, dest):
            continue
        key = (model.soft_penalty(server, dest), shared and cap[3] > 0, rank)
        if best is None or key < best[0]:
            best = (key, dest)
    return best[1] if best else None


# -------------------------------------------------------------------------------------- pack

# How pack chooses a destination among the hosts it keeps: the fullest by RAM that has room
# (classic best fit), the busiest by usage, or the biggest (then busiest), which keeps the small
# hosts free to be emptied. Each is tried with each order below; the best result is kept.
FULLEST, BUSIEST, BIGGEST = "fullest", "busiest", "biggest"


class _Destinations:
    """Destinations of one zone, kept sorted by the way's key as moves change them."""

    def __init__(self, model: _Hosts, names: Iterable[str], way: str) -> None:
        self.model, self.way = model, way
        self.keys: list[tuple] = sorted(self._key(n) for n in names)

    def _key(self, name: str) -> tuple:
        m = self.model
        if self.way == FULLEST:
            return (m.cap[name][1] - m.used[name][1], name)
        if self.way == BUSIEST:
            return (-m.usage(name), name)
        return (-m.cap[name][1], -m.usage(name), name)

    def remove(self, name: str) -> None:
        key = self._key(name)
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            self.keys.pop(i)

    def add(self, name: str) -> None:
        bisect.insort(self.keys, self._key(name))

    def choose(self, server: Server, need: Resources, exclude: str) -> Optional[str]:
        # Best fit starts at the first host with RAM enough; the others look at most
        # SEARCH_DEPTH hosts from the front.
        start = bisect.bisect_left(self.keys, (need.memory_mb - 1e-9, "")) if self.way == FULLEST else 0
        best = None
        for rank, key in enumerate(self.keys[start:start + SEARCH_DEPTH if self.way != FULLEST else None]):
            name = key[-1]
            if name == exclude or not self.model.servers[name]:
                continue             # an empty host filled is one more host to keep running
            if not self.model.fits(name, need) or not self.model.hard_ok(server, name):
                continue
            penalty = self.model.soft_penalty(server, name)
            if penalty == 0:
                return name
            if best is None or penalty < best[0]:
                best = (penalty, name)
        return best[1] if best else None


# Orders in which pack tries to empty hosts. Fewest servers first needs the fewest moves per
# host; least used first frees room that is nearly free anyway; smallest first keeps the big
# hosts as destinations; the others break the ties the other way.
_PACK_ORDERS = (
    lambda m, n: (len(m.servers[n]), m.usage(n), n),
    lambda m, n: (m.usage(n), len(m.servers[n]), n),
    lambda m, n: (m.cap[n][1], m.usage(n), n),
    lambda m, n: (-m.cap[n][1], m.usage(n), n),
    lambda m, n: (m.used[n][1], n),
    lambda m, n: (m.usage(n) * m.cap[n][1], n),
)


def _pack(model: _Hosts, names: list[str], modes: Mapping[str, str],
          limit: float) -> tuple[list[PlanStep], tuple[str, ...]]:
    """Every order with every way of choosing destinations; the most hosts emptied, then the
    fewest moves, is kept (pure and cheap next to the moves themselves)."""
    tried = []
    small = len(names) <= SMALL_SCOPE
    ways = (FULLEST, BUSIEST, BIGGEST) if small else (FULLEST,)
    orders = _PACK_ORDERS if small else _PACK_ORDERS[:3]
    for rank, (key, way) in enumerate((k, w) for k in orders for w in ways):
        tokens, emptied = _pack_in_order(model, names, modes, limit, key, way)
        tried.append((-len(emptied), len(tokens), rank, tokens, emptied))
        for token in reversed(tokens):
            model.undo(token)
    _, _, _, tokens, emptied = min(tried, key=lambda t: t[:3])
    return _steps(model, [model.move(t[0], t[1], t[2]) for t in tokens], modes), emptied


def _pack_in_order(model: _Hosts, names: list[str], modes: Mapping[str, str], limit: float,
                   key, way: str) -> tuple[list[tuple], tuple[str, ...]]:
    tokens: list[tuple] = []
    emptied: list[str] = []
    fits: dict[Optional[str], list[str]] = {}
    for n in names:
        if model.destination_ok[n]:
            fits.setdefault(model.zone[n], []).append(n)
    finders = {z: _Destinations(model, hs, way) for z, hs in fits.items()}
    order = sorted((n for n in names if model.servers[n]), key=lambda n: key(model, n))
    for host in order:
        servers = list(model.servers[host].values())
        if host in model.took or any(s.id not in modes or s.id in model.moved for s in servers):
            continue                 # a host that received, or holds a server that stays
        if len(tokens) + len(servers) > limit:
            continue
        finder = finders.get(model.zone[host])
        if finder is None:
            continue
        trial = _try_empty(model, finder, host, list(servers))
        if trial is None:
            continue
        tokens.extend(trial)
        emptied.append(host)
    return tokens, tuple(emptied)


def _try_empty(model: _Hosts, finder: _Destinations, host: str,
               servers: list[Server]) -> Optional[list[tuple]]:
    """Place every server of `host` elsewhere, or undo and return None."""
    finder.remove(host)
    servers.sort(key=lambda s: (-model.need(s).memory_mb, -model.need(s).vcpus, s.name, s.id))
    done: list[tuple] = []
    for server in servers:
        dest = finder.choose(server, model.need(server), host)
        if dest is None:
            for token in reversed(done):
                finder.remove(token[2])
                model.undo(token)
                finder.add(token[2])
            finder.add(host)
            return None
        finder.remove(dest)
        done.append(model.move(server, host, dest))
        finder.add(dest)
    return done
