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

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Optional, Sequence

from novamove import errors
from novamove.engine import events, lifecycle
from novamove.model import COLD, LIVE, Migration, Server, Service
from novamove.planner import COLD_STATUSES, LIVE_STATUSES, DrainPlan, DrainStep, move_mode, plan_to_dict
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED, CappedRunner

log = logging.getLogger("novamove.drain")

# Seconds between the shared /os-migrations listings that follow every in-flight move. One
# listing serves all moves, so polling often is cheap; at 1 s each move lost ~0.5 s on average
# to the wait (bench/drain_speed.py: caps 2 went from 2.6x to 3.2x the sequential loop at 0.3 s).
POLL_INTERVAL = 0.5
REASON_PATIENCE = lifecycle.REASON_PATIENCE   # kept for importers; the rule is lifecycle's

DRAIN_VERB = events.VERB_DRAIN
UNDRAIN_VERB = events.VERB_UNDRAIN

# Journal event kinds of the drain engine (its own, so that recovery code written for single
# moves does not mistake a drained host's disabled service for a temporary isolation toggle).
EV_PLAN = events.DRAIN_PLAN
EV_DISABLE = events.DRAIN_DISABLE
EV_ENABLE = events.DRAIN_ENABLE
EV_MOVE = events.DRAIN_MOVE
EV_CONFIRM = events.DRAIN_CONFIRM
EV_ABORT = events.DRAIN_ABORT
EV_REVERT = events.DRAIN_REVERT

ON_INTERRUPT = ("finish", "abort")

# Step outcomes in reports.
MOVED, SKIPPED, FAILED, ABORTED, GONE = events.MOVED, events.SKIPPED, events.FAILED, events.ABORTED, events.GONE
# Not final: the step could not start for a reason that passes (its destination disabled for a
# moment, the server busy); the drain plans it again with fresh facts while its patience lasts.
RETRY = events.RETRY

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
# How long a move request Nova accepted may go without a migration record (it normally has one
# within seconds) before the request counts as lost inside the control plane.
NO_RECORD_GRACE = 120.0

SETTLED = LIVE_STATUSES | COLD_STATUSES
# More moves than this to start at once: one listing of their source host serves them all;
# fewer: each server is read on its own (cheaper than listing a host of hundreds).
LIST_AT_ONCE = 2
# How old the compute services listing a step's pre-condition reads may be: refills within two
# seconds of each other share one (the race it leaves is the one between any read and the POST,
# which Nova's scheduler settles by refusing a disabled host).
SERVICES_FRESH = 2.0
# How far back (beyond the run start) the shared migration listing looks: covers clock skew
# between this machine and the API servers.
SKEW_MARGIN = timedelta(minutes=10)



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


@dataclass(frozen=True)
class BatchProgress:
    """Where a drain, undrain or apply stands, for a progress bar (display-free; report.BatchView
    draws it). Counts add up over the drain's rounds; `total` grows when a round plans again."""
    verb: str
    hosts: tuple[str, ...]
    total: int                   # moves planned so far
    moved: int
    failed: int                  # failed or left in flight
    in_flight: int
    waiting: int                 # queued behind the caps
    other: int                   # skipped, gone, aborted, not started
    elapsed: float
    eta: Optional[float]         # seconds, once a move has finished
    in_flight_names: tuple[str, ...] = ()


def batch_progress(verb: str, hosts: Sequence[str], earlier: dict[str, "StepResult"],
                   runner: Optional["BatchRunner"], elapsed: float) -> BatchProgress:
    """One snapshot from the results of earlier rounds plus the round running now."""
    results = dict(earlier)
    inflight: dict[str, _InFlight] = {}
    pending: list[DrainStep] = []
    if runner is not None:
        results.update(runner.results)
        inflight, pending = runner.inflight, runner.pending
    final = [r for sid, r in results.items() if sid not in inflight and r.result != RETRY]
    moved = sum(r.result == MOVED for r in final)
    failed = sum(r.result in (FAILED, IN_FLIGHT) for r in final)
    other = sum(r.result not in (MOVED, FAILED, IN_FLIGHT) and r.dest is not None for r in final)
    total = moved + failed + other + len(inflight) + len(pending)
    done = moved + failed + other
    eta = elapsed / done * (total - done) if done and elapsed > 0 else None
    names = tuple(sorted(f.step.server_name or f.step.server_id for f in inflight.values()))
    return BatchProgress(verb, tuple(hosts), total, moved, failed, len(inflight), len(pending), other,
                         elapsed, eta, names)


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

    def __post_init__(self) -> None:
        if self.move is None:
            self.move = lifecycle.Move(self.step.mode, self.step.dest or "", self.step.source)

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
                 pinned: Collection[str] = (), on_tick: Optional[Callable[["BatchRunner"], None]] = None):
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
        self.pinned = frozenset(pinned)     # servers whose mode was chosen for them (campaign intents)
        # Called every loop: keeps the drain's lease fresh; False means "stop starting moves".
        self.heartbeat = heartbeat
        self._init_loop(poll_interval=poll_interval, progress=progress, clock=clock, sleep=sleep,
                        retries=retries, backoff=backoff, on_tick=on_tick)
        self._migrations: dict[str, list[Migration]] = {}
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
            self.pending.remove(step)
            if self._start(step, on_host[step.source], services):
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
            self._finish(f, MOVED, f"{step.mode} migration {m.status}", m, server.host)
        elif action is lifecycle.Next.ABORTED:
            host = server.host if server is not None else None
            if f.wrong_host:
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
        if not lifecycle.reason_due(f.failed_at, self.clock(), reason):
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
                host: Optional[str] = None) -> None:
        step = f.step
        res = _result(step, outcome, detail, m, host=host)
        res.seconds = self.clock() - f.started
        self.results[step.server_id] = res
        if outcome == MOVED:
            self._record_duration(f, res.seconds)
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
            adopted.append(_InFlight(step, ev.id, clock(), set(), adopted=True))
        elif server.host == step.dest:
            journal.done(ev.id, result=MOVED, detail="landed while no drain was watching", host=server.host)
            landed.append(_result(step, MOVED, f"landed (started by run {ev.run_id})", host=server.host))
        else:
            journal.failed(ev.id, result=FAILED, detail=f"did not land (on {server.host})", host=server.host)
    return adopted, landed
