"""Spread: bring the most loaded host of each zone down toward the others (novamove.rebalance).

Zone by zone: moves toward the lowest level every host can be brought to (onto the least loaded
hosts, or onto the fullest that stay at the level), and, in small zones, the best single move
repeated, each way's plan improved and pruned (novamove.rebalance_improve), and, in zones with
few servers, restarts of the level search in shuffled orders, and the best few plans' moves
cut (novamove.rebalance_cut); of all these plans the fewest moves within half of `min_gain` of
the lowest maximum is kept (`_choose`).
"""

from __future__ import annotations

import bisect
import math
import random
from typing import Iterable, Mapping, Optional, Sequence

from novamove.model import PlanStep, Server
from novamove.rebalance_cut import _cut
from novamove.rebalance_improve import IMPROVE_STEP, _improve, _prune, _top_level
from novamove.rebalance_model import SEARCH_DEPTH, SMALL_SCOPE, _FIELDS, _Hosts, _steps, _vec, usage_of


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


def _spread_zone(model: _Hosts, zone_hosts: list[str], modes: Mapping[str, str], limit: float,
                 min_gain: float) -> list[PlanStep]:
    """Three ways to the same goal (a large zone: the first only): moves toward the lowest level
    every host can be brought to (onto the least loaded hosts, or onto the fullest that stay at
    the level), and the best single move repeated; then restarts (`_restarts`) and the best
    few plans with fewer moves (`_cut_best`); `_choose` keeps one.

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
    if small:
        tried.extend(_restarts(model, zone_hosts, measured, modes, limit, min(t[0] for t in tried)))
        tried.extend(_cut_best(model, zone_hosts, measured, modes, limit, tried, min_gain))
    achieved, _, _, tokens = _choose(tried, min_gain)
    if not tokens or achieved > now - min_gain + 1e-9:
        return []
    return _steps(model, [model.move(t[0], t[1], t[2]) for t in tokens], modes)


# Restarts of the level greedy in shuffled orders, in a zone with few servers: at most RESTARTS,
# and restarts x servers that may move at most RESTART_WORK (a 20-host zone of 150 movable
# servers: 100 restarts, ~0.1 s); fewer than MIN_RESTARTS are not worth it (a zone of the
# Watcher-sized cloud, ~3,900 servers of hosts holding 140 each: none, its grain is fine).
RESTARTS = 100
RESTART_WORK = 15_000
MIN_RESTARTS = 10


def _restarts(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
              limit: float, best: float) -> list[tuple]:
    """The greedy toward a level is one order among many: a tight zone (a few big servers that
    each need a host's whole free room, hosts of 16 cores where a server is 12 points) can need
    another. Restarts with the hosts, servers and destinations in shuffled orders (a fixed seed
    per restart: the same snapshot gives the same plan), each toward just below the best maximum
    reached so far; every plan found, pruned, is returned (maximum, moves, rank, tokens)."""
    movable_here = sum(1 for n in zone_hosts for s in model.servers[n].values() if s.id in modes)
    found: list[tuple] = []
    restarts = min(RESTARTS, RESTART_WORK // max(movable_here, 1))
    for k in range(restarts if restarts >= MIN_RESTARTS else 0):
        target = best if k % 4 == 3 else best - IMPROVE_STEP    # lower, or as low in fewer moves
        tokens = _to_level(model, zone_hosts, measured, modes, target, limit, k % 2 == 1, random.Random(k))
        if tokens is None:
            continue
        tokens = _prune(model, zone_hosts, measured, tokens)
        level = _top_level(model, zone_hosts, measured)
        found.append((level, len(tokens), 100 + k, list(tokens)))
        best = min(best, level)
        for token in reversed(tokens):
            model.undo(token)
    return found


# The plans the move-cutting pass works on: the one `_choose` keeps, the lowest maximum, and
# the next fewest moves among those `_choose` compares (distinct plans only).
CUT_PLANS = 4


def _cut_best(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
              limit: float, tried: list[tuple], min_gain: float) -> list[tuple]:
    """The few best plans tried, each with the moves it does not need cut (`_cut`): the same
    maximum in fewer moves can make another plan the one kept."""
    if not tried or not any(t[3] for t in tried):
        return []
    lowest = min(t[0] for t in tried)
    close = sorted((t for t in tried if t[0] <= lowest + SELECT_TOLERANCE * min_gain + 1e-9),
                   key=lambda t: (t[1], t[0], t[2]))
    picks, seen = [], set()
    for t in [min(tried, key=lambda t: (t[0], t[1], t[2]))] + close:
        key = frozenset((tok[0].id, tok[2]) for tok in t[3])
        if t[3] and key not in seen and len(picks) < CUT_PLANS:
            seen.add(key)
            picks.append(t)
    found = []
    for level, _, rank, tokens in picks:
        applied = [model.move(t[0], t[1], t[2]) for t in tokens]
        applied = _cut(model, zone_hosts, measured, modes, limit, applied, _to_level)
        if len(applied) < len(tokens):
            found.append((_top_level(model, zone_hosts, measured), len(applied), 1000 + rank, list(applied)))
        for token in reversed(applied):
            model.undo(token)
    return found


# Plans whose maximum is within this share of `min_gain` of the lowest are compared by moves.
SELECT_TOLERANCE = 0.5


def _choose(tried: list[tuple], min_gain: float) -> tuple:
    """Of (maximum, moves, rank, ...) plans, the fewest moves among those within half of
    `min_gain` of the lowest maximum (then the lower maximum, then the earlier way): moves that
    lower the maximum by less than that in all are not worth making, as a single move that
    gains less than `min_gain` is not (e.g. 41.4% in 55 moves or 42.2% in 51: the 51)."""
    lowest = min(t[0] for t in tried)
    return min((t for t in tried if t[0] <= lowest + SELECT_TOLERANCE * min_gain + 1e-9),
               key=lambda t: (t[1], t[0], t[2]))

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
              level: float, limit: float, tight: bool, rng=None,
              first: Sequence[str] = ()) -> Optional[list[tuple]]:
    """Move servers off every host above `level` onto hosts that stay at or below it, fewest
    moves first (one server that brings its host down alone, the smallest such; else the
    largest), the hosts in `first` first, in that order. Returns the moves' undo tokens, or
    None (taken back) when it cannot."""
    tokens: list[tuple] = []
    over = sorted((n for n in measured if model.usage(n) > level + 1e-9),
                  key=lambda n: (-model.usage(n), n))
    if rng is not None:
        rng.shuffle(over)
    if first:
        over = [n for n in first if n in over] + [n for n in over if n not in first]
    ranking = _Ranking(model, (n for n in zone_hosts if model.destination_ok[n]
                               and model.usage(n) <= level + 1e-9))
    for host in over:
        while model.usage(host) > level + 1e-9:
            token = _one_move_down(model, host, ranking, modes, level, tight, rng)
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
                   level: float, tight: bool, rng=None) -> Optional[tuple]:
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
    if rng is not None:
        rng.shuffle(candidates)
    for _, server in candidates:
        dest = _destination(model, server, ranking.up_to(level, tight), level, tight, rng)
        if dest is not None:
            return model.move(server, host, dest)
    return None


def _destination(model: _Hosts, server: Server, hosts: Iterable[str], level: float,
                 tight: bool, rng=None) -> Optional[str]:
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
        key = (model.soft_penalty(server, dest), shared and cap[3] > 0, rank if rng is None else rng.random())
        if best is None or key < best[0]:
            best = (key, dest)
    return best[1] if best else None
