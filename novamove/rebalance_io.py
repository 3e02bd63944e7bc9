"""Rebalance plans as data: the same `novamove-plan/1` JSON file as a drain plan, kind
"rebalance", so `novamove apply FILE` runs either (novamove.planner.load_plan reads both).

Besides the steps (each with what `apply` re-checks: the server's status and source), the file
carries the plan's claims: its before/after figures, the hosts it empties, the RAM its live
moves copy. They are shown as the plan's "checks" (what `novamove rebalance --dry-run` prints)
and read back after the moves by the rebalance runner.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from novamove.errors import UsageError
from novamove.model import COLD, LIVE, Resources
from novamove.planner import PLAN_FORMAT, Check, DrainStep
from novamove.rebalance import GOALS, PACK, Figures, RebalancePlan

KIND = "rebalance"


def figures_to_dict(f: Optional[Figures]) -> Optional[dict]:
    if f is None:
        return None
    return {"max_usage": f.max_usage, "spread": f.spread, "hosts_empty": f.hosts_empty,
            "servers": f.servers, "lowerable_max": f.lowerable_max}


def figures_from_dict(d: Any) -> Optional[Figures]:
    if d is None:
        return None
    return Figures(max_usage=float(d["max_usage"]), spread=float(d["spread"]),
                   hosts_empty=int(d["hosts_empty"]), servers=int(d["servers"]),
                   lowerable_max=float(d.get("lowerable_max", 0.0)))


def checks(plan: RebalancePlan) -> list[Check]:
    """The plan's claims, one line each (the dry run's table below the steps)."""
    b, a = plan.before, plan.after
    out = [Check("scope", True, f"{plan.goal} over {len(plan.hosts)} host(s): {', '.join(plan.hosts[:8])}"
                 + (" ..." if len(plan.hosts) > 8 else ""))]
    if b is not None and a is not None:
        out += [Check("max host usage", True, f"{b.max_usage:g}% -> {a.max_usage:g}%"),
                Check("usage spread", True, f"{b.spread:g} -> {a.spread:g} points (standard deviation)"),
                Check("hosts empty", True, f"{b.hosts_empty} -> {a.hosts_empty}")]
    out.append(Check("moves", True, f"{len(plan.moves)} ({sum(s.mode == LIVE for s in plan.moves)} live, "
                                    f"{sum(s.mode == COLD for s in plan.moves)} cold)"
                                    + (f", at most {plan.max_moves}" if plan.max_moves else "")
                                    + f"; min gain {plan.min_gain:g} points"))
    out.append(Check("RAM to copy", True, f"{plan.ram_bytes_to_copy} bytes "
                                          f"({plan.ram_bytes_to_copy / 2 ** 30:.2f} GiB, live moves)"))
    if plan.goal == PACK:
        out.append(Check("emptied", True, (", ".join(plan.emptied) or "none")
                         + (" (left disabled, tagged)" if plan.disable_emptied and plan.emptied else "")))
    if plan.unmovable:
        out.append(Check("staying", False, f"{len(plan.unmovable)} server(s) may not move: "
                         + "; ".join(f"{s.server_name}: {s.skip_reason}" for s in plan.unmovable[:3])
                         + (" ..." if len(plan.unmovable) > 3 else "")))
    return out


def _step(s) -> dict:
    return {"server_id": s.server_id, "server_name": s.server_name, "source": s.source, "dest": s.dest,
            "mode": s.mode, "skip_reason": s.skip_reason, "status": getattr(s, "status", ""),
            "groups": list(getattr(s, "groups", ())),
            "need": {"vcpus": s.need.vcpus, "memory_mb": s.need.memory_mb, "disk_gb": s.need.disk_gb,
                     "pcpus": s.need.pcpus}}


def plan_to_dict(plan: RebalancePlan) -> dict:
    return {
        "format": PLAN_FORMAT, "kind": KIND, "cloud": plan.cloud, "created_at": plan.created_at,
        "goal": plan.goal, "hosts": list(plan.hosts), "sources": list(plan.hosts),
        "zone": plan.zone, "aggregate": plan.aggregate, "max_moves": plan.max_moves,
        "min_gain": plan.min_gain, "max_parallel": plan.max_parallel, "max_per_host": plan.max_per_host,
        "disable_emptied": plan.disable_emptied, "reason": plan.reason, "pinned": list(plan.pinned),
        "before": figures_to_dict(plan.before), "after": figures_to_dict(plan.after),
        "emptied": list(plan.emptied), "ram_bytes_to_copy": plan.ram_bytes_to_copy,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks(plan)],
        "steps": [_step(s) for s in list(plan.moves) + list(plan.unmovable)],
    }


def plan_from_dict(data: dict) -> RebalancePlan:
    """A plan from `plan_to_dict` output; anything malformed is a one-line UsageError."""
    try:
        steps, unmovable = [], []
        if not isinstance(data["steps"], list):
            raise UsageError("malformed plan: \"steps\" must be a list of steps")
        for i, raw in enumerate(data["steps"], 1):
            if not isinstance(raw, dict):
                raise UsageError(f"malformed plan: step {i} is not an object")
            if raw["mode"] not in (LIVE, COLD):
                raise UsageError(f"plan step for {raw['server_id']}: bad mode {raw['mode']!r}")
            need = raw.get("need") or {}
            step = DrainStep(server_id=str(raw["server_id"]),
                             server_name=str(raw.get("server_name") or raw["server_id"]),
                             source=str(raw["source"]), dest=raw.get("dest"), mode=raw["mode"],
                             skip_reason=raw.get("skip_reason"),
                             need=Resources(*(float(need.get(k, 0)) for k in Resources.FIELDS)),
                             status=str(raw.get("status") or ""), groups=tuple(raw.get("groups") or ()))
            (steps if step.dest else unmovable).append(step)
        goal = data["goal"]
        if goal not in GOALS:
            raise UsageError(f"malformed plan: unknown goal {goal!r}")
        max_moves = data.get("max_moves")
        plan = RebalancePlan(
            kind=KIND, steps=steps, created_at=data.get("created_at"), goal=goal,
            hosts=tuple(data["hosts"]), max_moves=int(max_moves) if max_moves is not None else None,
            min_gain=float(data.get("min_gain", 0)), before=figures_from_dict(data.get("before")),
            after=figures_from_dict(data.get("after")), emptied=tuple(data.get("emptied") or ()),
            unmovable=unmovable, zone=data.get("zone"), aggregate=data.get("aggregate"),
            max_parallel=int(data.get("max_parallel", 4)), max_per_host=int(data.get("max_per_host", 2)),
            disable_emptied=bool(data.get("disable_emptied")), reason=data.get("reason"),
            cloud=data.get("cloud"), pinned=tuple(data.get("pinned") or ()))
    except UsageError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"malformed plan: {type(exc).__name__}: {exc}") from None
    if len(plan.hosts) < 2 or plan.max_parallel < 1 or plan.max_per_host < 1 \
            or not math.isfinite(plan.min_gain):
        raise UsageError("malformed plan: a rebalance needs two hosts and caps of at least 1")
    return plan
