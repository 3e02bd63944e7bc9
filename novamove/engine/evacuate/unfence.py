"""`unfence`: a repaired host back in service, only once its nova-compute reports again and no
duplicate of an evacuated server is left; `move_back` brings the servers home."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional

from novamove import errors
from novamove.engine import events
from novamove.engine.batch.common import EV_MOVE
from novamove.engine.batch.adopt import _adopt_leftovers
from novamove.engine.batch.moves import BatchRunner
from novamove.engine.batch.report import StepResult
from novamove.engine.frame import RunFrame
from novamove.engine.journal import run_alive
from novamove.engine.resolve import pick_host
from novamove.model import COLD, LIVE
from novamove.planner import DrainPlan, DrainStep
from novamove.engine.evacuate.common import (EVACUATE_VERB, EVAC_NOT_CLEANED, EV_ENABLE, EV_EVACUATE, EV_FORCE_DOWN,
                                             EV_FORCE_UP, FAILED, HEARTBEAT_WAIT, PLANNED, POLL_INTERVAL,
                                             UNFENCE_VERB, _requests, is_our_evacuate_reason)
from novamove.engine.evacuate.report import EvacuateReport
from novamove.engine.evacuate.service import _service, _service_change
from novamove.engine.evacuate.flow import _runs, unfinished_evacuations


# ---------------------------------------------------------------------------------- unfence

def forced_down_by_us(journal: Any, host: str) -> bool:
    """Whether an evacuation in this journal forced `host` down (or may have: an intent whose
    answer was lost) after the last unfence that cleared it. A forced_down nobody here set is
    someone else's (an operator, a fencing agent such as Masakari or Pacemaker)."""
    ours = False
    for r in reversed(journal.runs(limit=100000, verbs={EVACUATE_VERB, UNFENCE_VERB}, source=host)):  # oldest first
        if r["source"] != host or r["verb"] not in (EVACUATE_VERB, UNFENCE_VERB):
            continue
        for ev in journal.events(r["id"]):
            if ev.kind == EV_FORCE_DOWN and ev.state in ("intent", "done", "failed"):
                ours = True
            elif ev.kind == EV_FORCE_UP and ev.state == "done":
                ours = False
    return ours


def evacuated_from(journal: Any, host: str) -> list[dict]:
    """Servers novamove evacuated off `host` since its last `unfence --move-back`:
    [{server_id, name, dest}] (latest evacuation of each)."""
    runs = list(reversed(journal.runs(limit=100000, verbs={EVACUATE_VERB, UNFENCE_VERB}, source=host)))  # oldest first
    last_back = max((i for i, r in enumerate(runs) if r["verb"] == UNFENCE_VERB and r["source"] == host
                     and r["status"] == "ok" and r["mode"] == "move-back"), default=-1)
    out: dict[str, dict] = {}
    for r in runs[last_back + 1:]:
        if r["verb"] != EVACUATE_VERB or r["source"] != host:
            continue
        for ev in journal.events(r["id"]):
            if ev.kind == EV_EVACUATE and ev.state == "done":
                out[ev.target] = {"server_id": ev.target, "name": ev.data.get("name") or ev.target,
                                  "dest": ev.data.get("dest")}
    return list(out.values())


def not_cleaned_up(cloud: Any, host: str) -> list[str]:
    """Servers evacuated off `host` whose local copy its nova-compute has not destroyed yet
    (evacuation records accepted / pre-migrating / done): "name (id, status)"."""
    out = []
    for m in cloud.list_evacuations(source_host=host):
        if m.status not in EVAC_NOT_CLEANED:
            continue
        try:
            label = cloud.get_server(m.server_id).name
        except errors.NotFound:
            label = "deleted"
        out.append(f"{label} ({m.server_id}, evacuation {m.status})")
    return sorted(set(out))


