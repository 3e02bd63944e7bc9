"""Spread's move-cutting pass (small zones): the same maximum in fewer moves.

The level search plans one host after another, each by the fewest moves it sees at the time: a
big server that alone brings a host down finds no room left (earlier hosts took it) and the
host sheds three small ones instead; a host gives a server and later takes another. `_cut`
takes back every move out of one, two or three source hosts together and plans those hosts
again toward the plan's own maximum (`_to_level`, in each order of the hosts, least loaded or
tightest destinations first), keeping the result when it needs fewer moves. Every move keeps
the plan's rules (room at the destination's peak, a server moves once, hard policies, traits,
zone), so the plan stays valid in any order.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator, Mapping

from novamove.rebalance_improve import _prune, _top_level
from novamove.rebalance_model import _Hosts

# Repairs tried per plan at most, and repairs x servers that may move at most (a 20-host zone of
# 150 movable servers: 200 repairs, each a few hosts planned again).
CUT_TRIES = 400
CUT_WORK = 30_000


def _redo(model: _Hosts, applied: list[tuple], wanted: list[tuple]) -> list[tuple]:
    """Take `applied` back (in reverse: `undo` is exact only so) and apply `wanted`'s moves."""
    for token in reversed(applied):
        model.undo(token)
    return [model.move(t[0], t[1], t[2]) for t in wanted]


def _groups(sources: list[str], moves_out: Mapping[str, int]) -> Iterator[tuple[str, ...]]:
    """The sets of source hosts planned again together: each host that gives two moves or more,
    then every pair, then every triple (the first of them, as the budget allows)."""
    yield from ((s,) for s in sources if moves_out[s] > 1)
    yield from itertools.combinations(sources, 2)
    yield from itertools.combinations(sources, 3)


def _cut(model: _Hosts, zone_hosts: list[str], measured: list[str], modes: Mapping[str, str],
         limit: float, tokens: list[tuple], to_level: Callable) -> list[tuple]:
    """`tokens` applied: returns the plan's tokens, applied, in as few moves as this finds with
    the zone's most loaded host no higher than it was. `to_level` is spread's level search
    (passed in: no import running back up)."""
    level = _top_level(model, zone_hosts, measured)
    movable_here = sum(1 for n in zone_hosts for s in model.servers[n].values() if s.id in modes)
    budget = min(CUT_TRIES, CUT_WORK // max(movable_here, 1))
    improved = True
    while improved and budget > 0:
        improved = False
        moves_out: dict[str, int] = {}
        for t in tokens:
            moves_out[t[1]] = moves_out.get(t[1], 0) + 1
        sources = sorted(moves_out, key=lambda h: (-moves_out[h], h))
        for chosen in _groups(sources, moves_out):
            out = sum(moves_out[h] for h in chosen)
            for order, tight in itertools.product(itertools.permutations(chosen), (False, True)):
                if budget <= 0:
                    return tokens
                budget -= 1
                kept = _redo(model, tokens, [t for t in tokens if t[1] not in chosen])
                new = to_level(model, zone_hosts, measured, modes, level, limit - len(kept), tight,
                               first=list(order))
                if new is not None and len(new) < out and _top_level(model, zone_hosts, measured) <= level + 1e-9:
                    tokens = _prune(model, zone_hosts, measured, kept + new)
                    improved = True
                    break
                tokens = _redo(model, kept + (new or []), tokens)
            if improved:
                break
    return tokens
