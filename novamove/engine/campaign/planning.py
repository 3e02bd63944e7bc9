"""A campaign's plan as data: per host (moves, stops, why not serviced), stages, the estimate.
"""


from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

from novamove.model import COLD, LIVE, Resources, Server
from novamove.planner import DrainStep, move_mode
from novamove.engine.campaign.intents import INTENT_KEY, SKIP, STOP


# ------------------------------------------------------------------------------- results

@dataclass
class HostPlan:
    name: str
    servers: int = 0
    moves: int = 0
    stop: list[str] = field(default_factory=list)          # server names powered off in place
    skip: list[str] = field(default_factory=list)          # server names never touched
    unmovable: list[str] = field(default_factory=list)     # "name: why" Nova cannot move
    serviced: bool = True
    why_not: str = ""                                      # when not serviced
    stage: Optional[int] = None
    estimate_seconds: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Stage:
    index: int
    hosts: list[str]
    moves: list[DrainStep] = field(default_factory=list)
    unplaced: list[DrainStep] = field(default_factory=list)   # movable, no destination: N+K fails
    free_after: dict[str, Resources] = field(default_factory=dict)   # destinations' free space left
    eligible: int = 0                                          # hosts that could receive
    free_total: Resources = Resources()                        # free space of those, before the stage
    ok: bool = True
    problem: str = ""

    def to_dict(self) -> dict:
        return {
            "stage": self.index, "hosts": self.hosts, "ok": self.ok, "problem": self.problem,
            # Keys as openstacksdk names them (as in every other novamove document).
            "moves": [{"server_id": s.server_id, "server_name": s.server_name, "source_compute": s.source,
                       "dest_compute": s.dest, "mode": s.mode} for s in self.moves],
            "unplaced": [{"server_id": s.server_id, "server_name": s.server_name, "source_compute": s.source,
                          "need": _res(s.need), "why": s.skip_reason} for s in self.unplaced],
            "eligible_hosts": self.eligible, "free_before": _res(self.free_total),
            "free_after": {h: _res(r) for h, r in sorted(self.free_after.items())},
        }


@dataclass
class CampaignPlan:
    hosts: list[str]                       # the ordered hosts that will be serviced
    host_plans: dict[str, HostPlan]
    stages: list[Stage]
    max_hosts: int
    problems: list[str] = field(default_factory=list)     # what refuses the campaign
    warnings: list[str] = field(default_factory=list)
    estimate_seconds: float = 0.0
    intents: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def not_serviced(self) -> list[HostPlan]:
        return [p for p in self.host_plans.values() if not p.serviced]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "max_hosts": self.max_hosts, "hosts": self.hosts,
            "estimate_seconds": round(self.estimate_seconds), "problems": self.problems,
            "warnings": self.warnings,
            "host_plans": [p.to_dict() for p in self.host_plans.values()],
            "stages": [s.to_dict() for s in self.stages],
        }


def _res(r: Resources) -> dict:
    out = {"vcpus": r.vcpus, "memory_mb": r.memory_mb, "disk_gb": r.disk_gb}
    if r.pcpus:
        out["pcpus"] = r.pcpus
    return out


def _fmt(r: Resources) -> str:
    return f"{r.vcpus:g} vCPU, {r.memory_mb:g} MB RAM, {r.disk_gb:g} GB disk" + (
        f", {r.pcpus:g} PCPU" if r.pcpus else "")


# ------------------------------------------------------------------------------- per host

def host_plan(name: str, servers: Sequence[Server], intents: Mapping[str, str], *,
              allow_skip: bool = False, allow_unmovable: bool = False) -> HostPlan:
    """What servicing one host means for its servers (pure)."""
    hp = HostPlan(name, servers=len(servers))
    for s in servers:
        intent = intents.get(s.id)
        if intent == SKIP:
            hp.skip.append(s.name)
            continue
        if intent == STOP:
            hp.stop.append(s.name)
            continue
        _, why = move_mode(s, intent if intent in (LIVE, COLD) else "auto")
        if why and not _passing(s):
            hp.unmovable.append(f"{s.name}: {why}")
        else:
            hp.moves += 1
    if hp.skip and not allow_skip:
        hp.serviced = False
        hp.why_not = (f"holds {len(hp.skip)} server(s) tagged {INTENT_KEY}=skip ({', '.join(hp.skip[:3])}); "
                      "allow it with --allow-skip")
    elif hp.unmovable and not allow_unmovable:
        hp.serviced = False
        hp.why_not = (f"holds {len(hp.unmovable)} server(s) Nova cannot move ({'; '.join(hp.unmovable[:2])}); "
                      "fix them, tag them stop, or allow it with --allow-unmovable")
    return hp


# Statuses a server passes through (a move in flight, a build): the drain waits for them.
_PASSING = {"BUILD", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REBUILD", "REBOOT", "HARD_REBOOT", "PASSWORD",
            "UNKNOWN"}


def _passing(server: Server) -> bool:
    return bool(server.task_state) or (server.status or "").upper() in _PASSING


def drain_seconds(moves: int, max_parallel: int, max_per_host: int, move_seconds: float, sources: int = 1) -> float:
    """A drain of `moves` off `sources` hosts: the per-source cap binds each, the global cap all."""
    return math.ceil(moves / max(1, min(max_parallel, max_per_host * sources))) * move_seconds if moves else 0.0


def estimate(per_host_drain: Sequence[float], max_hosts: int, hook_seconds: float,
             gate_seconds: float, back_seconds: Sequence[float] = (),
             together: Optional[Callable[[list[int]], float]] = None) -> float:
    """The campaign's length as the runner schedules it: at most `max_hosts` out; the hosts
    that take slots free at the same moment are drained together (`together(indices)`: that
    drain's seconds, by default the longest of theirs), the next drain starting once it ends;
    hooks and gates overlap with later drains."""
    joint = together or (lambda idx: max(per_host_drain[i] for i in idx))
    drain_free = 0.0
    out: list[float] = []          # end times of hosts out of service (heap)
    end = 0.0
    i, n = 0, len(per_host_drain)
    while i < n:
        start = drain_free
        while len(out) >= max_hosts:
            start = max(start, heapq.heappop(out))
        while out and out[0] <= start:
            heapq.heappop(out)
        batch = list(range(i, min(n, i + max_hosts - len(out))))
        drained = start + joint(batch)
        drain_free = drained
        for j in batch:
            back = back_seconds[j] if j < len(back_seconds) else 0.0
            done = drained + hook_seconds + gate_seconds + back
            heapq.heappush(out, done)
            end = max(end, done)
        i += len(batch)
    return end


