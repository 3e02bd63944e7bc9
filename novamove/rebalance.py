"""Rebalance and consolidate from Placement alone: `spread` and `pack` plans.

Pure logic over novamove.model values, like the drain planner: no API calls, no clock, no
randomness but shuffles from fixed seeds (spread's restarts, novamove.rebalance_spread), so a
plan is reproducible from one snapshot of the cloud and cheap to test. The modules:
rebalance_model (the hosts as a plan changes them), rebalance_spread (+ rebalance_improve,
rebalance_cut), rebalance_pack.

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

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Host, Plan, PlanStep, Server
from novamove.planner import CloudState, HARD_AFFINITY, move_mode, _NeedMemo
from novamove.rebalance_model import SMALL_SCOPE, Figures, _Hosts, usage_of
from novamove.rebalance_pack import _pack
from novamove.rebalance_spread import _spread

__all__ = ["GOALS", "SPREAD", "PACK", "DEFAULT_MIN_GAIN", "SMALL_SCOPE", "Figures", "RebalancePlan",
           "movable", "plan_rebalance", "usage_of"]

GOALS = ("spread", "pack")
SPREAD, PACK = GOALS
DEFAULT_MIN_GAIN = 2.0          # percentage points a spread move must gain


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
