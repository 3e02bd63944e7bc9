"""The evacuation move kind: starts evacuations under the caps and judges each one by Nova's
record read back, on the one capped runner (engine/runner.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine.batch.report import StepResult
from novamove.engine.journal import budgets
from novamove.engine.runner import CappedRunner
from novamove.model import Migration, Server, Service
from novamove.planner import DrainStep
from novamove.engine.evacuate.common import (EVACUATED, EVAC_DONE, EVAC_FAILED, GONE, EV_EVACUATE, FAILED,
                                             POLL_INTERVAL, REASON_PATIENCE, SKEW_MARGIN, SKIPPED, UNPLACED,
                                             _iso, expected_status)
from novamove.engine.evacuate.report import _result
from novamove.engine.evacuate.plan import not_evacuable

log = logging.getLogger("novamove.evacuate")


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
        # The cloud-wide budget shared by every run on this journal (journal/budgets.py).
        self.budget = budgets.Gate(journal, run_id, getattr(cloud, "cloud_name", None), self.progress)

    # -------------------------------------------------------------- the shared loop's hooks

    rerun = "rerun the evacuation"

    def _outcome(self, step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None) -> StepResult:
        return _result(step, outcome, detail, m)

    def run(self) -> list:
        try:
            return super().run()
        finally:
            self.budget.release_all()     # the run's slots and place in line go with it

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
        self.budget.refresh()            # one read; nothing more per move when no budget is set
        for step in list(self.pending):
            if len(self.inflight) >= self.max_parallel:
                break
            if per_dest.get(step.dest, 0) >= self.max_per_host:
                continue        # queued: its turn comes when its destination has a free slot
            if not self.budget.take(step.server_id, step.dest):
                break           # waiting its turn under the cloud-wide budget (said once)
            self.pending.remove(step)
            if not self._start(step, on_source, services):
                self.budget.release(step.server_id)
            else:
                per_dest[step.dest] = per_dest.get(step.dest, 0) + 1

    def _pre_condition(self, step: DrainStep, on_source: dict[str, Server],
                       services: dict[str, Service]) -> tuple[Optional[Server], Optional[StepResult]]:
        server = on_source.get(step.server_id)
        if server is None:
            try:
                server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            except errors.NotFound:
                # Deleted by its owner before its turn: nothing left to evacuate (as a drain says).
                return None, _result(step, GONE, "the server no longer exists")
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
        except errors.NotFound:
            # Deleted between the listing and the request: gone, not a refusal by Nova.
            if change is not None:
                self.journal.failed(change.id, result=GONE)
            self.results[step.server_id] = _result(step, GONE, "the server no longer exists")
            self.progress(f"{step.server_name}: {GONE}: the server no longer exists")
            return False
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
            except errors.NotFound:
                # Deleted by its owner while it was rebuilt elsewhere: nothing is left to
                # evacuate, and the others go on (never a crash that leaves them unfollowed).
                self._finish(f, GONE, "the server was deleted while it was evacuated", f.migration)

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
        self.budget.release(step.server_id)
        self.progress(f"{step.server_name}: {outcome} ({detail}) in {res.seconds:.0f} s")

    def _fault(self, step: DrainStep, since: str) -> Optional[str]:
        try:
            return self.cloud.evacuation_fault(step.server_id, since=since or None)
        except Exception:  # a reason is nice to have; the failure is reported either way
            return None



