"""`evacuate`: the recipe (preconditions, plan, fence, force down, disable, evacuate under caps),
its adoption of a killed run's leftovers, and what `recover` does with an unfinished one."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine import tags
from novamove.engine.batch.common import _since  # the shared listing's start: the same rule as a drain's
from novamove.engine.batch.report import StepResult
from novamove.engine.batch.drain import resolve_hosts
from novamove.engine.commands import validate_command
from novamove.engine.frame import RunFrame
from novamove.engine.journal import run_alive
from novamove.engine.journal.leases import still_running
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED
from novamove.engine.resolve import pick_host
from novamove.planner import Check, DrainStep, plan_to_dict
from novamove.engine.evacuate.common import (EVACUATED, EVACUATE_VERB, EV_EVACUATE, EV_FENCE, EV_PLAN, FAILED,
                                             FENCE_TIMEOUT, PLANNED, POLL_INTERVAL, POWER_POLICIES, SKIPPED,
                                             UNFENCE_VERB, UNPLACED, _requests)
from novamove.engine.evacuate.report import EvacuateReport, _result
from novamove.engine.evacuate.kind import EvacuationRunner, _Evac
from novamove.engine.evacuate.plan import _step_results, make_plan
from novamove.engine.evacuate.fencing import (check_fencing, check_stop_loss, prove_quiet,
                                              quiet_period_default, run_fence)
from novamove.engine.evacuate.service import _fence_service, _service, _settle_service_intents


# ---------------------------------------------------------------------------------- journal helpers

def _runs(journal: Any, verb: str, host: str) -> list[dict]:
    return journal.runs(limit=100000, verbs={verb}, source=host)


def unfinished_evacuations(journal: Any, host: str) -> list[dict]:
    """Earlier evacuations of `host` that a new run continues (since the last that ended ok)."""
    out: list[dict] = []
    for r in reversed(_runs(journal, EVACUATE_VERB, host)):       # oldest first
        if r["status"] == "ok":
            out = []
        elif not (r.get("summary") or "").startswith("continued by"):
            out.append(r)
    return out


def _refuse_concurrent(journal: Any, runs: Sequence[dict], host: str) -> None:
    for r in runs:
        if r["status"] == "running" and r.get("pid") != os.getpid() and run_alive(r):
            raise errors.PreconditionFailed(
                f"evacuate run {r['id']} of {host} is still running (pid {r['pid']}); wait for it or stop it first")


def _leftovers(journal: Any, previous: Sequence[dict]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(server -> open intent event, server -> done event) over the earlier runs."""
    open_: dict[str, Any] = {}
    done: dict[str, Any] = {}
    for run in previous:
        for ev in journal.events(run["id"]):
            if ev.kind != EV_EVACUATE:
                continue
            if ev.state == "intent":
                open_[ev.target] = ev
                done.pop(ev.target, None)
            else:
                open_.pop(ev.target, None)
                if ev.state == "done":
                    done[ev.target] = ev
                else:
                    done.pop(ev.target, None)
    return open_, done


def _adopt(cloud: Any, journal: Any, previous: Sequence[dict], source: str, say: Callable[[str], None],
           clock: Callable[[], float]) -> tuple[list[_Evac], list[StepResult]]:
    """Evacuations earlier runs started: (still in flight -> followed, finished -> reported).

    An intent without an outcome is read back: a newer evacuation record than the ones the run
    knew means Nova took it (followed, never posted again); none means the POST never got
    through (the server is planned again)."""
    open_, done = _leftovers(journal, previous)
    adopted: list[_Evac] = []
    landed: list[StepResult] = []
    for sid, ev in done.items():
        d = ev.data
        step = DrainStep(server_id=sid, server_name=d.get("name") or sid, source=d.get("source") or source,
                         dest=d.get("dest"), mode="evacuate")
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            continue
        if server.host == step.dest:
            landed.append(_result(step, EVACUATED, f"evacuated by run {ev.run_id}", host=server.host))
    for sid, ev in open_.items():
        d = ev.data
        step = DrainStep(server_id=sid, server_name=d.get("name") or sid, source=d.get("source") or source,
                         dest=d.get("dest"), mode="evacuate")
        known = set(d.get("known") or [])
        since = d.get("submitted_at") or ""
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            journal.failed(ev.id, result=SKIPPED, detail="server deleted")
            continue
        records = [m for m in cloud.list_evacuations(server_id=sid)
                   if m.id not in known and (m.created_at or "")[:19] >= since[:19]]
        if not records and not server.task_state and server.host == step.source:
            journal.failed(ev.id, result=NOT_STARTED,
                           detail="read back: no evacuation record, server untouched (planned again)")
            continue
        say(f"{step.server_name}: evacuation started by run {ev.run_id}; following it (not posted again)")
        f = _Evac(step, ev.id, clock(), known, d.get("expected") or "ACTIVE", submitted_at=since, adopted=True)
        f.migration = records[0] if records else None
        adopted.append(f)
    return adopted, landed


