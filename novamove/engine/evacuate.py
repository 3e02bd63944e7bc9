"""Evacuate a failed compute host, and bring it back (`unfence`): fenced, planned, capped, honest.

    report = evacuate(cloud, "compute3", journal=Journal(), fenced=True, max_parallel=3)

How an evacuation runs (every change is journaled *before* it is made):
1. preconditions, each refused with one line before anything is changed:
   - fencing is proven, never inferred: `fence_cmd` (e.g. an IPMI power-off) is run and must
     exit 0, or the operator asserts `fenced=True`, or forced_down is set already; "down per
     Nova" alone is refused (a crashed nova-compute or a partition: its guests may still run,
     and evacuating them makes two copies writing to the same disks); and in every case the
     compute must have stopped reporting for `quiet_period` (`prove_quiet`);
   - stop-loss: refused when more than `max_down_percent` of the computes would be down at once
     (a network or control-plane problem, not host failures);
   - microversions: 2.29 to name the destination (novamove never sends `force`), 2.95 for
     power="stopped";
2. plan with the drain planner (capacity from placement, the failed host excluded, server
   groups, availability zone, `targets`); servers tagged `novamove:maintenance=skip` are left
   alone, servers Nova cannot evacuate (PAUSED, a task in progress, ...) or cannot place are
   reported with the reason;
3. fence (the command, if any), force the service down (Nova then accepts evacuations at once,
   instead of after service_down_time) and disable it with novamove's tag
   (`novamove:<run>: evacuate: ...`), unless someone else disabled it already;
4. evacuate each server to its planned host under the caps (global, per destination), all
   followed with one shared listing of evacuation records per poll;
5. honest outcome: a server counts as evacuated when it is on its new host, its evacuation
   record is `done` (or `completed`, once the failed host cleaned up) and its status is what
   the power policy says; anything else is a failure with Nova's reason.

Power policy: "restore" (default) evacuates at microversion 2.94 at most, where Nova rebuilds a
server in the state it had: ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF (an ERROR server comes
back ACTIVE). "stopped" uses 2.95+, where Nova leaves every evacuated server stopped on the
destination (for guests that must not start until someone checked them); it is refused on older
clouds.

A killed run stays `running` in the journal. Rerunning the same evacuation (or `novamove recover`)
adopts its leftovers: an evacuation whose record exists is followed, never posted again; one that
never reached Nova (no record, the server untouched on the failed host) is planned again.

`unfence` after the repair: nova-compute must be reporting again (it destroys the local copies of
evacuated servers when it starts), no evacuation record from the host may still be `done` or in
progress (those are duplicates not cleaned up yet: refused with the list), then forced_down is
cleared and the service enabled only if novamove's evacuate tag is on it; `move_back` brings the
evacuated servers home (live for ACTIVE ones).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine import events
from novamove.engine.batch import EV_MOVE, BatchRunner, StepResult
from novamove.engine.drain import gather_state, resolve_hosts
from novamove.engine.commands import command_env, run_in_group, validate_command
from novamove.engine.journal import run_alive
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED, CappedRunner
from novamove.engine.resolve import pick_host
from novamove.model import COLD, LIVE, Host, Migration, Server, Service
from novamove.planner import Check, CloudState, DrainPlan, DrainStep, plan_drain, plan_to_dict
from novamove.strategies.isolate import reason_run_id, tagged_reason

log = logging.getLogger("novamove.evacuate")

EVACUATE_VERB = events.VERB_EVACUATE
UNFENCE_VERB = events.VERB_UNFENCE

EV_PLAN = events.EVACUATE_PLAN
EV_FENCE = events.EVACUATE_FENCE
EV_FORCE_DOWN = events.EVACUATE_FORCE_DOWN
EV_DISABLE = events.EVACUATE_DISABLE
EV_EVACUATE = events.EVACUATE_SERVER
EV_FORCE_UP = events.UNFENCE_FORCE_UP
EV_ENABLE = events.UNFENCE_ENABLE

SKIP_TAG = "novamove:maintenance=skip"
POWER_POLICIES = ("restore", "stopped")
POLL_INTERVAL = 0.5
REASON_PATIENCE = 10.0
FENCE_TIMEOUT = 300.0
HEARTBEAT_WAIT = 90.0                  # unfence: how long to wait for nova-compute to report
# evacuate: how long a fenced compute's updated_at must stand still before it counts as stopped
# reporting; longer than two of Nova's default report_interval (10 s). NOVAMOVE_QUIET_PERIOD or
# --quiet-period change it (a cloud with a longer report_interval needs more).
QUIET_PERIOD = 25.0

# Nova evacuates ACTIVE, STOPPED (SHUTOFF) and ERROR servers with no task in progress
# (nova/compute/api.py evacuate: check_instance_state).
EVACUABLE = frozenset({"ACTIVE", "SHUTOFF", "ERROR"})
# Evacuation records: accepted -> pre-migrating -> done (the server runs on the destination);
# `completed` once the source's nova-compute came back and cleaned up; failed / error.
EVAC_DONE = frozenset({"done", "completed"})
EVAC_FAILED = frozenset({"failed", "error", "cancelled"})
# Records the failed host's nova-compute still has to clean up when it starts (duplicates).
EVAC_NOT_CLEANED = frozenset({"accepted", "pre-migrating", "done"})

# Step outcomes.
EVACUATED = events.EVACUATED
SKIPPED = events.SKIPPED       # on purpose: tagged skip
UNPLACED = events.UNPLACED     # cannot be evacuated or placed: the server stays down
FAILED = events.FAILED
PLANNED = events.PLANNED
MOVED = events.MOVED           # unfence --move-back
SKEW_MARGIN = timedelta(minutes=10)


def evacuate_reason(run_id: str, reason: Optional[str]) -> str:
    return tagged_reason(run_id, f"evacuate: {reason or 'host failed'}")


def is_our_evacuate_reason(disabled_reason: Optional[str]) -> bool:
    return reason_run_id(disabled_reason) is not None and ": evacuate:" in (disabled_reason or "")


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def _requests(cloud: Any) -> int:
    return getattr(getattr(cloud, "requests", None), "count", 0)


def expected_status(before: str, power: str) -> str:
    """The status an evacuated server must show on its new host under the power policy."""
    if (before or "").upper() == "ERROR":
        return "ACTIVE"          # Nova rebuilds an ERROR server and it comes back ACTIVE
    if power == "stopped":
        return "SHUTOFF"
    return "SHUTOFF" if (before or "").upper() == "SHUTOFF" else "ACTIVE"


# ---------------------------------------------------------------------------------- report

@dataclass
class EvacuateReport:
    verb: str                     # evacuate | unfence
    host: str
    run_id: Optional[str] = None
    dry_run: bool = False
    plan: Optional[DrainPlan] = None
    results: list[StepResult] = field(default_factory=list)
    fence: str = ""               # how the host was known fenced / down
    service: str = ""             # what happened to its nova-compute service
    power: str = "restore"
    changed: bool = False
    interrupted: bool = False
    peak_in_flight: int = 0
    api_requests: int = 0
    elapsed_seconds: float = 0.0

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.results)

    @property
    def ok(self) -> bool:
        if self.interrupted:
            return False
        if self.dry_run:
            return True
        return not any(r.result in (FAILED, IN_FLIGHT, UNPLACED, NOT_STARTED) for r in self.results)

    @property
    def exit_code(self) -> int:
        """130 interrupted; 1 a server failed (or was left in flight); 8 no failure, but
        servers that could not be evacuated or placed are still on the failed host; else 0."""
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if self.ok:
            return errors.EXIT_OK
        if any(r.result in (FAILED, IN_FLIGHT) for r in self.results):
            return errors.EXIT_FAILED
        return getattr(errors, "EXIT_INCOMPLETE", errors.EXIT_FAILED)

    @property
    def summary(self) -> str:
        if self.dry_run:
            planned = self.count(PLANNED)
            rest = [f"{self.count(x)} {x}" for x in (SKIPPED, UNPLACED) if self.count(x)]
            what = "move back" if self.verb == UNFENCE_VERB else "to evacuate"
            return (f"plan for {self.verb} {self.host}: {planned} {what}"
                    + (", " + ", ".join(rest) if rest else "") + " (dry run: nothing changed)")
        first = MOVED if self.verb == UNFENCE_VERB else EVACUATED
        parts = [f"{self.count(first)} {first}"] if (self.results or self.verb == EVACUATE_VERB) else []
        for label in (SKIPPED, UNPLACED, FAILED, NOT_STARTED, IN_FLIGHT):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        head = "interrupted: " if self.interrupted else ""
        tail = ", ".join(parts) if parts else (self.service or "nothing to do")
        return f"{head}{self.verb} {self.host}: {tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "host": self.host, "run_id": self.run_id, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary,
            "fence": self.fence, "service": self.service, "power": self.power,
            "interrupted": self.interrupted, "peak_in_flight": self.peak_in_flight,
            "api_requests": self.api_requests, "elapsed_seconds": round(self.elapsed_seconds, 1),
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


def _result(step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None,
            host: Optional[str] = None) -> StepResult:
    return StepResult(step.server_id, step.server_name, step.source, step.dest, "evacuate", outcome,
                      detail, m.id if m else None, host)


# ---------------------------------------------------------------------------------- the runner

@dataclass
class _Evac:
    step: DrainStep
    event_id: Optional[int]
    started: float
    known: set[str]                  # evacuation records of this server that are not this one
    expected: str
    submitted_at: str = ""
    migration: Optional[Migration] = None
    failed_at: Optional[float] = None
    adopted: bool = False            # an earlier run started it (`started`: when adopted)


class EvacuationRunner(CappedRunner):
    """Starts evacuations while the caps allow and follows them all with one listing per poll.

    Evacuations cannot be aborted: Ctrl-C starts nothing new and waits for those in flight; a
    second Ctrl-C leaves at once (the journal says what was in flight; rerun or `recover`)."""

    def __init__(self, cloud: Any, journal: Any, run_id: str, source: str, steps: Sequence[DrainStep],
                 *, power: str, max_parallel: int, max_per_host: int, expected: dict[str, str],
                 adopted: Sequence[_Evac] = (), poll_interval: float = POLL_INTERVAL,
                 step_timeout: float = 1800.0, since: Optional[str] = None,
                 progress: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 retries: int = 4, backoff: float = 1.0):
        if max_parallel < 1 or max_per_host < 1:
            raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
        self.cloud, self.journal, self.run_id, self.source = cloud, journal, run_id, source
        self.target_state = "stopped" if power == "stopped" else None
        self.pending = [s for s in steps if s.dest]
        self.expected = dict(expected)
        self.results: dict[str, StepResult] = {}
        self.order = [a.step.server_id for a in adopted] + [s.server_id for s in steps]
        self.inflight: dict[str, _Evac] = {a.step.server_id: a for a in adopted}
        self.max_parallel, self.max_per_host = max_parallel, max_per_host
        self.step_timeout = step_timeout
        self.since = since or _iso(datetime.now(timezone.utc) - SKEW_MARGIN)
        self._init_loop(poll_interval=poll_interval, progress=progress, clock=clock, sleep=sleep,
                        retries=retries, backoff=backoff)
        self._records: dict[str, list[Migration]] = {}

    # -------------------------------------------------------------- the shared loop's hooks

    rerun = "rerun the evacuation"

    def _outcome(self, step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None) -> StepResult:
        return _result(step, outcome, detail, m)

    def _stop_message(self) -> str:
        # Evacuations cannot be aborted: those in flight are waited for.
        return f"waiting for {len(self.inflight)} evacuation(s) in flight"

    # -------------------------------------------------------------- public



    # -------------------------------------------------------------- loop




    # -------------------------------------------------------------- starting

    def _start_what_fits(self) -> None:
        if not self.pending or len(self.inflight) >= self.max_parallel:
            return
        per_dest: dict[str, int] = {}
        for f in self.inflight.values():
            per_dest[f.step.dest] = per_dest.get(f.step.dest, 0) + 1
        if not any(per_dest.get(s.dest, 0) < self.max_per_host for s in self.pending):
            return
        services = {s.host: s for s in self._call(self.cloud.list_compute_services, "compute services")}
        on_source = {s.id: s for s in self._call(lambda: self.cloud.list_servers_on_host(self.source),
                                                 f"servers on {self.source}")}
        for step in list(self.pending):
            if len(self.inflight) >= self.max_parallel:
                break
            if per_dest.get(step.dest, 0) >= self.max_per_host:
                continue        # queued: its turn comes when its destination has a free slot
            self.pending.remove(step)
            if self._start(step, on_source, services):
                per_dest[step.dest] = per_dest.get(step.dest, 0) + 1

    def _pre_condition(self, step: DrainStep, on_source: dict[str, Server],
                       services: dict[str, Service]) -> tuple[Optional[Server], Optional[StepResult]]:
        server = on_source.get(step.server_id)
        if server is None:
            try:
                server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            except errors.NotFound:
                return None, _result(step, SKIPPED, "the server no longer exists")
            return None, _result(step, SKIPPED, f"no longer on {step.source} (now on {server.host or 'no host'})",
                                 host=server.host)
        why = not_evacuable(server)
        if why:
            return None, _result(step, UNPLACED, f"changed since planned: {why}", host=server.host)
        dest = services.get(step.dest)
        if dest is None:
            return None, _result(step, UNPLACED, f"destination {step.dest} is no longer a compute host")
        if not dest.enabled:
            return None, _result(step, UNPLACED, f"destination {step.dest} is now disabled"
                                 + (f" ({dest.disabled_reason})" if dest.disabled_reason else ""))
        if not dest.up:
            return None, _result(step, UNPLACED, f"destination {step.dest} is now down")
        return server, None

    def _start(self, step: DrainStep, on_source: dict[str, Server], services: dict[str, Service]) -> bool:
        server, outcome = self._pre_condition(step, on_source, services)
        if outcome is not None:
            self.results[step.server_id] = outcome
            self.progress(f"{step.server_name}: {outcome.result}: {outcome.detail}")
            return False
        expected = self.expected.get(step.server_id) or expected_status(server.status, "restore")
        known = {m.id for m in self._records.get(step.server_id, [])}
        submitted_at = _iso(datetime.now(timezone.utc) - timedelta(seconds=5))
        change = None
        try:
            # keep_open: the intent stays open until the evacuation is seen to its end.
            with self.journal.change(self.run_id, EV_EVACUATE, step.server_id, keep_open=True,
                                     name=step.server_name, source=step.source, dest=step.dest,
                                     status=server.status, expected=expected, known=sorted(known),
                                     submitted_at=submitted_at) as change:
                self.cloud.evacuate_server(step.server_id, step.dest, target_state=self.target_state)
        except errors.NovamoveError as exc:
            # (change is None when the failure came before the call: journal.change marked the
            # intent failed already, and reading back finds nothing.)
            if not errors.is_ambiguous(exc):
                if change is None and not isinstance(exc, (errors.PreconditionFailed, errors.NotFound)):
                    raise
                # Nova answered with a refusal (journaled failed): nothing was started.
                if change is not None:
                    self.journal.failed(change.id, result=FAILED)
                self.results[step.server_id] = _result(step, FAILED, str(exc), host=server.host)
                self.progress(f"{step.server_name}: evacuation refused: {exc}")
                return False
            # No answer, or a 5xx: Nova may have accepted it. Read back; never post it again blindly.
            record = self._read_back(step, known, submitted_at)
            if record is None:
                if change is not None:
                    self.journal.failed(change.id, result=FAILED,
                                        read_back="no evacuation record, server untouched")
                self.results[step.server_id] = _result(step, FAILED, f"{exc} (read back: Nova did not start it; "
                                                       "rerun the evacuation to try again)", host=server.host)
                self.progress(f"{step.server_name}: evacuation not accepted: {exc}")
                return False
            if change is None:
                raise                   # cannot happen: nothing was sent
            # It is Nova's now: the intent is open again for the watcher (and a rerun) to settle.
            self.journal._mark(change.id, "intent", {"read_back": "accepted"})
            self.progress(f"{step.server_name}: the answer was lost ({exc}) but Nova recorded the "
                          f"evacuation ({record.status}); following it")
        event = change.id
        self.actions += 1
        self.inflight[step.server_id] = _Evac(step, event, self.clock(), known, expected,
                                              submitted_at=submitted_at)
        self.progress(f"{step.server_name}: evacuation {step.source} -> {step.dest} started "
                      f"({len(self.inflight)} in flight)")
        return True

    def _read_back(self, step: DrainStep, known: set[str], since: str) -> Optional[Migration]:
        for _ in range(3):
            try:
                rows = self._call(lambda: self.cloud.list_evacuations(server_id=step.server_id),
                                  "evacuation records")
            except errors.NovamoveError:
                rows = []
            mine = [m for m in rows if m.id not in known and (m.created_at or "")[:19] >= since[:19]]
            if mine:
                return mine[0]
            try:
                server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
                if server.task_state or server.host != step.source:
                    # Nova took it (rebuilding) though the record was not listed yet: follow it.
                    return Migration(id="?", server_id=step.server_id, source_host=step.source,
                                     dest_host=step.dest, status="accepted", migration_type="evacuation")
            except errors.NovamoveError:
                pass
            self.sleep(1.0)
        return None

    # -------------------------------------------------------------- following

    def _poll(self) -> None:
        rows = self._call(lambda: self.cloud.list_evacuations(source_host=self.source, since=self.since),
                          "evacuation records")
        by_server: dict[str, list[Migration]] = {}
        for m in rows:
            by_server.setdefault(m.server_id, []).append(m)
        self._records = by_server
        for sid, f in list(self.inflight.items()):
            mine = [m for m in by_server.get(sid, []) if m.id not in f.known]
            if mine:
                f.migration = max(mine, key=lambda m: int(m.id) if m.id.isdigit() else 0)
            try:
                self._advance(f)
            except errors.Unreachable as exc:
                log.warning("%s: %s (will retry)", f.step.server_name, exc)

    def _advance(self, f: _Evac) -> None:
        step, m = f.step, f.migration
        over = self.clock() - f.started > self.step_timeout
        if m is None:
            if over:
                self._finish(f, FAILED, f"Nova recorded no evacuation within {self.step_timeout:.0f} s")
            return
        if m.status in EVAC_FAILED:
            server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            if server.task_state and not over:
                return                  # Nova is still unwinding it
            reason = self._fault(step, f.submitted_at)
            if not reason:
                f.failed_at = self.clock() if f.failed_at is None else f.failed_at
                if self.clock() - f.failed_at < REASON_PATIENCE:
                    return
            self._finish(f, FAILED, f"evacuation {m.status}" + (f": {reason}" if reason else ""), m, server.host)
            return
        if m.status not in EVAC_DONE:
            if over:
                self._finish(f, FAILED, f"evacuation still {m.status} after {self.step_timeout:.0f} s "
                             "(Nova is still on it: rerun or `novamove recover` follows it)", m)
            return
        server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
        if server.task_state:
            if over:
                self._finish(f, FAILED, f"not settled after {self.step_timeout:.0f} s: "
                             f"{server.status}/{server.task_state}", m, server.host)
            return                      # e.g. powering-off a server that was SHUTOFF
        if server.host != step.dest:
            self._finish(f, FAILED, f"Nova reported the evacuation {m.status} but the server is on "
                         f"{server.host}, not {step.dest}", m, server.host)
        elif server.status != f.expected:
            self._finish(f, FAILED, f"on {server.host} but {server.status}, expected {f.expected}"
                         + (f": {server.fault}" if server.fault else ""), m, server.host)
        else:
            self._finish(f, EVACUATED, f"evacuation {m.status}, {server.status}", m, server.host)

    def _finish(self, f: _Evac, outcome: str, detail: str, m: Optional[Migration] = None,
                host: Optional[str] = None) -> None:
        step = f.step
        res = _result(step, outcome, detail, m, host=host)
        res.seconds = self.clock() - f.started
        self.results[step.server_id] = res
        if outcome == EVACUATED:
            self._record_duration(f, res.seconds)
        if f.event_id is not None:
            data = {"result": outcome, "detail": detail, "migration_id": m.id if m else None, "host": host}
            (self.journal.done if outcome == EVACUATED else self.journal.failed)(f.event_id, **data)
        del self.inflight[step.server_id]
        self.progress(f"{step.server_name}: {outcome} ({detail}) in {res.seconds:.0f} s")

    def _fault(self, step: DrainStep, since: str) -> Optional[str]:
        try:
            return self.cloud.evacuation_fault(step.server_id, since=since or None)
        except Exception:  # a reason is nice to have; the failure is reported either way
            return None



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


# ---------------------------------------------------------------------------------- preconditions

def _is_down(svc: Service) -> bool:
    return svc.forced_down or svc.state != "up"


def check_stop_loss(services: Sequence[Service], name: str, max_down_percent: float) -> str:
    """Refuse when more than `max_down_percent` of the computes would be down at once."""
    total = len(services)
    down = sorted({s.host for s in services if _is_down(s)} | {name})
    share = 100.0 * len(down) / total if total else 100.0
    if share > max_down_percent:
        raise errors.PreconditionFailed(
            f"stop-loss: {len(down)} of {total} computes would be down at once ({', '.join(down[:8])}"
            f"{', ...' if len(down) > 8 else ''}), more than {max_down_percent:g}%: that looks like a "
            "network or control-plane problem, not host failures; nothing changed "
            "(--max-down-percent to override)")
    return f"{len(down)} of {total} computes down ({share:.0f}%, limit {max_down_percent:g}%)"


def quiet_period_default(value: Optional[float] = None) -> float:
    """--quiet-period, else NOVAMOVE_QUIET_PERIOD, else QUIET_PERIOD (a rerun by `recover` reads
    the same variable)."""
    if value is not None:
        return float(value)
    env = os.environ.get("NOVAMOVE_QUIET_PERIOD")
    if not env:
        return QUIET_PERIOD
    try:
        return float(env)
    except ValueError:
        raise errors.UsageError(f"NOVAMOVE_QUIET_PERIOD={env!r} is not a number of seconds") from None


def check_fencing(svc: Service, *, fenced: bool, fence_cmd: Optional[str]) -> str:
    """How the host is known fenced; refuses a compute that is not.

    "Down per Nova" is no proof: a crashed nova-compute or a host cut off from RabbitMQ is
    down to Nova while its guests still run, and evacuating them starts them twice on shared
    storage. Only the operator's word (`fenced`), a fence command that exits 0, or a forced_down
    already set counts; `prove_quiet` then checks that the compute has stopped reporting."""
    if svc.forced_down:
        return f"{svc.host} is already forced down"
    if fence_cmd:
        return f"{svc.host} will be fenced by the fence command"
    if fenced:
        return f"{svc.host} fenced (asserted by the operator)"
    state = "down per Nova" if svc.state != "up" else "up"
    raise errors.PreconditionFailed(
        f"{svc.host} is not fenced ({state}{', its guests may still run' if state != 'up' else ''}): "
        "refusing to evacuate, they would run twice; fence it with --fence-cmd CMD, or power it off "
        "and pass --fenced; nothing changed")


def _parse_time(ts: Optional[str]) -> Optional[datetime]:
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)


def prove_quiet(cloud: Any, name: str, quiet_period: float, *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> str:
    """Proof that the compute has stopped reporting, or PreconditionFailed.

    Nova's view counts when it is its own: a service that is not forced down and shows down has
    not reported for service_down_time. Otherwise (up, or forced down, which hides the state)
    the service's `updated_at` must not advance for `quiet_period` seconds, measured in Nova's
    clock (the answers' Date header) where the cloud gives it, so a report from long ago is
    proof at once and a fresh one is waited out. Call it before novamove changes the service:
    its own PUTs move updated_at too."""
    svc = _service(cloud, name)
    if not svc.forced_down and svc.state != "up":
        return f"Nova shows it down (last report {svc.updated_at or 'never'})"
    first = cloud.compute_service_heartbeat(name)
    now_fn = getattr(cloud, "cloud_now", None)
    waited = 0.0
    t0 = clock()
    while True:
        nova_now = now_fn() if now_fn else None
        last = _parse_time(first)
        if nova_now is not None and last is not None:
            quiet_for = (nova_now - last).total_seconds()
        else:
            quiet_for = waited
        if quiet_for >= quiet_period:
            return (f"no report for {quiet_for:.0f} s (last {first or 'never'}"
                    f"{', in Nova clock' if nova_now is not None else ''}; quiet period {quiet_period:g} s)")
        sleep(min(1.0, quiet_period - quiet_for + 0.1))
        waited = clock() - t0
        now = cloud.compute_service_heartbeat(name)
        if now != first:
            how = "forced down but" if svc.forced_down else "fenced but"
            raise errors.PreconditionFailed(
                f"{name} is {how} its nova-compute still reports (updated_at {first} -> {now}): "
                "it is not fenced, its guests may still run; refusing to evacuate; power the host off "
                "(check the fence command) and run evacuate again; nothing changed in the cloud")


def run_fence(cmd: str, host: Host, timeout: float = FENCE_TIMEOUT) -> str:
    """Run the operator's fence command (shell) with NOVAMOVE_HOST/NOVAMOVE_HYPERVISOR set and
    novamove's secrets left out, in its own process group (killed whole on timeout)."""
    import tempfile
    env = command_env({"NOVAMOVE_HOST": host.name, "NOVAMOVE_HYPERVISOR": host.hypervisor_hostname or host.name})
    with tempfile.TemporaryFile(mode="w+") as out:
        code = run_in_group(cmd, env, timeout, stdout=out, stderr=subprocess.STDOUT)
        out.seek(0)
        text = out.read()
    if code is None:
        raise errors.PreconditionFailed(f"fence command did not finish within {timeout:.0f} s: "
                                        f"{host.name} is not known fenced; nothing changed in the cloud")
    if code != 0:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        raise errors.PreconditionFailed(
            f"fence command exited {code}" + (f" ({last.strip()[:200]})" if last else "")
            + f": {host.name} is not known fenced; nothing changed in the cloud")
    return "fence command exited 0"


# ---------------------------------------------------------------------------------- journal helpers

def _runs(journal: Any, verb: str, host: str) -> list[dict]:
    return [r for r in journal.runs(limit=100000) if r["verb"] == verb and r["source"] == host]


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

    run_id = uuid.uuid4().hex[:12]
    report.run_id = run_id
    journal.start_run(run_id, EVACUATE_VERB, cloud=getattr(cloud, "cloud_name", None), source=name,
                      mode=power, strategy="evacuate")
    journal.note(run_id, EV_PLAN, name, plan=plan_to_dict(plan), targets=list(targets), power=power,
                 reason=reason, max_parallel=max_parallel, max_per_host=max_per_host,
                 max_down_percent=max_down_percent, continues=[r["id"] for r in previous])
    try:
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
    except KeyboardInterrupt:
        report.interrupted = True
        journal.finish_run(run_id, "interrupted", summary=report.summary,
                           error=f"left by a second Ctrl-C: run `novamove evacuate {name}` again or `novamove recover`")
        raise
    except BaseException as exc:
        journal.finish_run(run_id, "failed", summary=report.summary, error=str(exc)[:500])
        raise
    report.results = _ordered_results(report.results)
    report.api_requests = _requests(cloud) - requests0
    report.elapsed_seconds = time.monotonic() - t0
    status = "interrupted" if report.interrupted else ("ok" if report.ok else "failed")
    journal.finish_run(run_id, status, summary=report.summary)
    for r in previous:
        journal.finish_run(r["id"], "recovered", summary=f"continued by evacuate run {run_id}")
    return report


def _ordered_results(results: list[StepResult]) -> list[StepResult]:
    rank = {EVACUATED: 0, FAILED: 1, IN_FLIGHT: 2, NOT_STARTED: 3, UNPLACED: 4, SKIPPED: 5}
    return sorted(results, key=lambda r: (rank.get(r.result, 9), r.server_name))


def _since(previous_start: Optional[str]) -> str:
    start = datetime.now(timezone.utc)
    if previous_start:
        try:
            prev = datetime.fromisoformat(previous_start)
            start = min(start, prev if prev.tzinfo else prev.replace(tzinfo=timezone.utc))
        except ValueError:
            pass
    return _iso(start - SKEW_MARGIN)


def _fence_service(cloud: Any, journal: Any, run_id: str, name: str, reason: Optional[str],
                   say: Callable[[str], None]) -> tuple[str, bool]:
    """Force the service down, then disable it with our tag (each journaled before the call).
    A lost answer is read back from the service, never assumed."""
    svc = _service(cloud, name)
    notes, changed = [], False
    if svc.forced_down:
        notes.append(f"{name} already forced down")
        journal.note(run_id, EV_FORCE_DOWN, name, already=True)
    else:
        _service_change(cloud, journal, run_id, EV_FORCE_DOWN, name, lambda: cloud.set_service_forced_down(svc, True),
                        lambda s: s.forced_down, service_id=svc.id)
        changed = True
        notes.append(f"{name} forced down")
    svc = _service(cloud, name)
    if not svc.enabled:
        if is_our_evacuate_reason(svc.disabled_reason):
            notes.append(f"{name} already disabled by a novamove evacuation")
        else:
            notes.append(f"{name} already disabled by someone else ({svc.disabled_reason or 'no reason'}): "
                         "left as is, unfence will not enable it")
        journal.note(run_id, EV_DISABLE, name, already=True, reason=svc.disabled_reason)
    else:
        text = evacuate_reason(run_id, reason)
        _service_change(cloud, journal, run_id, EV_DISABLE, name, lambda: cloud.disable_service(svc, text),
                        lambda s: not s.enabled and s.disabled_reason == text, service_id=svc.id, reason=text)
        changed = True
        notes.append(f"{name} disabled ({text})")
    for n in notes:
        say(n)
    return "; ".join(notes), changed


def _settle_service_intents(cloud: Any, journal: Any, previous: Sequence[dict], name: str) -> None:
    """Intents of killed runs on the service (fence, force down, disable) get their outcome,
    read back from the service, so nothing in the journal stays open."""
    svc = None
    for run in previous:
        for ev in journal.events(run["id"]):
            if ev.state != "intent" or ev.kind not in (EV_FENCE, EV_FORCE_DOWN, EV_DISABLE):
                continue
            svc = svc or _service(cloud, name)
            if ev.kind == EV_FENCE:
                journal.failed(ev.id, detail="interrupted while the fence command ran: outcome unknown")
            elif ev.kind == EV_FORCE_DOWN:
                (journal.done if svc.forced_down else journal.failed)(ev.id, detail="read back by a later run")
            else:
                took = not svc.enabled and svc.disabled_reason == ev.data.get("reason")
                (journal.done if took else journal.failed)(ev.id, detail="read back by a later run")


def _service(cloud: Any, name: str) -> Service:
    for s in cloud.list_compute_services():
        if s.host == name:
            return s
    raise errors.NotFound(f"no nova-compute service on {name!r}")


def _service_change(cloud: Any, journal: Any, run_id: str, kind: str, name: str, call: Callable[[], Any],
                    took: Callable[[Service], bool], **data: Any) -> None:
    """One service PUT through journal.change (intent before, outcome after; NOVAMOVE_FAULT
    hooks). A lost answer (timeout, 5xx) is read back from the service, never assumed."""
    change = None
    try:
        with journal.change(run_id, kind, name, **data) as change:
            call()
    except errors.NovamoveError as exc:
        if change is None or not errors.is_ambiguous(exc):
            raise                       # refused, or failed before the call (journaled failed)
        try:
            now = _service(cloud, name)
        except errors.NovamoveError:
            raise exc
        if not took(now):
            journal.failed(change.id, read_back="not applied")
            raise
        journal.done(change.id, read_back="applied", error=None)


# ---------------------------------------------------------------------------------- unfence

def evacuated_from(journal: Any, host: str) -> list[dict]:
    """Servers novamove evacuated off `host` since its last `unfence --move-back`:
    [{server_id, name, dest}] (latest evacuation of each)."""
    runs = list(reversed(journal.runs(limit=100000)))          # oldest first
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
        notes = [f"would clear forced_down of {name}" if svc.forced_down else f"{name} not forced down"]
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
    run_id = uuid.uuid4().hex[:12]
    report.run_id = run_id
    journal.start_run(run_id, UNFENCE_VERB, cloud=getattr(cloud, "cloud_name", None), source=name,
                      mode="move-back" if move_back else "enable", strategy="evacuate")
    notes = []
    try:
        if svc.forced_down:
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
        if steps:
            runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=max_parallel,
                                 max_per_host=max_per_host, poll_interval=poll_interval,
                                 step_timeout=step_timeout, adapt_mode=True, progress=say, **runner_kwargs)
            try:
                report.results = runner.run()
            finally:
                report.interrupted = runner.interrupted
                report.peak_in_flight = runner.peak_in_flight
                report.changed = report.changed or runner.actions > 0
        if now.state != "up" and not report.interrupted:
            report.results.append(StepResult("", name, name, None, "service", FAILED,
                                             f"{name}'s nova-compute is {now.state} after unfence"))
    except KeyboardInterrupt:
        journal.finish_run(run_id, "interrupted", summary=report.summary)
        raise
    except BaseException as exc:
        journal.finish_run(run_id, "failed", summary=report.summary, error=str(exc)[:500])
        raise
    report.api_requests = _requests(cloud) - requests0
    report.elapsed_seconds = time.monotonic() - t0
    journal.finish_run(run_id, "interrupted" if report.interrupted else ("ok" if report.ok else "failed"),
                       summary=report.summary)
    _settle_unfence_runs(cloud, journal, name, run_id)
    return report


def _settle_unfence_runs(cloud: Any, journal: Any, name: str, run_id: str) -> None:
    """Earlier unfence runs of `name` that died: their open intents get the outcome read back
    from the cloud, and the runs are marked continued by this one."""

    svc = None
    for r in _runs(journal, UNFENCE_VERB, name):
        if r["id"] == run_id or r["status"] in ("ok", "failed", "recovered", "noop", "checked"):
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
        journal.finish_run(r["id"], "recovered", summary=f"continued by unfence run {run_id}")


# ---------------------------------------------------------------------------------- recover

def recover_run(cloud: Any, journal: Any, run: dict, **kwargs: Any) -> dict:
    """What `novamove recover` does with an unfinished evacuate/unfence run."""
    base = {"run_id": run["id"], "verb": run["verb"], "server": None, "status_before": run["status"]}
    host = run.get("source") or "?"
    if run["status"] == "running" and run.get("pid") != os.getpid() and run_alive(run):
        return {**base, "summary": f"still running (pid {run['pid']}); not touched"}
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


__all__ = ["EvacuateReport", "EvacuationRunner", "evacuate", "unfence", "recover_run", "make_plan",
           "evacuate_reason", "is_our_evacuate_reason", "SKIP_TAG", "POWER_POLICIES"]
