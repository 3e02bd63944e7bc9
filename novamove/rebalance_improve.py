"""Spread's improvement and pruning phases (small zones): after a way's plan, lower the most
loaded hosts further by single changes or chains of two, then drop the moves the reached maximum
does not need. Every change keeps the plan's rules (novamove.rebalance), so the plan stays valid
in any order.
"""

from __future__ import annotations

from typing import Mapping, Optional

from novamove.model import Server
from novamove.rebalance_model import _Hosts, _vec, usage_of


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
