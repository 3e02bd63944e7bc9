"""Many moves at once under caps, followed with shared listings: the runner drains, undrains
and later batch verbs share, and what it reports.

`BatchRunner` starts moves while the caps allow (global, per source host, per destination
host: a step waits in the queue, it is never dropped), checks each step's pre-condition again
just before it starts, and follows all in-flight moves with one shared /os-migrations listing
per poll instead of one polling loop per server; cold moves are confirmed once Nova says
VERIFY_RESIZE; a move counts as done only when the server is seen on its destination, settled.
One move's trouble fails that step only. Ctrl-C, SIGTERM and SIGHUP start nothing new and
finish (or abort) what is in flight; a second one leaves at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Optional, Sequence

from novamove import errors
from novamove.engine import lifecycle
from novamove.engine.journal import budgets
from novamove.model import COLD, LIVE, Migration, Server, Service
from novamove.planner import DrainStep, move_mode
from novamove.engine.runner import IN_FLIGHT, CappedRunner

from novamove.engine.batch.common import (ABORTED, ABORT_GRACE, EV_ABORT, EV_CONFIRM, EV_MOVE, EV_REVERT,
                                          FAILED, GONE, LIST_AT_ONCE, MOVED, NO_RECORD_GRACE, ON_INTERRUPT,
                                          POLL_INTERVAL, RETRY, SERVICES_FRESH, SETTLED, SKEW_MARGIN, SKIPPED,
                                          STEP_ERRORS, _iso, is_passing)
from novamove.engine.batch.report import StepResult, _result
from novamove.engine import stall
from novamove.engine.batch.stalls import COLD_FALLBACK, StallHandler, StallState

log = logging.getLogger("novamove.drain")


# ---------------------------------------------------------------------------------- the runner

@dataclass
class _InFlight:
    """One move this runner follows: its step and journal entry, and the lifecycle's view of it
    (`move`: phase, migration record, what was sent)."""
    step: DrainStep
    event_id: Optional[int]
    started: float
    known_migrations: set[str]
    move: lifecycle.Move = None     # type: ignore[assignment]  (made from the step)
    submitted_at: str = ""
    failed_at: Optional[float] = None   # when the migration was first seen failed
    errors_in_a_row: int = 0            # API errors while following it (reset by a good poll)
    abort_tries: int = 0
    wrong_host: Optional[str] = None    # a cold move Nova put elsewhere, being reverted
    adopted: bool = False               # an earlier run started it (`started`: when adopted)
    stall: StallState = None            # type: ignore[assignment]  (memory progress, a stall)

    def __post_init__(self) -> None:
        if self.move is None:
            self.move = lifecycle.Move(self.step.mode, self.step.dest or "", self.step.source)
        if self.stall is None:
            self.stall = StallState()

    @property
    def migration(self) -> Optional[Migration]:
        return self.move.migration

    @migration.setter
    def migration(self, value: Optional[Migration]) -> None:
        self.move.migration = value


class BatchRunner(CappedRunner):
    """Runs the moves of a plan under caps, following them all with shared listings.

    `cloud` needs the adapter verbs get_server, list_servers_on_host, list_compute_services,
    live_migrate_server, migrate_server, confirm_resize, revert_resize, abort_migration,
    list_migrations_changed_since (and server_fault for failure reasons).
    """

    def __init__(self, cloud: Any, journal: Any, run_id: str, steps: Sequence[DrainStep], *,
                 max_parallel: int, max_per_host: int, on_interrupt: str = "finish",
                 poll_interval: float = POLL_INTERVAL, step_timeout: float = 1800.0, since: Optional[str] = None,
                 adapt_mode: bool = True, adopted: Sequence[_InFlight] = (),
                 progress: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 retries: int = 4, backoff: float = 1.0, heartbeat: Optional[Callable[[], bool]] = None,
                 may_start: Optional[Callable[[], bool]] = None,
                 pinned: Collection[str] = (), on_tick: Optional[Callable[["BatchRunner"], None]] = None,
                 on_stall: str = stall.DEFAULT_ON_STALL, stall_settings: Optional[stall.StallSettings] = None,
                 stall_history: Optional[dict] = None, stall_retry: bool = True,
                 durations: Optional[list[float]] = None):
        if on_interrupt not in ON_INTERRUPT:
            raise errors.UsageError(f"--on-interrupt must be one of {', '.join(ON_INTERRUPT)}")
        if max_parallel < 1 or max_per_host < 1:
            raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
        self.cloud, self.journal, self.run_id = cloud, journal, run_id
        self.pending: list[DrainStep] = [s for s in steps if s.dest]
        self.results: dict[str, StepResult] = {}
        self.order = [s.server_id for s in steps] + [a.step.server_id for a in adopted]
        for s in steps:
            if not s.dest:
                self.results[s.server_id] = _result(s, SKIPPED, s.skip_reason or "no destination")
        self.inflight: dict[str, _InFlight] = {a.step.server_id: a for a in adopted}
        self.max_parallel, self.max_per_host = max_parallel, max_per_host
        self.on_interrupt = on_interrupt
        self.step_timeout = step_timeout
        self.since = since or _iso(datetime.now(timezone.utc) - SKEW_MARGIN)
        self.adapt_mode = adapt_mode
        self.pinned = set(pinned)     # servers whose mode was chosen for them (campaign intents, a cold fallback)
        self.stalls = StallHandler(self, on_stall, stall_settings or stall.settings_from_env(),
                                   {} if stall_history is None else stall_history, retry=stall_retry)
        # Called every loop: keeps the drain's lease fresh; False means "stop starting moves".
        self.heartbeat = heartbeat
        self.may_start = may_start      # False: start nothing now (a lease not renewed), ask again later
        self._init_loop(poll_interval=poll_interval, progress=progress, clock=clock, sleep=sleep,
                        retries=retries, backoff=backoff, on_tick=on_tick)
        if durations is not None:
            # Moves an earlier runner of the same run saw finish (a campaign's earlier drains):
            # this one polls by when its moves are due from its first move on (runner.py).
            self.durations = durations
        self._migrations: dict[str, list[Migration]] = {}
        # The cloud-wide budget shared by every run on this journal (journal/budgets.py).
        self.budget = budgets.Gate(journal, run_id, getattr(cloud, "cloud_name", None), self.progress)
        self._services_read: Optional[tuple[float, dict[str, Service]]] = None

    # -------------------------------------------------------------- the shared loop's hooks

    def _outcome(self, step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None) -> StepResult:
        return _result(step, outcome, detail, m)

    def _stop_message(self) -> str:
        return f"{self.on_interrupt}ing {len(self.inflight)} in-flight move(s)"

    def _before_loop(self) -> None:
        if self.pending:
            # The records that exist before this runner starts a move are not that move's
            # (an earlier round's, an earlier drain's): know them before the first start.
            self._list_migrations()

    def _keep_going(self) -> bool:
        return self.heartbeat is None or self.heartbeat()

    def run(self) -> list:
        try:
            return super().run()
        finally:
            self.budget.release_all()     # the run's slots and place in line go with it

    def _on_stop(self) -> None:
        if self.on_interrupt == "abort":
            for f in self.inflight.values():
                f.move.abort_wanted = True

    # -------------------------------------------------------------- starting moves

    def _load(self) -> tuple[dict[str, int], dict[str, int]]:
        per_source: dict[str, int] = {}
        per_dest: dict[str, int] = {}
        for f in self.inflight.values():
            per_source[f.step.source] = per_source.get(f.step.source, 0) + 1
            per_dest[f.step.dest] = per_dest.get(f.step.dest, 0) + 1
        return per_source, per_dest

    def _start_what_fits(self) -> None:
        if not self.pending or len(self.inflight) >= self.max_parallel:
            return
        if self.may_start is not None and not self.may_start():
            return
        per_source, per_dest = self._load()
        startable = [s for s in self.pending
                     if per_source.get(s.source, 0) < self.max_per_host
                     and per_dest.get(s.dest, 0) < self.max_per_host]
        if not startable:
            return
        # Fresh facts for the pre-conditions: one listing of services; the servers read one by
        # one when a slot or two freed up (the usual refill), or with one listing of their
        # source when many start at once. Listing a host of hundreds of servers for every refill
        # made a big drain's refills slow and its CPU grow with N (bench/drain_scale.py).
        services = self._services()
        self.budget.refresh()            # one read; nothing more per move when no budget is set
        slots = self.max_parallel - len(self.inflight)
        on_host: dict[str, dict[str, Server]] = {}
        for step in list(self.pending):
            if len(self.inflight) >= self.max_parallel:
                break
            if (per_source.get(step.source, 0) >= self.max_per_host
                    or per_dest.get(step.dest, 0) >= self.max_per_host):
                continue            # queued: its turn comes when a slot on its hosts frees up
            if step.source not in on_host:
                on_host[step.source] = {s.id: s for s in self._call(
                    lambda: self.cloud.list_servers_on_host(step.source), f"servers on {step.source}")
                } if slots > LIST_AT_ONCE else {}
            if not self.budget.take(step.server_id, step.dest):
                break               # waiting its turn under the cloud-wide budget (said once)
            self.pending.remove(step)
            if not self._start(step, on_host[step.source], services):
                self.budget.release(step.server_id)
            else:
                per_source[step.source] = per_source.get(step.source, 0) + 1
                per_dest[step.dest] = per_dest.get(step.dest, 0) + 1

    def _services(self) -> dict[str, Service]:
        now = self.clock()
        if self._services_read is None or now - self._services_read[0] > SERVICES_FRESH:
            listed = self._call(self.cloud.list_compute_services, "compute services")
            self._services_read = (now, {s.host: s for s in listed})
        return self._services_read[1]

    def _pre_condition(self, step: DrainStep, listed: dict[str, Server],
                       services: dict[str, Service]) -> tuple[Optional[Server], Optional[StepResult]]:
        """(server, None) when the step can start now; (None, result) when it must not."""
        server = listed.get(step.server_id)
        if server is None:
            try:
                server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            except errors.NotFound:
                return None, _result(step, GONE, "the server no longer exists")
            if server.host == step.dest and server.status in SETTLED and not server.task_state:
                return None, _result(step, MOVED, f"already on {step.dest}", host=server.host)
            if server.host != step.source:
                return None, _result(step, SKIPPED, f"no longer on {step.source} (now on {server.host or 'no host'})",
                                     host=server.host)
        mode, why = move_mode(server, step.mode if step.server_id in self.pinned
                              else "auto" if self.adapt_mode else step.mode)
        if why:
            outcome = RETRY if is_passing(server) else SKIPPED
            return None, _result(step, outcome, f"changed since planned: {why}", host=server.host)
        if mode != step.mode:
            if not self.adapt_mode:
                return None, _result(step, SKIPPED, f"changed since planned: now {server.status}", host=server.host)
            self.progress(f"{step.server_name}: now {server.status}, moving it {mode} instead of {step.mode}")
            step.mode = mode
        # A destination that went away, off or down is not the server's fault: the drain plans
        # it again (another destination, or this one once it is back) instead of giving up.
        dest = services.get(step.dest)
        if dest is None:
            return None, _result(step, RETRY, f"destination {step.dest} is no longer a compute host")
        if not dest.enabled:
            return None, _result(step, RETRY, f"destination {step.dest} is now disabled"
                                 + (f" ({dest.disabled_reason})" if dest.disabled_reason else ""))
        if not dest.up:
            return None, _result(step, RETRY, f"destination {step.dest} is now down")
        return server, None

    def _start(self, step: DrainStep, listed: dict[str, Server], services: dict[str, Service]) -> bool:
        server, outcome = self._pre_condition(step, listed, services)
        if outcome is not None:
            self.results[step.server_id] = outcome
            self.progress(f"{step.server_name}: {outcome.result}: {outcome.detail}")
            return False
        known = {m.id for m in self._migrations.get(step.server_id, [])}
        submit = (self.cloud.live_migrate_server if step.mode == LIVE else self.cloud.migrate_server)
        submitted_at = _iso(datetime.now(timezone.utc) - timedelta(seconds=1))
        change = self.journal.change(self.run_id, EV_MOVE, step.server_id, keep_open=True,
                                     name=step.server_name, source=step.source, dest=step.dest,
                                     mode=step.mode)
        try:
            with change:
                submit(step.server_id, host=step.dest)
        except errors.NotFound:
            self.journal._merge(change.id, {"result": GONE})
            self.results[step.server_id] = _result(step, GONE, "the server no longer exists")
            return False
        except errors.PreconditionFailed as exc:
            # Nova refused it (409 task state, 400 no valid host for that destination, ...):
            # nothing was started. A busy server or a refused destination may pass: plan again.
            self.results[step.server_id] = _result(step, RETRY, str(exc), host=server.host)
            self.progress(f"{step.server_name}: not started ({exc}); will plan it again")
            return False
        except errors.NovamoveError as exc:
            if not errors.is_ambiguous(exc):
                raise
            # Timeout, lost connection or 5xx: Nova may have accepted it. Read the cloud back
            # instead of guessing; the request itself is never repeated blindly.
            if not self._accepted_after_all(step, known, submitted_at):
                self.journal._merge(change.id, {"read_back": "not started"})
                self.results[step.server_id] = _result(step, RETRY, f"{exc} (read back: not started)",
                                                       host=server.host)
                self.progress(f"{step.server_name}: {exc}; Nova did not start it, will plan it again")
                return False
            # It is Nova's now: the intent is open again for the watcher (and a rerun) to settle.
            self.journal._mark(change.id, "intent", {"read_back": "accepted"})
            self.progress(f"{step.server_name}: {exc}; read back: Nova accepted it, following it")
        self.actions += 1
        self.inflight[step.server_id] = _InFlight(step, change.id, self.clock(), known,
                                                  submitted_at=submitted_at,
                                                  stall=StallState(intent=stall.intent_of(server),
                                                                   intent_read=True))
        self.progress(f"{step.server_name}: {step.mode} {step.source} -> {step.dest} started "
                      f"({len(self.inflight)} in flight)")
        return True

    # -------------------------------------------------------------- following moves

    def _accepted_after_all(self, step: DrainStep, known: set[str], since: str) -> bool:
        """After an ambiguous answer to a move request: did Nova take it? A task state on the
        server or a new migration record of it says yes."""
        for _ in range(3):
            try:
                server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
                if server.task_state or server.host != step.source:
                    return True
                rows = self._call(lambda: self.cloud.list_migrations_changed_since(since), "migrations")
                return any(m.server_id == step.server_id and m.id not in known for m in rows)
            except errors.NotFound:
                return False
            except errors.NovamoveError:
                self.sleep(self.backoff)
        # The cloud does not answer: follow it as if accepted; the watcher settles it either
        # way (no migration recorded within the step timeout is reported).
        return True

    def _list_migrations(self) -> dict[str, list[Migration]]:
        rows = self._call(lambda: self.cloud.list_migrations_changed_since(self.since), "migrations")
        by_server: dict[str, list[Migration]] = {}
        for m in rows:
            by_server.setdefault(m.server_id, []).append(m)
        self._migrations = by_server
        return by_server

    def _poll(self) -> None:
        by_server = self._list_migrations()
        for sid, f in list(self.inflight.items()):
            mine = [m for m in by_server.get(sid, []) if m.id not in f.known_migrations]
            if mine:
                f.migration = max(mine, key=lambda m: int(m.id) if m.id.isdigit() else 0)
            try:
                self._advance(f)
                f.errors_in_a_row = 0
            except errors.Unreachable as exc:
                log.warning("%s: %s (will retry)", f.step.server_name, exc)
            except errors.NotFound:
                # Deleted by its owner mid-drain: nothing left to move, not a failure.
                self._finish(f, GONE, "the server was deleted during the drain", f.migration)
            except (errors.AuthError, errors.UsageError):
                raise
            except errors.NovamoveError as exc:
                # One move's trouble (409 on confirm, a 500) is retried on the next polls and
                # then fails that step only; the other moves go on.
                f.errors_in_a_row += 1
                if f.errors_in_a_row >= STEP_ERRORS:
                    self._finish(f, FAILED, f"{exc} ({f.errors_in_a_row} times in a row)", f.migration)
                else:
                    self.progress(f"{f.step.server_name}: {exc} (will retry)")

    def _advance(self, f: _InFlight) -> None:
        """One look at one move: lifecycle.next_step decides, this runner carries it out under
        its bounds (step timeout, abort grace, no-record grace, reason patience)."""
        step, move, m = f.step, f.move, f.migration
        if (m is not None and m.in_progress and step.mode == LIVE and not move.abort_wanted
                and self.clock() - f.started > self.step_timeout):
            self.progress(f"{step.server_name}: over {self.step_timeout:.0f} s, aborting it")
            move.abort_wanted = True
        self.stalls.watch(f)
        action = lifecycle.next_step(move)
        if action is lifecycle.Next.ABORT:
            self._abort(f)
            return
        limit = self.step_timeout + (ABORT_GRACE if move.abort_sent or step.mode == COLD else 0)
        if m is not None and m.in_progress and self.clock() - f.started > limit:
            # A live move whose abort did not take, or a cold copy that outlived its timeout:
            # never wait forever. The journal keeps it in flight for a rerun or `recover`.
            self._finish(f, IN_FLIGHT, f"still {m.status} after {self.clock() - f.started:.0f} s; "
                         f"rerun the drain or `novamove wait {step.server_id}` to follow it", m)
            return
        server: Optional[Server] = None
        if action is lifecycle.Next.READ_SERVER:
            server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            action = lifecycle.next_step(move, server)
        if action is lifecycle.Next.CONFIRM:
            self._resize_action(EV_CONFIRM, step, m, self.cloud.confirm_resize, "confirm resize")
            move.sent(action)
        elif action is lifecycle.Next.REVERT:
            if server is not None and server.host != step.dest and not move.abort_wanted:
                f.wrong_host = server.host
                self.progress(f"{step.server_name}: Nova put it on {server.host}, not {step.dest}: reverting")
            self._resize_action(EV_REVERT, step, m, self.cloud.revert_resize, "revert resize")
            move.sent(action)
        elif action is lifecycle.Next.LANDED:
            move.phase = lifecycle.Phase.DONE
            more, what = self.stalls.landed(f)
            self._finish(f, MOVED, f"{step.mode} migration {m.status}{more}", m, server.host, stall=what)
        elif action is lifecycle.Next.ABORTED:
            host = server.host if server is not None else None
            after_stall = self.stalls.aborted(f, host)
            if after_stall is not None:
                outcome, detail, what = after_stall
                self._finish(f, outcome, detail, m, host, stall=what)
                if what == COLD_FALLBACK:
                    self.pinned.add(step.server_id)
                    self.pending.insert(0, self.stalls.cold_step(f))
            elif f.wrong_host:
                self._finish(f, FAILED, f"Nova put it on {f.wrong_host}, not on {step.dest}; reverted", m, host)
            else:
                self._finish(f, ABORTED, f"aborted on request: migration {m.status}"
                             + (f", still on {host}" if host else ""), m, host)
        elif action is lifecycle.Next.FAILED and not (m is not None and m.done and server.status != "ERROR"):
            self._failed(f, server)
        elif action in (lifecycle.Next.FAILED, lifecycle.Next.ELSEWHERE):
            # Nova says the migration is over, yet the server, read back, is not on the target.
            self._finish(f, FAILED, f"Nova reported the migration {m.status} but the server is on "
                         f"{server.host} ({server.status}), not on {step.dest}", m, server.host)
        elif m is None:
            self._no_record(f)
        elif server is not None and not m.in_progress and not m.failed \
                and self.clock() - f.started > self.step_timeout:
            self._finish(f, FAILED, f"not settled after {self.step_timeout:.0f} s: {server.status}"
                         f"/{server.task_state}", m, server.host)
        elif server is not None and m.failed and self.clock() - f.started > self.step_timeout:
            self._failed(f, server)     # a "stale error" that never ends is an error after all

    def _abort(self, f: _InFlight) -> None:
        step, m = f.step, f.migration
        f.abort_tries += 1
        try:
            with self.journal.change(self.run_id, EV_ABORT, step.server_id, migration_id=m.id):
                self._call(lambda: self.cloud.abort_migration(step.server_id, m.id), "abort migration")
            self.actions += 1
            f.move.sent(lifecycle.Next.ABORT)
        except errors.NovamoveError as exc:   # e.g. already past the point of no return
            if f.abort_tries >= 3:
                f.move.abort_sent = True
                self.progress(f"{step.server_name}: could not abort ({exc}); letting it finish")

    def _no_record(self, f: _InFlight) -> None:
        """Nova's conductor writes the record within seconds of accepting the request; none
        after NO_RECORD_GRACE means the request was lost inside the control plane (a message
        broker restart, say): the server may be left in a task state only an administrator
        can clear."""
        step = f.step
        grace = min(self.step_timeout, NO_RECORD_GRACE)
        if self.clock() - f.started <= grace:
            return
        server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
        stuck = (f"; {step.server_name} is stuck {server.status}/{server.task_state} on {server.host}: "
                 f"`openstack server set --state active {step.server_id}` clears it"
                 if server.task_state else "")
        self._finish(f, FAILED, f"Nova accepted the move but recorded no migration within "
                     f"{grace:.0f} s (lost in the control plane)" + stuck, host=server.host)

    def _failed(self, f: _InFlight, server: Optional[Server]) -> None:
        """Over and not on the target: reported with Nova's reason, waited for briefly."""
        step, m = f.step, f.migration
        reason = self._fault(step, f.submitted_at)
        f.failed_at = self.clock() if f.failed_at is None else f.failed_at
        if not lifecycle.reason_due(f.failed_at, self.clock(), reason, m):
            return
        status = m.status if m is not None else (server.status if server is not None else "?")
        self._finish(f, FAILED, f"migration {status}" + (f": {reason}" if reason else ""), m,
                     server.host if server is not None else None)

    def _resize_action(self, kind: str, step, m, call, what: str) -> None:
        """Confirm or revert a cold move in VERIFY_RESIZE, journaled before it is sent."""
        with self.journal.change(self.run_id, kind, step.server_id, migration_id=m.id):
            self._call(lambda: call(step.server_id), what)
        self.actions += 1

    def _finish(self, f: _InFlight, outcome: str, detail: str, m: Optional[Migration] = None,
                host: Optional[str] = None, stall: Optional[str] = None) -> None:
        step = f.step
        res = _result(step, outcome, detail, m, host=host)
        res.stall = stall
        res.seconds = self.clock() - f.started
        self.results[step.server_id] = res
        if outcome == MOVED:
            self._record_duration(f, res.seconds)
        if f.event_id is not None and outcome != IN_FLIGHT:
            # An in-flight move keeps its intent open: a rerun or `recover` follows it.
            data = {"result": outcome, "detail": detail, "migration_id": m.id if m else None, "host": host}
            (self.journal.done if outcome == MOVED else self.journal.failed)(f.event_id, **data)
        del self.inflight[step.server_id]
        self.budget.release(step.server_id)
        self.progress(f"{step.server_name}: {outcome} ({detail}) in {res.seconds:.0f} s")

    def _fault(self, step: DrainStep, since: str) -> Optional[str]:
        try:
            return self.cloud.server_fault(step.server_id, since=since or None)
        except Exception:  # a reason is nice to have; the failure is reported either way
            return None


# Statuses a server passes through: a drain that meets one waits and plans it again.
