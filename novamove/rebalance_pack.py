"""Pack: empty as many hosts as possible, leaving the rest within capacity (novamove.rebalance).

A host is emptied only when every one of its servers finds a destination, so the plan never
moves servers off a host it cannot empty; several orders and ways of choosing destinations are
tried, the most hosts emptied (then the fewest moves) kept.
"""

from __future__ import annotations

import bisect
import random
from typing import Iterable, Mapping, Optional

from novamove.model import PlanStep, Resources, Server
from novamove.rebalance_model import SEARCH_DEPTH, SMALL_SCOPE, _Hosts, _steps


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


# A scope with few servers also tries the hosts in shuffled orders (fixed seeds: the same
# snapshot gives the same plan): at most PACK_RESTARTS, and restarts x servers that may move at
# most PACK_WORK (a 20-host scope of 150 movable servers: 40 restarts of three ways each).
PACK_RESTARTS = 40
PACK_WORK = 6_000


def _shuffled(seed: int):
    """An order of the hosts drawn from a fixed seed: each host's rank is one draw."""
    rng = random.Random(seed)
    ranks: dict[str, float] = {}
    return lambda m, n: ranks.setdefault(n, rng.random())


def _pack(model: _Hosts, names: list[str], modes: Mapping[str, str],
          limit: float) -> tuple[list[PlanStep], tuple[str, ...]]:
    """Every order with every way of choosing destinations (and, with few servers, shuffled
    orders); the most hosts emptied, then the fewest moves, is kept (pure and cheap next to the
    moves themselves)."""
    tried = []
    small = len(names) <= SMALL_SCOPE
    ways = (FULLEST, BUSIEST, BIGGEST) if small else (FULLEST,)
    orders = list(_PACK_ORDERS if small else _PACK_ORDERS[:3])
    movable_here = sum(1 for n in names for s in model.servers[n].values() if s.id in modes)
    if small:
        orders += [_shuffled(k) for k in range(min(PACK_RESTARTS, PACK_WORK // max(movable_here, 1)))]
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
