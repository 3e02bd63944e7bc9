"""Drain a compute host, apply a saved plan, undrain: many moves at once, safely.

    report = drain(cloud, "compute1", journal=Journal(), max_parallel=3, max_per_host=2)

How a drain runs (each state change is journaled *before* it is made):
1. plan: gather the cloud's state through the adapter and ask novamove.planner for a
   destination per server (capacity, server groups, zones, disabled/down hosts, --to);
2. disable the source's nova-compute with a tagged reason (`novamove:<run>: drain: ...`),
   unless someone else already disabled it (then their reason is left alone);
3. run the plan with `BatchRunner`: moves start while the caps allow (global, per source host,
   per destination host: a step waits in the queue, it is never dropped), each step's
   pre-condition is checked again just before it starts, and all in-flight moves are followed
   with one shared /os-migrations listing per poll instead of one polling loop per server;
   cold moves are confirmed once Nova says VERIFY_RESIZE; a move counts as done only when the
   server is seen on its destination, settled.
4. Ctrl-C: nothing new starts; in-flight moves are finished (or aborted / reverted with
   on_interrupt="abort"); a second Ctrl-C leaves at once and the journal says what was in flight.

A drain that died (killed, crashed) stays `running` in the journal, so `novamove recover` lists
it; running the same drain again adopts its leftovers (confirming cold moves it left in
VERIFY_RESIZE, waiting for moves still in flight) and continues with what is still on the host.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterable, Mapping, Optional, Sequence

from novamove import errors
from novamove.strategies.isolate import reason_run_id, tagged_reason
from novamove.engine.journal import FINAL, pid_alive
from novamove.engine.resolve import pick_host
from novamove.model import COLD, LIVE, Host, Migration, Resources, Server, Service
from novamove.planner import (COLD_STATUSES, LIVE_STATUSES, CloudState, DrainPlan, DrainStep,
                              move_mode, plan_drain, plan_to_dict)

log = logging.getLogger("novamove.drain")

# Seconds between the shared /os-migrations listings that follow every in-flight move. One
# listing serves all moves, so polling often is cheap; at 1 s each move lost ~0.5 s on average
# to the wait (bench/drain_speed.py: caps 2 went from 2.6x to 3.2x the sequential loop at 0.3 s).
POLL_INTERVAL = 0.5
REASON_PATIENCE = 10.0   # seconds to wait for Nova's reason once a move is seen failed

DRAIN_VERB = "drain"
UNDRAIN_VERB = "undrain"

# Journal event kinds of the drain engine (its own, so that recovery code written for single
# moves does not mistake a drained host's disabled service for a temporary isolation toggle).
EV_PLAN = "drain.plan"
EV_DISABLE = "drain.disable"
EV_ENABLE = "drain.enable"
EV_MOVE = "drain.move"
EV_CONFIRM = "drain.confirm"
EV_ABORT = "drain.abort"
EV_REVERT = "drain.revert"

ON_INTERRUPT = ("finish", "abort")

# Step outcomes in reports.
MOVED = "moved"
SKIPPED = "skipped"
FAILED = "failed"
ABORTED = "aborted"            # stopped on purpose (Ctrl-C with --on-interrupt abort): still on source
NOT_STARTED = "not-started"    # interrupted before its turn
IN_FLIGHT = "in-flight"        # left running by a hard exit: `novamove recover` / rerun picks it up
GONE = "gone"                  # deleted while the drain ran (by its owner): nothing left to move
# Not final: the step could not start for a reason that passes (its destination disabled for a
# moment, the server busy); the drain plans it again with fresh facts while its patience lasts.
RETRY = "retry"

# How long a drain keeps re-planning servers whose steps could not start for a passing reason
# (a destination disabled for an isolate window, a task state) before it reports them left.
REPLAN_PATIENCE = 120.0
REPLAN_PAUSE = 2.0
# Consecutive API errors one in-flight move tolerates (other than "unreachable", which the
# shared listing rides out) before its step is failed; the rest of the drain goes on.
STEP_ERRORS = 5
# After a live move's abort was refused, how long it may still run before it is reported
# in flight (never waited on forever).
ABORT_GRACE = 120.0

SETTLED = LIVE_STATUSES | COLD_STATUSES
# How far back (beyond the run start) the shared migration listing looks: covers clock skew
# between this machine and the API servers.
SKEW_MARGIN = timedelta(minutes=10)


def drain_reason(run_id: str, reason: Optional[str]) -> str:
    """The disabled_reason a drain writes: tagged, so undrain only re-enables its own."""
    return tagged_reason(run_id, f"drain: {reason or 'maintenance'}")


def is_our_drain_reason(disabled_reason: Optional[str]) -> bool:
    return reason_run_id(disabled_reason) is not None and ": drain:" in (disabled_reason or "")


# ---------------------------------------------------------------------------------- results

@dataclass
class StepResult:
    server_id: str
    server_name: str
    source: str
    dest: Optional[str]
    mode: str
    result: str                  # moved | skipped | failed | aborted | not-started | in-flight
    detail: str = ""
    migration_id: Optional[str] = None
    host: Optional[str] = None   # where the server was last seen
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["seconds"] = round(self.seconds, 1)
        return out


@dataclass
class BatchReport:
    verb: str                    # drain | apply | undrain | plan
    hosts: list[str]
    run_id: Optional[str] = None
    dry_run: bool = False
    plan: Optional[DrainPlan] = None
    results: list[StepResult] = field(default_factory=list)
    service: str = ""            # what happened to the compute service(s)
    changed: bool = False        # anything changed in the cloud (service toggled, move started)
    interrupted: bool = False
    peak_in_flight: int = 0
    api_requests: int = 0
    elapsed_seconds: float = 0.0
    # Servers still on the drained host(s) when the drain ended, read back from the cloud:
    # [{server_id, name, host, status, reason, accepted}]. `accepted`: one Nova cannot move
    # (ERROR, SHELVED, ...) left there because the operator allowed it (allow_unmovable).
    left: list[dict] = field(default_factory=list)
    checked_empty: bool = False  # the final re-listing of the source(s) was made

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.results)

    @property
    def left_unaccepted(self) -> list[dict]:
        return [x for x in self.left if not x.get("accepted")]

    @property
    def ok(self) -> bool:
        return (not self.interrupted and not any(r.result in (FAILED, IN_FLIGHT) for r in self.results)
                and not self.left_unaccepted)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if any(r.result in (FAILED, IN_FLIGHT) for r in self.results):
            return errors.EXIT_FAILED
        return errors.EXIT_INCOMPLETE if self.left_unaccepted else errors.EXIT_OK

    @property
    def summary(self) -> str:
        if self.dry_run:
            moves = len(self.plan.moves) if self.plan else 0
            skipped = len(self.plan.skipped) if self.plan else 0
            return (f"plan for {', '.join(self.hosts)}: {moves} to move, {skipped} skipped "
                    "(dry run: nothing changed)")
        parts = [f"{self.count(MOVED)} moved"]
        for label in (SKIPPED, FAILED, ABORTED, NOT_STARTED, IN_FLIGHT, GONE):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        if self.checked_empty:
            if self.left:
                names = ", ".join(x["name"] for x in self.left[:5]) + (" ..." if len(self.left) > 5 else "")
                parts.append(f"{len(self.left)} still on {', '.join(self.hosts)} ({names})")
            else:
                parts.append(f"{', '.join(self.hosts)} empty")
        head = "interrupted: " if self.interrupted else ""
        return f"{head}{self.verb} {', '.join(self.hosts)}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "hosts": self.hosts, "run_id": self.run_id, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary, "service": self.service,
            "interrupted": self.interrupted, "peak_in_flight": self.peak_in_flight,
            "api_requests": self.api_requests, "elapsed_seconds": round(self.elapsed_seconds, 1),
            "left": self.left,
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


# ---------------------------------------------------------------------------------- the runner

@dataclass
class _InFlight:
    step: DrainStep
    event_id: Optional[int]
    started: float
    known_migrations: set[str]
    migration: Optional[Migration] = None
    phase: str = "submitted"        # submitted | migrating | confirming | reverting | verifying
    aborting: bool = False
    confirm_sent: bool = False
    revert_sent: bool = False
    abort_sent: bool = False
    submitted_at: str = ""
    failed_at: Optional[float] = None   # when the migration was first seen failed
    errors_in_a_row: int = 0            # API errors while following it (reset by a good poll)
    abort_tries: int = 0


class BatchRunner:
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
                 retries: int = 4, backoff: float = 1.0, pinned: Collection[str] = ()):
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
        self.poll_interval, self.step_timeout = poll_interval, step_timeout
        self.since = since or _iso(datetime.now(timezone.utc) - SKEW_MARGIN)
        self.adapt_mode = adapt_mode
        self.pinned = frozenset(pinned)     # servers whose mode was chosen for them (campaign intents)
        self.progress = progress or (lambda line: None)
        self.clock, self.sleep = clock, sleep
        self.retries, self.backoff = retries, backoff
        self.stop_requested = False
        self.interrupted = False
        self.actions = 0                 # changes made: moves started, confirms, reverts, aborts
        self.peak_in_flight = len(self.inflight)
        self._migrations: dict[str, list[Migration]] = {}

    # -------------------------------------------------------------- public

    def request_stop(self) -> None:
        """What Ctrl-C does: start nothing new; finish (or abort) what is in flight."""
        if not self.stop_requested:
            self.stop_requested = True
            self.interrupted = True
            self.progress(f"interrupt: starting nothing new; {self.on_interrupt}ing "
                          f"{len(self.inflight)} in-flight move(s) (Ctrl-C again to leave now)")

    def run(self) -> list[StepResult]:
        restore = self._install_sigint()
        try:
            self._loop()
        except KeyboardInterrupt:
            self.interrupted = True
            for f in self.inflight.values():
                self.results[f.step.server_id] = _result(
                    f.step, IN_FLIGHT, "left in flight by a second Ctrl-C: rerun the drain or run "
                    "`novamove recover`", f.migration)
            self.inflight.clear()
            raise
        finally:
            restore()
            for s in self.pending:
                self.results.setdefault(s.server_id, _result(s, NOT_STARTED, "interrupted before its turn"))
        return [self.results[sid] for sid in dict.fromkeys(self.order) if sid in self.results]

    # -------------------------------------------------------------- loop

    def _loop(self) -> None:
        while self.pending or self.inflight:
            if self.inflight:
                self._poll()
            if self.stop_requested:
                for s in self.pending:
                    self.results[s.server_id] = _result(s, NOT_STARTED, "interrupted before its turn")
                self.pending = []
                if self.on_interrupt == "abort":
                    for f in self.inflight.values():
                        f.aborting = True
            else:
                self._start_what_fits()
            self.peak_in_flight = max(self.peak_in_flight, len(self.inflight))
            if self.inflight:
                self._pause(self.poll_interval)
            elif self.pending:
                # Nothing in flight yet nothing could start: every pending step waits for a
                # cap that cannot free up; that cannot happen, but never spin.
                self._pause(self.poll_interval)

    def _pause(self, seconds: float) -> None:
        end = self.clock() + seconds
        while not self.stop_requested or self.inflight:
            left = end - self.clock()
            if left <= 0:
                return
            self.sleep(min(left, 0.2))
            if self.stop_requested and not self.inflight:
                return

    def _install_sigint(self) -> Callable[[], None]:
        """Ctrl-C, SIGTERM (systemd, kill, a CI runner) and SIGHUP (a closed terminal) all mean
        "stop gracefully"; the second one means "leave now"."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        wanted = [sig for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None),
                                  getattr(signal, "SIGHUP", None)) if sig is not None]

        def on_signal(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.request_stop()

        previous = {}
        try:
            for sig in wanted:
                previous[sig] = signal.signal(sig, on_signal)
        except ValueError:
            pass

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return restore

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
        per_source, per_dest = self._load()
        startable = [s for s in self.pending
                     if per_source.get(s.source, 0) < self.max_per_host
                     and per_dest.get(s.dest, 0) < self.max_per_host]
        if not startable:
            return
        # Fresh facts for the pre-conditions: one listing per source host, one of services.
        services = {s.host: s for s in self._call(self.cloud.list_compute_services, "compute services")}
        on_host: dict[str, dict[str, Server]] = {}
        for step in list(self.pending):
            if len(self.inflight) >= self.max_parallel:
                break
            if (per_source.get(step.source, 0) >= self.max_per_host
                    or per_dest.get(step.dest, 0) >= self.max_per_host):
                continue            # queued: its turn comes when a slot on its hosts frees up
            if step.source not in on_host:
                on_host[step.source] = {s.id: s for s in self._call(
                    lambda: self.cloud.list_servers_on_host(step.source), f"servers on {step.source}")}
            self.pending.remove(step)
            if self._start(step, on_host[step.source], services):
                per_source[step.source] = per_source.get(step.source, 0) + 1
                per_dest[step.dest] = per_dest.get(step.dest, 0) + 1

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
        event = self.journal.intent(self.run_id, EV_MOVE, step.server_id, name=step.server_name,
                                    source=step.source, dest=step.dest, mode=step.mode)
        submit = (self.cloud.live_migrate_server if step.mode == LIVE else self.cloud.migrate_server)
        submitted_at = _iso(datetime.now(timezone.utc) - timedelta(seconds=1))
        try:
            submit(step.server_id, host=step.dest)
        except errors.NotFound:
            self.journal.failed(event, result=GONE, error="the server no longer exists")
            self.results[step.server_id] = _result(step, GONE, "the server no longer exists")
            return False
        except errors.PreconditionFailed as exc:
            # Nova refused it (409 task state, 400 no valid host for that destination, ...):
            # nothing was started. A busy server or a refused destination may pass: plan again.
            self.journal.failed(event, error=str(exc))
            self.results[step.server_id] = _result(step, RETRY, str(exc), host=server.host)
            self.progress(f"{step.server_name}: not started ({exc}); will plan it again")
            return False
        except (errors.AuthError, errors.UsageError):
            self.journal.failed(event, error="refused")
            raise
        except errors.NovamoveError as exc:
            # Timeout, lost connection or 5xx: Nova may have accepted it. Read the cloud back
            # instead of guessing; the request itself is never repeated blindly.
            if not self._accepted_after_all(step, known, submitted_at):
                self.journal.failed(event, error=str(exc), read_back="not started")
                self.results[step.server_id] = _result(step, RETRY, f"{exc} (read back: not started)",
                                                       host=server.host)
                self.progress(f"{step.server_name}: {exc}; Nova did not start it, will plan it again")
                return False
            self.progress(f"{step.server_name}: {exc}; read back: Nova accepted it, following it")
        self.actions += 1
        self.inflight[step.server_id] = _InFlight(step, event, self.clock(), known,
                                                  submitted_at=submitted_at)
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

    def _poll(self) -> None:
        rows = self._call(lambda: self.cloud.list_migrations_changed_since(self.since), "migrations")
        by_server: dict[str, list[Migration]] = {}
        for m in rows:
            by_server.setdefault(m.server_id, []).append(m)
        self._migrations = by_server
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
        step, m = f.step, f.migration
        if f.aborting and not f.abort_sent and m is not None and m.in_progress and step.mode == LIVE:
            eid = self.journal.intent(self.run_id, EV_ABORT, step.server_id, migration_id=m.id)
            f.abort_tries += 1
            try:
                self._call(lambda: self.cloud.abort_migration(step.server_id, m.id), "abort migration")
                self.actions += 1
                self.journal.done(eid)
                f.abort_sent = True
            except errors.NovamoveError as exc:   # e.g. already past the point of no return
                self.journal.failed(eid, error=str(exc))
                if f.abort_tries >= 3:
                    f.abort_sent = True
                    self.progress(f"{step.server_name}: could not abort ({exc}); letting it finish")
            return
        limit = self.step_timeout + (ABORT_GRACE if f.abort_sent or step.mode == COLD else 0)
        if m is not None and m.in_progress and self.clock() - f.started > limit:
            # A live move whose abort did not take, or a cold copy that outlived its timeout:
            # never wait forever. The journal keeps it in flight for a rerun or `recover`.
            self._finish(f, IN_FLIGHT, f"still {m.status} after {self.clock() - f.started:.0f} s; "
                         f"rerun the drain or `novamove wait {step.server_id}` to follow it", m)
            return
        if m is None:
            if self.clock() - f.started > self.step_timeout:
                self._finish(f, FAILED, f"Nova recorded no migration within {self.step_timeout:.0f} s")
            return
        if m.failed:
            if f.revert_sent or (f.abort_sent and m.status in ("cancelled", "aborted")):
                self._finish(f, ABORTED, f"aborted on request: migration {m.status}", m)
                return
            # A record marked "error" by a compute's resource tracker while the move goes on
            # (stale migration context) is not the end: wait until Nova lets go of the server.
            server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            if server.task_state and self.clock() - f.started <= self.step_timeout:
                return
            reason = self._fault(step, f.submitted_at)
            if not reason:
                # Nova marks the migration failed a moment before it records why (the instance
                # fault and action event come as the exception unwinds): give it a few polls.
                f.failed_at = self.clock() if f.failed_at is None else f.failed_at
                if self.clock() - f.failed_at < REASON_PATIENCE:
                    return
            self._finish(f, FAILED, f"migration {m.status}" + (f": {reason}" if reason else ""), m)
            return
        if m.in_progress:
            f.phase = "migrating"
            if self.clock() - f.started > self.step_timeout and step.mode == LIVE and not f.abort_sent:
                self.progress(f"{step.server_name}: over {self.step_timeout:.0f} s, aborting it")
                f.aborting = True
            return
        # Nova says the migration is over (completed / finished / confirmed): check the server.
        if step.mode == COLD and m.status == "finished":
            server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
            if server.status != "VERIFY_RESIZE":
                return              # Nova still settling it; look again next poll
            if f.aborting:
                if not f.revert_sent:
                    self._resize_action(EV_REVERT, step, m, self.cloud.revert_resize, "revert resize")
                    f.revert_sent = True
                    f.phase = "reverting"
                return
            if not f.confirm_sent:
                self._resize_action(EV_CONFIRM, step, m, self.cloud.confirm_resize, "confirm resize")
                f.confirm_sent = True
                f.phase = "confirming"
            return
        self._post_condition(f)

    def _resize_action(self, kind: str, step, m, call, what: str) -> None:
        """Confirm or revert a cold move in VERIFY_RESIZE, journaled before it is sent."""
        eid = self.journal.intent(self.run_id, kind, step.server_id, migration_id=m.id)
        self._call(lambda: call(step.server_id), what)
        self.actions += 1
        self.journal.done(eid)

    def _post_condition(self, f: _InFlight) -> None:
        step = f.step
        server = self._call(lambda: self.cloud.get_server(step.server_id), f"server {step.server_name}")
        if server.task_state or server.status not in SETTLED:
            if self.clock() - f.started > self.step_timeout:
                self._finish(f, FAILED, f"not settled after {self.step_timeout:.0f} s: {server.status}"
                             f"/{server.task_state}", f.migration, server.host)
            return
        if server.host == step.dest:
            self._finish(f, MOVED, f"{step.mode} migration {f.migration.status}", f.migration, server.host)
        elif f.abort_sent or f.revert_sent:
            self._finish(f, ABORTED, f"aborted on request: still on {server.host}", f.migration, server.host)
        else:
            self._finish(f, FAILED, f"Nova reported the migration {f.migration.status} but the server is on "
                         f"{server.host}, not {step.dest}", f.migration, server.host)

    def _finish(self, f: _InFlight, outcome: str, detail: str, m: Optional[Migration] = None,
                host: Optional[str] = None) -> None:
        step = f.step
        res = _result(step, outcome, detail, m, host=host)
        res.seconds = self.clock() - f.started
        self.results[step.server_id] = res
        if f.event_id is not None and outcome != IN_FLIGHT:
            # An in-flight move keeps its intent open: a rerun or `recover` follows it.
            data = {"result": outcome, "detail": detail, "migration_id": m.id if m else None, "host": host}
            (self.journal.done if outcome == MOVED else self.journal.failed)(f.event_id, **data)
        del self.inflight[step.server_id]
        self.progress(f"{step.server_name}: {outcome} ({detail}) in {res.seconds:.0f} s")

    def _fault(self, step: DrainStep, since: str) -> Optional[str]:
        try:
            return self.cloud.server_fault(step.server_id, since=since or None)
        except Exception:  # a reason is nice to have; the failure is reported either way
            return None

    # -------------------------------------------------------------- API calls with retries

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Retry transient failures (unreachable, 502/503/504) with exponential backoff."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except errors.Unreachable as exc:
                if attempt == self.retries:
                    raise
                log.warning("%s: %s; retrying in %.0f s", what, exc, delay)
                self.progress(f"{what}: transient error, retrying in {delay:.0f} s ({exc})")
                self.sleep(delay)
                delay = min(delay * 2, 30)


# Statuses a server passes through: a drain that meets one waits and plans it again.
PASSING_STATUSES = {"BUILD", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REBUILD", "REBOOT", "HARD_REBOOT",
                    "PASSWORD", "UNKNOWN"}


def is_passing(server: Server) -> bool:
    """Whether what keeps `server` from moving now is likely to pass by itself (a task state,
    a build or another move under way), as opposed to a state only an operator changes
    (ERROR, SHELVED, SUSPENDED, RESCUE...)."""
    return bool(server.task_state) or (server.status or "").upper() in PASSING_STATUSES


def _result(step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None,
            host: Optional[str] = None) -> StepResult:
    return StepResult(step.server_id, step.server_name, step.source, step.dest, step.mode, outcome,
                      detail, m.id if m else None, host)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------- gathering

def gather_state(cloud: Any, sources: Sequence[str], hosts: Optional[Sequence[Host]] = None) -> CloudState:
    """What the planner needs, read through the adapter (reads only)."""
    hosts = list(hosts) if hosts is not None else cloud.compute_hosts(with_resources=True)
    servers: list[Server] = []
    for name in sources:
        servers.extend(cloud.list_servers_on_host(name))
    groups = cloud.list_server_groups()
    # Members of the source servers' groups that live elsewhere: their hosts bind the choice.
    on_sources = {s.id for s in servers}
    wanted = {m for g in groups if any(m in on_sources for m in g.members) for m in g.members} - on_sources
    for sid in sorted(wanted):
        try:
            servers.append(cloud.get_server(sid))
        except errors.NotFound:
            pass        # a member deleted since the listing binds nothing
    return CloudState(hosts=hosts, servers=servers, groups=groups)


def resolve_hosts(names: Iterable[str], hosts: Sequence[Host]) -> list[str]:
    """Service host names for what the operator typed (hypervisor hostnames accepted)."""
    return [pick_host(n, hosts).name for n in names]


def make_plan(cloud: Any, sources: Sequence[str], *, targets: Sequence[str] = (), mode: str = "auto",
              order: str = "largest", reason: Optional[str] = None, max_parallel: int = 4,
              max_per_host: int = 2) -> DrainPlan:
    hosts = cloud.compute_hosts(with_resources=True)
    sources = resolve_hosts(sources, hosts)
    targets = resolve_hosts(targets, hosts)
    state = gather_state(cloud, sources, hosts)
    plan = plan_drain(state, sources, targets=targets, mode=mode, order=order, reason=reason,
                      max_parallel=max_parallel, max_per_host=max_per_host,
                      created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    plan.cloud = getattr(cloud, "identity", None)
    return plan


# ---------------------------------------------------------------------------------- verbs

def drain(cloud: Any, host: str | Sequence[str], *, journal: Any, targets: Sequence[str] = (),
          mode: str = "auto", order: str = "largest", reason: Optional[str] = None,
          max_parallel: int = 4, max_per_host: int = 2, dry_run: bool = False,
          on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL, step_timeout: float = 1800.0,
          allow_unmovable: bool = False, replan_patience: float = REPLAN_PATIENCE,
          progress: Optional[Callable[[str], None]] = None, keep: Optional[Mapping[str, str]] = None,
          modes: Optional[Mapping[str, str]] = None, **runner_kwargs: Any) -> BatchReport:
    """Disable `host`, then plan a destination for each server on it and move them (caps held),
    planning again what could not start, until the host is empty or nothing more can move.

    The plan is made after the host is disabled, so nothing scheduled onto it meanwhile is
    missed; the report's `left` is the source re-listed at the end.

    `keep` {server id: why}: servers never moved (left on the host, reported as accepted);
    `modes` {server id: live|cold}: servers moved in that mode only (campaign intents)."""
    sources = [host] if isinstance(host, str) else list(host)
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host, replan_patience=replan_patience)
    t0 = time.monotonic()
    requests0 = _requests(cloud)
    plan = make_plan(cloud, sources, targets=targets, mode=mode, order=order, reason=reason,
                     max_parallel=max_parallel, max_per_host=max_per_host)
    _pin(plan, keep, modes)
    if dry_run:
        status = {s.host: s for s in cloud.list_compute_services()}
        _refuse_down_sources(plan, status)
        service = "; ".join(f"would disable {n}" if status.get(n) and status[n].enabled
                            else f"{n} already disabled" for n in plan.sources)
        return BatchReport("drain", list(plan.sources), dry_run=True, plan=plan, service=service,
                           results=[_result(s, "planned" if s.dest else SKIPPED, s.skip_reason or "")
                                    for s in plan.steps],
                           api_requests=_requests(cloud) - requests0, elapsed_seconds=time.monotonic() - t0)
    # This first plan only tells what is there; the one that runs is made once the host is
    # disabled (a server scheduled onto it in between would otherwise be missed).
    return _execute(cloud, plan, journal=journal, verb="drain", on_interrupt=on_interrupt,
                    poll_interval=poll_interval, step_timeout=step_timeout, progress=progress,
                    t0=t0, requests0=requests0, replan_first=True, allow_unmovable=allow_unmovable,
                    replan_patience=replan_patience, keep=keep, modes=modes, **runner_kwargs)


def _validate_options(*, on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL,
                      step_timeout: float = 1800.0, max_parallel: Optional[int] = None,
                      max_per_host: Optional[int] = None, replan_patience: float = REPLAN_PATIENCE) -> None:
    """Bad numbers are one-line usage errors before anything is read or changed."""
    import math
    if on_interrupt not in ON_INTERRUPT:
        raise errors.UsageError(f"on_interrupt must be one of {', '.join(ON_INTERRUPT)}")
    for name, value in (("timeout", step_timeout), ("poll_interval", poll_interval)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or value <= 0:
            raise errors.UsageError(f"{name} must be a positive number of seconds, not {value!r}")
    if not isinstance(replan_patience, (int, float)) or not math.isfinite(replan_patience) or replan_patience < 0:
        raise errors.UsageError(f"replan_patience must be zero or more seconds, not {replan_patience!r}")
    for name, value in (("max_parallel", max_parallel), ("max_per_host", max_per_host)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise errors.UsageError(f"{name} must be a whole number of at least 1, not {value!r}")


def apply_plan(cloud: Any, plan: DrainPlan, *, journal: Any, max_parallel: Optional[int] = None,
               max_per_host: Optional[int] = None, on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL,
               step_timeout: float = 1800.0, allow_unmovable: bool = False,
               replan_patience: float = REPLAN_PATIENCE, progress: Optional[Callable[[str], None]] = None,
               **runner_kwargs: Any) -> BatchReport:
    """Run a saved drain plan; every step's pre-condition is checked again when it runs, and
    what the plan did not foresee (servers that arrived since) is planned afresh at the end."""
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host, replan_patience=replan_patience)
    plan = dataclasses.replace(plan, steps=[dataclasses.replace(s) for s in plan.steps])
    if max_parallel is not None:
        plan.max_parallel = max_parallel
    if max_per_host is not None:
        plan.max_per_host = max_per_host
    if plan.max_parallel < 1 or plan.max_per_host < 1:
        raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
    identity = getattr(cloud, "identity", None)
    if plan.cloud and identity and plan.cloud != identity:
        raise errors.PreconditionFailed(
            f"the plan was made on another cloud ({plan.cloud}); this is {identity}: make a new plan here")
    known = {h.name for h in cloud.compute_hosts(with_resources=False)}
    for name in plan.sources:
        if name not in known:
            raise errors.NotFound(f"the plan drains {name!r}, which is not a compute host of this cloud")
    return _execute(cloud, plan, journal=journal, verb="apply", on_interrupt=on_interrupt,
                    poll_interval=poll_interval, step_timeout=step_timeout, progress=progress,
                    t0=time.monotonic(), requests0=_requests(cloud), allow_unmovable=allow_unmovable,
                    replan_patience=replan_patience, **runner_kwargs)


@dataclass
class _Rounds:
    """What the rounds of one drain run add up to."""
    results: dict[str, StepResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    interrupted: bool = False
    peak_in_flight: int = 0
    actions: int = 0

    def add(self, results: Iterable[StepResult]) -> None:
        for r in results:
            if r.server_id not in self.results:
                self.order.append(r.server_id)
            # A later round's answer replaces a "retry" or an earlier attempt's.
            self.results[r.server_id] = r

    def ordered(self) -> list[StepResult]:
        return [self.results[sid] for sid in self.order]


def _execute(cloud: Any, plan: DrainPlan, *, journal: Any, verb: str, on_interrupt: str,
             poll_interval: float, step_timeout: float, progress: Optional[Callable[[str], None]],
             t0: float, requests0: int, replan_first: bool = False, allow_unmovable: bool = False,
             replan_patience: float = REPLAN_PATIENCE, keep: Optional[Mapping[str, str]] = None,
             modes: Optional[Mapping[str, str]] = None, **runner_kwargs: Any) -> BatchReport:
    say = progress or (lambda line: None)
    keep, modes = dict(keep or {}), dict(modes or {})
    clock = runner_kwargs.get("clock", time.monotonic)
    sleep = runner_kwargs.get("sleep", time.sleep)
    _refuse_down_sources(plan, {s.host: s for s in cloud.list_compute_services()})
    source_key = ",".join(plan.sources)
    _refuse_concurrent_drain(journal, source_key)
    previous = _unfinished_drains(journal, source_key)
    run_id = uuid.uuid4().hex[:12]
    journal.start_run(run_id, DRAIN_VERB, cloud=getattr(cloud, "cloud_name", None), source=source_key,
                      mode=plan.mode, strategy="native")
    report = BatchReport(verb, list(plan.sources), run_id=run_id, plan=plan)
    rounds = _Rounds()
    try:
        report.service, report.changed = _disable_sources(cloud, journal, run_id, plan, say)
        if replan_first:
            plan = _replan(cloud, plan)
            report.plan = plan
        _pin(plan, keep, modes)
        journal.note(run_id, EV_PLAN, source_key, plan=plan_to_dict(plan), via=verb,
                     continues=[r["id"] for r in previous])
        since = _since(min([r["started_at"] for r in previous], default=None))
        adopted, done_before = _adopt_leftovers(cloud, journal, previous, say, clock)
        rounds.add(done_before)
        done_ids = {r.server_id for r in done_before} | {a.step.server_id for a in adopted}
        steps = [s for s in plan.steps if s.server_id not in done_ids]
        patience_ends = clock() + replan_patience
        while True:
            runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=plan.max_parallel,
                                 max_per_host=plan.max_per_host, on_interrupt=on_interrupt,
                                 poll_interval=poll_interval, step_timeout=step_timeout,
                                 since=since, adapt_mode=plan.mode == "auto", adopted=adopted,
                                 progress=say, pinned=modes, **runner_kwargs)
            adopted = ()
            try:
                rounds.add(runner.run())
            finally:
                rounds.interrupted = rounds.interrupted or runner.interrupted
                rounds.peak_in_flight = max(rounds.peak_in_flight, runner.peak_in_flight)
                rounds.actions += runner.actions
                report.results = rounds.ordered()
                report.interrupted = rounds.interrupted
                report.peak_in_flight = rounds.peak_in_flight
                report.changed = report.changed or rounds.actions > 0
            if rounds.interrupted:
                break
            # Read the source back: what is still there decides the next round and the verdict.
            remaining = [srv for name in plan.sources for srv in cloud.list_servers_on_host(name)]
            again = [srv for srv in remaining if srv.id not in keep
                     and _worth_another_round(srv, rounds.results.get(srv.id), modes.get(srv.id, plan.mode))]
            if not again or clock() >= patience_ends:
                break
            say(f"{len(again)} server(s) still on {source_key} to move: planning them again")
            sleep(REPLAN_PAUSE)
            fresh = _replan(cloud, plan)
            _pin(fresh, keep, modes)
            wanted = {srv.id for srv in again}
            steps = [s for s in fresh.steps if s.server_id in wanted]
            journal.note(run_id, EV_PLAN, source_key, plan=plan_to_dict(fresh), via="replan")
        report.left = _left_on_sources(cloud, plan, rounds.results, allow_unmovable, keep, modes)
        report.checked_empty = True
        # What a round only postponed and no later round moved is reported as left, not as
        # "retry" (an internal state).
        for r in report.results:
            if r.result == RETRY:
                r.result = SKIPPED
    except KeyboardInterrupt:
        report.interrupted = True
        journal.finish_run(run_id, "interrupted", summary=report.summary,
                           error="left by a second Ctrl-C with moves in flight")
        raise
    except BaseException as exc:
        journal.finish_run(run_id, "failed", summary=report.summary, error=str(exc)[:500])
        raise
    report.api_requests = _requests(cloud) - requests0
    report.elapsed_seconds = time.monotonic() - t0
    status = "interrupted" if report.interrupted else ("ok" if report.ok else "failed")
    journal.finish_run(run_id, status, summary=report.summary)
    for r in previous:
        journal.finish_run(r["id"], "recovered", summary=f"continued by drain run {run_id}")
    return report


def _replan(cloud: Any, plan: DrainPlan) -> DrainPlan:
    """The same drain planned again from the cloud as it is now."""
    fresh = make_plan(cloud, plan.sources, targets=plan.targets, mode=plan.mode, order=plan.order,
                      reason=plan.reason, max_parallel=plan.max_parallel, max_per_host=plan.max_per_host)
    return fresh


def _worth_another_round(server: Server, last: Optional[StepResult], mode: str) -> bool:
    """A server still on the source is planned again unless its last answer is final."""
    if last is None:
        return True                      # arrived after the plan was made
    if last.result == RETRY:
        return True
    if last.result == SKIPPED:
        # Skipped for a passing state (a build, a task state) or for want of a destination
        # (a host that was disabled for a moment): try again; an ERROR server: no.
        _, why = move_mode(server, mode)
        return is_passing(server) or why is None
    return False                          # moved, failed, aborted, gone: this run is done with it


def _left_on_sources(cloud: Any, plan: DrainPlan, results: dict[str, StepResult],
                     allow_unmovable: bool, keep: Optional[Mapping[str, str]] = None,
                     modes: Optional[Mapping[str, str]] = None) -> list[dict]:
    """The servers still on the drained host(s), all projects, every page."""
    keep, modes = keep or {}, modes or {}
    left = []
    for name in plan.sources:
        for srv in cloud.list_servers_on_host(name):
            last = results.get(srv.id)
            _, why = move_mode(srv, modes.get(srv.id, plan.mode))
            unmovable = bool(why) and not is_passing(srv)
            reason = keep.get(srv.id) or (last.detail if last and last.detail else None) or why or "not moved"
            left.append({"server_id": srv.id, "name": srv.name, "host": srv.host, "status": srv.status,
                         "reason": reason, "accepted": srv.id in keep or (allow_unmovable and unmovable)})
    return left


def _pin(plan: DrainPlan, keep: Optional[Mapping[str, str]], modes: Optional[Mapping[str, str]]) -> None:
    """Apply per-server intents to a plan: `keep` servers get no destination; `modes` servers
    move in their mode or not at all (the reason says why)."""
    for step in plan.steps:
        if keep and step.server_id in keep:
            step.dest, step.skip_reason = None, keep[step.server_id]
        elif modes and step.server_id in modes and step.dest:
            mode, why = move_mode(Server(step.server_id, step.server_name, step.status, step.source),
                                  modes[step.server_id])
            if why:
                step.dest, step.skip_reason = None, f"maintenance intent {modes[step.server_id]}: {why}"
            else:
                step.mode = mode


def _refuse_down_sources(plan: DrainPlan, services: dict[str, Service]) -> None:
    """Nova moves a server only while the compute it is on is up (cold and live alike): with a
    down source every move would fail, so refuse before anything is changed."""
    with_moves = {s.source for s in plan.moves}
    for name in plan.sources:
        svc = services.get(name)
        if svc is not None and not svc.up and name in with_moves:
            count = sum(1 for s in plan.moves if s.source == name)
            raise errors.PreconditionFailed(
                f"cannot drain {name}: its nova-compute is down, and Nova moves no server off a "
                f"down compute ({count} to move); bring it back up, or evacuate them")


def _requests(cloud: Any) -> int:
    return getattr(getattr(cloud, "requests", None), "count", 0)


def _since(previous_start: Optional[str]) -> str:
    start = datetime.now(timezone.utc)
    if previous_start:
        try:
            prev = datetime.fromisoformat(previous_start)
            start = min(start, prev if prev.tzinfo else prev.replace(tzinfo=timezone.utc))
        except ValueError:
            pass
    return _iso(start - SKEW_MARGIN)


def _drain_runs(journal: Any, source_key: str, limit: int = 100000) -> list[dict]:
    return [r for r in journal.runs(limit=limit) if r["verb"] == DRAIN_VERB and r["source"] == source_key]


def _unfinished_drains(journal: Any, source_key: str) -> list[dict]:
    """Earlier drains of the same host(s) that a new run continues: every one since the last
    that ended ok, except those already continued (`recover` marks a run recovered, but its
    leftover moves are still the drain's business)."""
    out: list[dict] = []
    for r in reversed(_drain_runs(journal, source_key)):     # oldest first
        if r["status"] == "ok":
            out = []
        elif not (r.get("summary") or "").startswith("continued by"):
            out.append(r)
    return out


def _refuse_concurrent_drain(journal: Any, source_key: str, doing: str = "drain") -> None:
    import os
    for r in _unfinished_drains(journal, source_key):
        if r["status"] == "running" and r.get("pid") != os.getpid() and pid_alive(r.get("pid")):
            raise errors.PreconditionFailed(
                f"cannot {doing} {source_key}: drain run {r['id']} of it is still running "
                f"(pid {r['pid']}); wait for it or stop it first")


def _disable_sources(cloud: Any, journal: Any, run_id: str, plan: DrainPlan,
                     say: Callable[[str], None]) -> tuple[str, bool]:
    """Disable each source first (so nothing new lands there), journaled before the call.
    Returns (what happened, whether a service was changed)."""
    services = {s.host: s for s in cloud.list_compute_services()}
    notes = []
    changed = False
    for name in plan.sources:
        svc = services.get(name)
        if svc is None:
            raise errors.NotFound(f"no nova-compute service on {name!r}")
        if not svc.enabled:
            if is_our_drain_reason(svc.disabled_reason):
                notes.append(f"{name} already disabled by a novamove drain")
            else:
                notes.append(f"{name} already disabled by someone else ({svc.disabled_reason or 'no reason'}): "
                             "left as is, undrain will not re-enable it")
            journal.note(run_id, EV_DISABLE, name, already=True, reason=svc.disabled_reason)
            say(notes[-1])
            continue
        reason = drain_reason(run_id, plan.reason)
        eid = journal.intent(run_id, EV_DISABLE, name, service_id=svc.id, reason=reason)
        try:
            cloud.disable_service(svc, reason)
        except errors.NovamoveError as exc:
            journal.failed(eid, error=str(exc))
            raise
        journal.done(eid)
        changed = True
        notes.append(f"{name} disabled ({reason})")
        say(notes[-1])
    return "; ".join(notes), changed



def _step_from_event(server_id: str, ev) -> DrainStep:
    """The step an earlier run journaled for `server_id` (its move intent)."""
    d = ev.data
    return DrainStep(server_id=server_id, server_name=d.get("name") or server_id,
                     source=d.get("source") or "", dest=d.get("dest"), mode=d.get("mode") or LIVE)

def _adopt_leftovers(cloud: Any, journal: Any, previous: Sequence[dict], say: Callable[[str], None],
                     clock: Callable[[], float] = time.monotonic) -> tuple[list[_InFlight], list[StepResult]]:
    """Moves an earlier run of the same drain started and did not see through.

    Returns (moves still in flight or awaiting confirmation: followed by this run,
    moves that did land: reported as moved).
    """
    leftovers: dict[str, Any] = {}
    finished: dict[str, Any] = {}
    for run in previous:
        for ev in journal.events(run["id"]):
            if ev.kind == EV_MOVE and ev.state == "intent":
                leftovers[ev.target] = ev
                finished.pop(ev.target, None)
            elif ev.kind == EV_MOVE:
                leftovers.pop(ev.target, None)
                if ev.state == "done":
                    finished[ev.target] = ev
                else:
                    finished.pop(ev.target, None)
    adopted: list[_InFlight] = []
    landed: list[StepResult] = []
    # Moves the earlier run saw through: reported again (the table covers the whole drain),
    # but only if the server is still where that run put it.
    for sid, ev in finished.items():
        step = _step_from_event(sid, ev)
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            continue
        if server.host == step.dest:
            landed.append(_result(step, MOVED, f"moved by run {ev.run_id}", host=server.host))
    for sid, ev in leftovers.items():
        step = _step_from_event(sid, ev)
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            journal.failed(ev.id, result=SKIPPED, detail="server deleted")
            continue
        busy = server.task_state or server.status in ("MIGRATING", "RESIZE", "VERIFY_RESIZE")
        if busy:
            say(f"{step.server_name}: left in flight by run {ev.run_id}; following it")
            adopted.append(_InFlight(step, ev.id, clock(), set(), phase="adopted"))
        elif server.host == step.dest:
            journal.done(ev.id, result=MOVED, detail="landed while no drain was watching", host=server.host)
            landed.append(_result(step, MOVED, f"landed (started by run {ev.run_id})", host=server.host))
        else:
            journal.failed(ev.id, result=FAILED, detail=f"did not land (on {server.host})", host=server.host)
    return adopted, landed


# ---------------------------------------------------------------------------------- undrain

def moves_of_drain(journal: Any, host: str) -> list[dict]:
    """Servers the drain being undone moved away from `host`: the drain runs of `host` since
    its last undrain (a drain killed and rerun is several runs of one drain). A drain already
    closed by an undrain, with or without move-back, is never pulled back by a later one.
    [{server_id, name, dest, mode}] (latest move of each server)."""
    runs = list(reversed(journal.runs(limit=100000)))      # oldest first (time, then insertion)
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
            step_timeout: float = 1800.0, dry_run: bool = False,
            progress: Optional[Callable[[str], None]] = None, **runner_kwargs: Any) -> BatchReport:
    """Re-enable `host` if a novamove drain disabled it; with move_back, bring back what it moved."""
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host)
    say = progress or (lambda line: None)
    t0, requests0 = time.monotonic(), _requests(cloud)
    hosts = cloud.compute_hosts(with_resources=False)
    name = pick_host(host, hosts).name
    # Re-enabling a host its drain is still emptying would let the scheduler refill it.
    _refuse_concurrent_drain(journal, name, doing="undrain")
    svc = next(h.service for h in hosts if h.name == name)
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
    run_id = uuid.uuid4().hex[:12]
    report.run_id = run_id
    journal.start_run(run_id, UNDRAIN_VERB, cloud=getattr(cloud, "cloud_name", None), source=name,
                      mode="move-back" if move_back else "enable", strategy="native")
    try:
        if svc.enabled:
            report.service = f"{name} already enabled"
            journal.note(run_id, EV_ENABLE, name, already=True)
        else:
            eid = journal.intent(run_id, EV_ENABLE, name, service_id=svc.id, reason=svc.disabled_reason)
            cloud.enable_service(svc)
            journal.done(eid)
            report.changed = True
            report.service = f"{name} enabled (was: {svc.disabled_reason})"
        say(report.service)
        if steps:
            runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=max_parallel,
                                 max_per_host=max_per_host, on_interrupt=on_interrupt,
                                 poll_interval=poll_interval, step_timeout=step_timeout,
                                 adapt_mode=True, progress=say, **runner_kwargs)
            try:
                report.results = runner.run()
            finally:
                report.interrupted = runner.interrupted
                report.peak_in_flight = runner.peak_in_flight
                report.changed = report.changed or runner.actions > 0
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
    return report


__all__ = ["BatchReport", "BatchRunner", "StepResult", "apply_plan", "drain", "drain_reason",
           "gather_state", "is_our_drain_reason", "make_plan", "moves_of_drain", "undrain",
           "FINAL", "Resources"]