def wait_heartbeat(cloud: Any, host: str, timeout: float, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> bool:
    """True once the service's updated_at moves (nova-compute is reporting), within timeout."""
    first = cloud.compute_service_heartbeat(host)
    end = clock() + timeout
    while clock() < end:
        sleep(1.0)
        now = cloud.compute_service_heartbeat(host)
        if now and now != first:
            return True
    return False


SCHEDULABLE_WAIT = 60.0


def wait_schedulable(cloud: Any, node: str, timeout: float, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Enabling a service clears its node's COMPUTE_STATUS_DISABLED trait in placement through
    the compute (or its periodic task); until then the scheduler finds no valid host there."""
    if not hasattr(cloud, "provider_traits"):
        return True
    end = clock() + timeout
    while True:
        try:
            if "COMPUTE_STATUS_DISABLED" not in cloud.provider_traits(node):
                return True
        except errors.NovamoveError:
            return True             # placement unreadable: the moves themselves will tell
        if clock() >= end:
            return False
        sleep(1.0)


def unfence(cloud: Any, host: str, *, journal: Any, move_back: bool = False,
            wait: float = HEARTBEAT_WAIT, dry_run: bool = False, max_parallel: int = 4,
            max_per_host: int = 2, poll_interval: float = POLL_INTERVAL, step_timeout: float = 1800.0,
            progress: Optional[Callable[[str], None]] = None, **runner_kwargs: Any) -> EvacuateReport:
    """Put a repaired host back: nova-compute reporting, no duplicates left, forced_down
    cleared, enabled if novamove's evacuate tag is on it; with move_back, its servers home."""
    say = progress or (lambda line: None)
    t0, requests0 = time.monotonic(), _requests(cloud)
    hosts = cloud.compute_hosts(with_resources=False)
    name = pick_host(host, hosts).name
    svc = next(h.service for h in hosts if h.name == name)
    report = EvacuateReport(UNFENCE_VERB, name, dry_run=dry_run)
    for r in unfinished_evacuations(journal, name):
        if r["status"] == "running" and run_alive(r) and r.get("pid") != os.getpid():
            raise errors.PreconditionFailed(f"evacuate run {r['id']} of {name} is still running "
                                            f"(pid {r['pid']}); wait for it first")
    # 1. nova-compute must be back: forced down hides its state, so watch its heartbeat.
    if svc.forced_down:
        if not dry_run and not wait_heartbeat(cloud, name, wait, **{k: v for k, v in runner_kwargs.items()
                                                                     if k in ("sleep", "clock")}):
            raise errors.PreconditionFailed(
                f"{name}'s nova-compute is not reporting (no heartbeat in {wait:.0f} s): start it first "
                "(it destroys the local copies of the evacuated servers when it starts); nothing changed")
    elif svc.state != "up":
        raise errors.PreconditionFailed(f"{name}'s nova-compute is down: start it first; nothing changed")
    # 2. Duplicates: evacuations its nova-compute has not cleaned up.
    left = not_cleaned_up(cloud, name)
    if left:
        shown = ", ".join(left[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else "")
        raise errors.PreconditionFailed(
            f"{name} still holds {len(left)} evacuated server(s) not cleaned up by its nova-compute: "
            f"{shown}; restart nova-compute on {name} (or wait for evacuations in progress) and run "
            "unfence again; nothing changed")
    ours = not svc.enabled and is_our_evacuate_reason(svc.disabled_reason)
    # forced_down is cleared only where novamove set it (journal or its tag on the service).
    clear_forced = svc.forced_down and (ours or forced_down_by_us(journal, name))
    someone_elses = (f"{name} stays forced down: novamove did not set it (no evacuation in this journal "
                     "forced it down, and its disabled reason is not novamove's); whoever did (an operator, a "
                     "fencing agent such as Masakari or Pacemaker) clears it: `openstack compute service set "
                     f"--up {name} nova-compute`") if svc.forced_down and not clear_forced else ""
    back = evacuated_from(journal, name) if move_back else []
    steps = []
    for m in back:
        try:
            server = cloud.get_server(m["server_id"])
        except errors.NotFound:
            continue
        if m.get("dest") and server.host == m["dest"]:
            steps.append(DrainStep(server_id=m["server_id"], server_name=m["name"], source=m["dest"],
                                   dest=name, mode=COLD if server.status == "SHUTOFF" else LIVE,
                                   status=server.status))
    report.plan = DrainPlan(kind="drain", source=name, steps=steps, sources=(name,), mode="auto",
                            max_parallel=max_parallel, max_per_host=max_per_host)
    if dry_run:
        notes = [someone_elses or (f"would clear forced_down of {name}" if svc.forced_down
                                   else f"{name} not forced down")]
        if ours:
            notes.append(f"would enable {name}")
        elif not svc.enabled:
            notes.append(f"{name} disabled by someone else ({svc.disabled_reason or 'no reason'}): left as is")
        report.service = "; ".join(notes)
        report.results = [StepResult(s.server_id, s.server_name, s.source, s.dest, s.mode, PLANNED, "move back")
                          for s in steps]
        report.api_requests = _requests(cloud) - requests0
        report.elapsed_seconds = time.monotonic() - t0
        return report
    frame = RunFrame(journal, UNFENCE_VERB, cloud=cloud, report=report, t0=t0, requests0=requests0,
                     source=name, mode="move-back" if move_back else "enable", strategy="evacuate")
    run_id = report.run_id = frame.run_id
    notes = []
    with frame:
        if someone_elses:
            notes.append(someone_elses)
            journal.note(run_id, EV_FORCE_UP, name, left=True, why="forced down by someone else")
        if clear_forced:
            _service_change(cloud, journal, run_id, EV_FORCE_UP, name,
                            lambda: cloud.set_service_forced_down(svc, False), lambda s: not s.forced_down,
                            service_id=svc.id)
            report.changed = True
            notes.append(f"{name} forced_down cleared")
        if ours:
            _service_change(cloud, journal, run_id, EV_ENABLE, name, lambda: cloud.enable_service(svc),
                            lambda s: s.enabled, service_id=svc.id, reason=svc.disabled_reason)
            report.changed = True
            notes.append(f"{name} enabled (was: {svc.disabled_reason})")
        elif not svc.enabled:
            notes.append(f"{name} left disabled: someone else disabled it ({svc.disabled_reason or 'no reason'})")
            journal.note(run_id, EV_ENABLE, name, left=True, reason=svc.disabled_reason)
        now = _service(cloud, name)
        notes.append(f"{name} is {now.state}, {now.status}")
        # An earlier unfence of this host that was killed: its moves back in flight are
        # followed (never started twice), those that landed reported (as an undrain does).
        adopted, landed = [], []
        if move_back:
            earlier = [r for r in _runs(journal, UNFENCE_VERB, name) if r["id"] != run_id
                       and r["status"] not in events.FINAL
                       and not (r["status"] == "running" and r.get("pid") != os.getpid() and run_alive(r))]
            adopted, landed = _adopt_leftovers(cloud, journal, earlier, say,
                                               runner_kwargs.get("clock", time.monotonic))
            taken = {a.step.server_id for a in adopted} | {r.server_id for r in landed}
            steps = [s for s in steps if s.server_id not in taken]
        if steps and now.enabled:
            node = next((h.hypervisor_hostname for h in hosts if h.name == name), None)
            if node and not wait_schedulable(cloud, node, SCHEDULABLE_WAIT, **{
                    k: v for k, v in runner_kwargs.items() if k in ("sleep", "clock")}):
                notes.append(f"placement still marks {node} disabled; moves back may be refused")
        report.service = "; ".join(notes)
        say(report.service)
        if steps and not now.enabled:
            # Someone else's disabled host is not ours to fill: nothing moves back, and a move
            # back that did not happen is not success (exit 1, the servers listed).
            why = (f"not moved back: {name} is disabled by someone else "
                   f"({now.disabled_reason or 'no reason'}); enable it and run unfence --move-back again")
            report.results = [StepResult(s.server_id, s.server_name, s.source, s.dest, s.mode, FAILED, why)
                              for s in steps]
            for s in steps:
                journal.note(run_id, EV_MOVE, s.server_id, result=FAILED, detail=why)
            steps = []
        report.results = list(landed) + report.results
        if steps or adopted:
            runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=max_parallel,
                                 max_per_host=max_per_host, poll_interval=poll_interval,
                                 step_timeout=step_timeout, adapt_mode=True, progress=say, adopted=adopted,
                                 stall_retry=False, **runner_kwargs)
            try:
                report.results = list(landed) + runner.run()
                for r in report.results:
                    if r.result == events.RETRY:
                        # Postponed and not tried again: not moved back, a failure (as undrain's).
                        r.result = FAILED
                        r.detail = f"{r.detail}; not moved back: run unfence --move-back again"
            finally:
                report.interrupted = runner.interrupted
                report.peak_in_flight = runner.peak_in_flight
                report.changed = report.changed or runner.actions > 0
        if now.state != "up" and not report.interrupted:
            report.results.append(StepResult("", name, name, None, "service", FAILED, someone_elses
                                             or f"{name}'s nova-compute is {now.state} after unfence"))
        frame.continues = _settle_unfence_runs(cloud, journal, name, run_id)
    return report


def _settle_unfence_runs(cloud: Any, journal: Any, name: str, run_id: str) -> list[str]:
    """Earlier unfence runs of `name` that died: their open intents get the outcome read back
    from the cloud; returns their ids (this run's frame marks them continued by it)."""
    svc = None
    settled = []
    for r in _runs(journal, UNFENCE_VERB, name):
        if r["id"] == run_id or r["status"] in events.FINAL:
            continue
        if r["status"] == "running" and r.get("pid") != os.getpid() and run_alive(r):
            continue
        for ev in journal.events(r["id"]):
            if ev.state != "intent":
                continue
            svc = svc or _service(cloud, name)
            if ev.kind == EV_FORCE_UP:
                took = not svc.forced_down
            elif ev.kind == EV_ENABLE:
                took = svc.enabled
            elif ev.kind == EV_MOVE:
                try:
                    took = cloud.get_server(ev.target).host == ev.data.get("dest")
                except errors.NotFound:
                    took = False
            else:
                took = False
            (journal.done if took else journal.failed)(ev.id, detail=f"read back by unfence run {run_id}")
        settled.append(r["id"])
    return settled


