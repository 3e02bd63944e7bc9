"""Planning an evacuation with the drain planner: what can go where, what stays and why."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from novamove.engine.batch.report import StepResult
from novamove.engine.batch.drain import gather_state
from novamove.model import Host, Server
from novamove.planner import Check, CloudState, DrainPlan, DrainStep, plan_drain
from novamove.engine.evacuate.common import EVACUABLE, PLANNED, SKIPPED, SKIP_TAG, UNPLACED, expected_status
from novamove.engine.evacuate.report import _result


# ---------------------------------------------------------------------------------- planning

def not_evacuable(server: Server) -> Optional[str]:
    """Why Nova would refuse to evacuate `server`, or None."""
    status = (server.status or "").upper()
    if server.task_state:
        return (f"busy: task_state {server.task_state}; Nova evacuates only servers with no task in "
                "progress (reset its state first)")
    if status not in EVACUABLE:
        return f"status {status}: Nova evacuates only ACTIVE, SHUTOFF or ERROR servers"
    return None


def make_plan(cloud: Any, name: str, hosts: Sequence[Host], *, targets: Sequence[str] = (),
              power: str = "restore", reason: Optional[str] = None, max_parallel: int = 4,
              max_per_host: int = 2, landing: Optional[dict[str, str]] = None
              ) -> tuple[DrainPlan, dict[str, str], list[Server]]:
    """(plan, expected status per server, servers on the host) for evacuating `name`.

    `landing`: servers already being evacuated (by an earlier run) -> their destination; they
    are not planned again, but bind their server groups and capacity as if already there.
    """
    landing = landing or {}
    state = gather_state(cloud, [name], hosts)
    on_host = [s for s in state.servers if s.host == name]
    skip_ids = cloud.server_ids_tagged(name, SKIP_TAG) if on_host else set()
    pre: list[DrainStep] = []
    servers: list[Server] = []
    expected: dict[str, str] = {}
    for s in state.servers:
        if s.host != name:
            servers.append(s)
            continue
        if s.id in landing:
            servers.append(s.replace(host=landing[s.id]))     # binds its groups at its destination
            continue
        step = DrainStep(server_id=s.id, server_name=s.name, source=name, dest=None, mode="evacuate",
                         status=s.status)
        if s.id in skip_ids:
            step.skip_reason = f"tagged {SKIP_TAG}"
            pre.append(step)
            continue
        why = not_evacuable(s)
        if why:
            step.skip_reason = why
            pre.append(step)
            continue
        expected[s.id] = expected_status(s.status, power)
        servers.append(s.replace(status="ACTIVE"))           # the planner's "movable"
    plan = plan_drain(CloudState(hosts=state.hosts, servers=servers, groups=state.groups), [name],
                      targets=targets, mode="auto", order="largest", reason=reason,
                      max_parallel=max_parallel, max_per_host=max_per_host,
                      created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    status_of = {s.id: s.status for s in on_host}
    for step in plan.steps:
        step.mode = "evacuate"
        step.status = status_of.get(step.server_id, step.status)
    unplaced = plan.skipped
    plan.steps = plan.moves + unplaced + pre
    plan.checks = [c for c in plan.checks if not c.name.startswith("source ") and c.name not in ("servers", "skipped")]
    plan.checks.append(Check("servers", True, f"{len(on_host)} on {name}: {len(plan.moves)} to evacuate, "
                             f"{len(unplaced)} cannot be placed, {len(pre)} skipped or not evacuable"))
    if unplaced:
        plan.checks.append(Check("unplaced", False, "; ".join(f"{s.server_name}: {s.skip_reason}"
                                                              for s in unplaced[:5])))
    if pre:
        plan.checks.append(Check("not evacuable", False, "; ".join(
            f"{s.server_name}: {s.skip_reason}" for s in pre[:5]) + (f"; and {len(pre) - 5} more" if len(pre) > 5 else "")))
    return plan, expected, on_host


def _step_results(plan: DrainPlan) -> list[StepResult]:
    out = []
    for s in plan.steps:
        if s.dest:
            out.append(_result(s, PLANNED, ""))
        elif (s.skip_reason or "").startswith("tagged "):
            out.append(_result(s, SKIPPED, s.skip_reason or ""))
        else:
            out.append(_result(s, UNPLACED, s.skip_reason or "no destination"))
    return out