# ---------------------------------------------------------------------------------- evacuate

def evacuate(cloud: Any, host: str, *, journal: Any, targets: Sequence[str] = (),
             fence_cmd: Optional[str] = None, fenced: bool = False, power: str = "restore",
             reason: Optional[str] = None, max_parallel: int = 4, max_per_host: int = 2,
             max_down_percent: float = 50.0, dry_run: bool = False, poll_interval: float = POLL_INTERVAL,
             step_timeout: float = 1800.0, fence_timeout: float = FENCE_TIMEOUT,
             quiet_period: Optional[float] = None,
             progress: Optional[Callable[[str], None]] = None, **runner_kwargs: Any) -> EvacuateReport:
    """Evacuate every server of the failed compute `host` (see the module docstring)."""
    say = progress or (lambda line: None)
    t0, requests0 = time.monotonic(), _requests(cloud)
    tags.check_reason(reason)
    if power not in POWER_POLICIES:
        raise errors.UsageError(f"--power must be one of {', '.join(POWER_POLICIES)}")
    if fence_cmd and fenced:
        raise errors.UsageError("give either --fence-cmd or --fenced, not both")
    validate_command(fence_cmd, "--fence-cmd")
    if max_parallel < 1 or max_per_host < 1:
        raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
    if not 0 <= max_down_percent <= 100:
        raise errors.UsageError("--max-down-percent must be between 0 and 100")
    quiet_period = quiet_period_default(quiet_period)
    if not quiet_period > 0:
        raise errors.UsageError("--quiet-period must be more than 0 seconds")
    hosts = cloud.compute_hosts(with_resources=True)
    name = pick_host(host, hosts).name
    targets = resolve_hosts(targets, hosts)
    if name in targets:
        raise errors.UsageError(f"{name} is the failed host and a --to destination")
    need = "2.95" if power == "stopped" else "2.29"
    if not cloud.supports(need):
        raise errors.PreconditionFailed(
            f"{'leaving evacuated servers stopped' if power == 'stopped' else 'evacuating to a named host without force'}"
            f" needs compute API {need}; this cloud offers {cloud.microversion}; nothing changed")
    services = [h.service for h in hosts]
    svc = next(h.service for h in hosts if h.name == name)
    fence_note = check_fencing(svc, fenced=fenced, fence_cmd=fence_cmd)
    stop_loss = check_stop_loss(services, name, max_down_percent)
    previous = unfinished_evacuations(journal, name)
    _refuse_concurrent(journal, previous, name)
    quiet = {k: v for k, v in runner_kwargs.items() if k in ("sleep", "clock")}
    if not fence_cmd and not dry_run:
        # Asserted fenced, or forced down already (by us or someone): it must have stopped
        # reporting before anything changes, also on a rerun or `recover`.
        fence_note += "; " + prove_quiet(cloud, name, quiet_period, **quiet)

    # In-flight evacuations of earlier runs are followed, not planned again.
    open_, _ = _leftovers(journal, previous)
    landing = {sid: ev.data.get("dest") for sid, ev in open_.items() if ev.data.get("dest")}
    plan, expected, _ = make_plan(cloud, name, hosts, targets=targets, power=power, reason=reason,
                                  max_parallel=max_parallel, max_per_host=max_per_host, landing=landing)
    plan.checks[:0] = [Check("fencing", True, fence_note), Check("stop-loss", True, stop_loss)]
    report = EvacuateReport(EVACUATE_VERB, name, plan=plan, power=power, fence=fence_note)
    if dry_run:
        report.dry_run = True
        report.results = _step_results(plan)
        notes = []
        if fence_cmd:
            notes.append(f"would run the fence command for {name}")
        notes.append(f"would check that {name} stopped reporting (quiet period {quiet_period:g} s)")
        notes.append(f"would force {name} down" if not svc.forced_down else f"{name} already forced down")
        notes.append(f"would disable {name}" if svc.enabled else f"{name} already disabled")
        report.service = "; ".join(notes)
        report.api_requests = _requests(cloud) - requests0
        report.elapsed_seconds = time.monotonic() - t0
        return report

    frame = RunFrame(journal, EVACUATE_VERB, cloud=cloud, report=report, t0=t0, requests0=requests0,
                     interrupt_error=f"left by a second Ctrl-C: run `novamove evacuate {name}` again or "
                                     "`novamove recover`", source=name, mode=power, strategy="evacuate")
    run_id = report.run_id = frame.run_id
    with frame:
        journal.note(run_id, EV_PLAN, name, plan=plan_to_dict(plan), targets=list(targets), power=power,
                     reason=reason, max_parallel=max_parallel, max_per_host=max_per_host,
                     max_down_percent=max_down_percent, continues=[r["id"] for r in previous])
        if fence_cmd:
            with journal.change(run_id, EV_FENCE, name, command=fence_cmd):
                report.fence = run_fence(fence_cmd, next(h for h in hosts if h.name == name), fence_timeout)
            say(f"{name}: {report.fence}")
            # An exit 0 proves nothing while the compute keeps reporting (wrong host, a BMC that
            # lied): nothing in the cloud is changed until it is quiet.
            quiet_note = prove_quiet(cloud, name, quiet_period, **quiet)
            report.fence += "; " + quiet_note
            say(f"{name}: {quiet_note}")
        report.service, changed = _fence_service(cloud, journal, run_id, name, reason, say)
        _settle_service_intents(cloud, journal, previous, name)
        report.changed = report.changed or changed
        clock = runner_kwargs.get("clock", time.monotonic)
        adopted, landed = _adopt(cloud, journal, previous, name, say, clock)
        report.results.extend(landed)
        adopted_ids = {a.step.server_id for a in adopted} | {r.server_id for r in landed}
        if open_:
            # Intents read back as never started are planned again (they are still on the host).
            plan2, expected2, _ = make_plan(cloud, name, cloud.compute_hosts(with_resources=True),
                                            targets=targets, power=power, reason=reason,
                                            max_parallel=max_parallel, max_per_host=max_per_host,
                                            landing={a.step.server_id: a.step.dest for a in adopted})
            plan, expected = plan2, expected2
            plan.checks[:0] = [Check("fencing", True, fence_note), Check("stop-loss", True, stop_loss)]
            report.plan = plan
        steps = [s for s in plan.steps if s.server_id not in adopted_ids]
        # Servers left on the host on purpose (tag) or that cannot be evacuated or placed.
        report.results.extend(r for r in _step_results(plan) if r.result != PLANNED
                              and r.server_id not in adopted_ids)
        since = min([r["started_at"] for r in previous], default=None)
        runner = EvacuationRunner(cloud, journal, run_id, name, [s for s in steps if s.dest], power=power,
                                  max_parallel=max_parallel, max_per_host=max_per_host, expected=expected,
                                  adopted=adopted, poll_interval=poll_interval, step_timeout=step_timeout,
                                  since=_since(since), progress=say, **runner_kwargs)
        try:
            report.results.extend(runner.run())
        finally:
            report.interrupted = runner.interrupted
            report.peak_in_flight = runner.peak_in_flight
            report.changed = report.changed or runner.actions > 0
        report.results = _ordered_results(report.results)
        frame.continues = [r["id"] for r in previous]
    return report


