"""`undrain HOST [--move-back]`: give a drained host back, and with it exactly the servers of
the drain being undone."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from novamove import errors
from novamove.engine import tags
from novamove.engine.batch.common import (EV_ENABLE, EV_MOVE, DRAIN_VERB, FAILED, POLL_INTERVAL,
                                          REPLAN_PATIENCE, REPLAN_PAUSE, RETRY, UNDRAIN_VERB, _requests,
                                          _validate_options)
from novamove.model import LIVE
from novamove.engine.batch.report import BatchReport, batch_progress, _result
from novamove.engine.batch.moves import BatchRunner
from novamove.engine.batch.adopt import _adopt_leftovers
from novamove.engine.batch.common import _since
from novamove.engine.batch.claim import _dead_drains, _refuse_concurrent_drain, is_our_drain_reason
from novamove.engine.frame import RunFrame
from novamove.engine.journal import run_alive
from novamove.engine.resolve import pick_host
from novamove.planner import DrainPlan, DrainStep

def moves_of_drain(journal: Any, host: str) -> list[dict]:
    """Servers the drain being undone moved away from `host`: the drain runs of `host` since
    its last undrain (a drain killed and rerun is several runs of one drain). A drain already
    closed by an undrain, with or without move-back, is never pulled back by a later one.
    [{server_id, name, dest, mode}] (latest move of each server)."""
    # oldest first (time, then insertion); this host's drains and undrains only
    runs = list(reversed(journal.runs(limit=100000, verbs={DRAIN_VERB, UNDRAIN_VERB}, source=host)))
    last_back = max((i for i, r in enumerate(runs) if r["verb"] == UNDRAIN_VERB and r["source"] == host
                     and r["status"] == "ok"), default=-1)
    moved: dict[str, dict] = {}
    for r in runs[last_back + 1:]:
        if r["verb"] != DRAIN_VERB or r["source"] != host:
            continue
        for ev in journal.events(r["id"]):
            if ev.kind == EV_MOVE and ev.state == "done" and ev.data.get("source") == host:
                moved[ev.target] = {"server_id": ev.target, "name": ev.data.get("name") or ev.target,
                                    "dest": ev.data.get("dest"), "mode": ev.data.get("mode")}
    return list(moved.values())


def undrain(cloud: Any, host: str, *, journal: Any, move_back: bool = False, max_parallel: int = 4,
            max_per_host: int = 2, on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL,
            step_timeout: float = 1800.0, dry_run: bool = False, replan_patience: float = REPLAN_PATIENCE,
            progress: Optional[Callable[[str], None]] = None,
            status: Optional[Callable[[Any], None]] = None, **runner_kwargs: Any) -> BatchReport:
    """Re-enable `host` if a novamove drain disabled it; with move_back, bring back what it moved."""
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host)
    say = progress or (lambda line: None)
    t0, requests0 = time.monotonic(), _requests(cloud)
    hosts = cloud.compute_hosts(with_resources=False)
    name = pick_host(host, hosts).name
    # Re-enabling a host its drain is still emptying would let the scheduler refill it: here
    # (the journal) or anywhere else (the drain's lease on the service).
    _refuse_concurrent_drain(journal, name, doing="undrain")
    svc_now = next(h.service for h in hosts if h.name == name)
    tags.refuse_if_drained_elsewhere(name, svc_now.disabled_reason, set(), "undrain", _dead_drains(journal))
    svc = next(h.service for h in hosts if h.name == name)
    previous = [r for r in journal.unfinished_runs() if r["verb"] == UNDRAIN_VERB and r["source"] == name]
    if any(r["status"] == "running" and run_alive(r) for r in previous):
        raise errors.PreconditionFailed(f"cannot undrain {name}: another undrain of it is still running")
    if not svc.enabled and not is_our_drain_reason(svc.disabled_reason):
        raise errors.PreconditionFailed(
            f"{name} was disabled by someone else ({svc.disabled_reason or 'no reason given'}); "
            "novamove re-enables only the services its drains disabled")
    back = moves_of_drain(journal, name) if move_back else []
    steps = [DrainStep(server_id=m["server_id"], server_name=m["name"], source=m["dest"], dest=name,
                       mode=m.get("mode") or LIVE) for m in back if m.get("dest")]
    report = BatchReport("undrain", [name], dry_run=dry_run)
    if dry_run:
        report.service = f"would enable {name}" if not svc.enabled else f"{name} is already enabled"
        report.results = [_result(s, "planned", "move back") for s in steps]
        report.plan = DrainPlan(kind="drain", source=name, steps=steps, sources=(name,), mode="auto",
                                max_parallel=max_parallel, max_per_host=max_per_host)
        return report
    frame = RunFrame(journal, UNDRAIN_VERB, cloud=cloud, report=report, t0=t0, requests0=requests0,
                     source=name, mode="move-back" if move_back else "enable", strategy="native")
    run_id = report.run_id = frame.run_id
    with frame:
        if svc.enabled:
            report.service = f"{name} already enabled"
            journal.note(run_id, EV_ENABLE, name, already=True)
        else:
            with journal.change(run_id, EV_ENABLE, name, service_id=svc.id, reason=svc.disabled_reason):
                cloud.enable_service(svc)
            report.changed = True
            report.service = f"{name} enabled (was: {svc.disabled_reason})"
        say(report.service)
        clock = runner_kwargs.get("clock", time.monotonic)
        sleep = runner_kwargs.get("sleep", time.sleep)
        patience_ends = clock() + replan_patience
        # An earlier undrain of this host that was killed: follow what it left in flight (a
        # move back under way, a cold one awaiting confirmation) instead of skipping it.
        adopted, done_before = _adopt_leftovers(cloud, journal, previous, say, clock) if move_back else ([], [])
        results: dict = {r.server_id: r for r in done_before}
        taken = set(results) | {a.step.server_id for a in adopted}
        steps = [s for s in steps if s.server_id not in taken]
        since = _since(min([r["started_at"] for r in previous], default=None))
        started = clock()

        def tick(runner: Optional[BatchRunner]) -> None:
            if status is not None:
                status(batch_progress(UNDRAIN_VERB, [name], results, runner, clock() - started))
        while steps or adopted:
            runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=max_parallel,
                                 max_per_host=max_per_host, on_interrupt=on_interrupt,
                                 poll_interval=poll_interval, step_timeout=step_timeout,
                                 adapt_mode=True, progress=say, adopted=adopted, since=since,
                                 on_tick=tick, stall_retry=False, **runner_kwargs)
            adopted = []
            try:
                for r in runner.run():
                    results[r.server_id] = r
            finally:
                report.results = list(results.values())
                report.interrupted = report.interrupted or runner.interrupted
                report.peak_in_flight = max(report.peak_in_flight, runner.peak_in_flight)
                report.changed = report.changed or runner.actions > 0
            # A move back that could not start for a passing reason (the server busy, a lost
            # answer read back as "not started") is tried again while the patience lasts.
            again = {sid for sid, r in results.items() if r.result == RETRY}
            if not again or report.interrupted or clock() >= patience_ends:
                break
            sleep(REPLAN_PAUSE)
            steps = [s for s in steps if s.server_id in again]
        tick(None)
        for r in report.results:
            if r.result == RETRY:
                # Not moved back: a failure of this undrain, so a later one tries again.
                r.result = FAILED
        if report.ok:
            # Earlier undrains of this host that died or stopped are done with now.
            frame.continues = [r["id"] for r in journal.unfinished_runs()
                               if r["verb"] == UNDRAIN_VERB and r["source"] == name]
    return report