def _ordered_results(results: list[StepResult]) -> list[StepResult]:
    rank = {EVACUATED: 0, FAILED: 1, IN_FLIGHT: 2, NOT_STARTED: 3, UNPLACED: 4, SKIPPED: 5}
    return sorted(results, key=lambda r: (rank.get(r.result, 9), r.server_name))




# ---------------------------------------------------------------------------------- recover

def recover_run(cloud: Any, journal: Any, run: dict, **kwargs: Any) -> dict:
    """What `novamove recover` does with an unfinished evacuate/unfence run."""
    base = {"run_id": run["id"], "verb": run["verb"], "server": None, "status_before": run["status"]}
    host = run.get("source") or "?"
    if run["status"] == "running" and run.get("pid") != os.getpid() and run_alive(run):
        return {**base, "summary": f"{still_running(run)}; not touched"}
    if run["verb"] == UNFENCE_VERB:
        return {**base, "summary": f"unfence of {host} did not finish: run `novamove unfence {host}` again"}
    opts = next((e.data for e in journal.events(run["id"]) if e.kind == EV_PLAN), {})
    svc = _service(cloud, host)
    if not svc.forced_down:
        return {**base, "summary": f"evacuation of {host} stopped before the host was forced down: run "
                                   f"`novamove evacuate {host} --fence-cmd CMD` (or --fenced) again"}

    rep = evacuate(cloud, host, journal=journal, targets=opts.get("targets") or (),
                   power=opts.get("power") or "restore", reason=opts.get("reason"),
                   max_parallel=int(opts.get("max_parallel") or 4), max_per_host=int(opts.get("max_per_host") or 2),
                   max_down_percent=float(opts.get("max_down_percent", 50.0)), **kwargs)
    return {**base, "summary": f"continued by evacuate run {rep.run_id}: {rep.summary}",
            "results": [r.to_dict() for r in rep.results], "ok": rep.ok}


