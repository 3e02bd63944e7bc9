"""Waiting for a move to finish, and judging honestly whether it landed.

Success means: the server is on the target host *and* the migration record says so
(finished/confirmed for cold, completed for live). A migration that rolled back to the source
is a failure, reported with Nova's own reason.
"""

from __future__ import annotations

import logging

from dataclasses import dataclass
from typing import Optional

from novamove.engine import events
from novamove import errors
from novamove.model import COLD, LIVE, Migration, Server
from novamove.engine.poll import poll_until
from novamove.retry import patiently
from novamove.engine.single.strategies.base import MoveContext
from novamove.engine import stall as stalls
from novamove.engine.single.stalls import MoveStall

log = logging.getLogger("novamove.engine")

ON_TIMEOUT = ("abort", "force-complete", "leave")

# How long an aborted/force-completed live migration may take to settle before we stop looking.
SETTLE_SECONDS = 120.0
# A confirmation that left the server untouched this long did not reach Nova: ask again.
CONFIRM_RETRY_SECONDS = 5.0
CONFIRM_TRIES = 3
# A server that is idle on its source while its migration record has not moved for this long
# has been rolled back without Nova marking the record (defensive; Nova normally does).
STALL_SECONDS = 60.0
# How long the watcher keeps polling through an unreachable API (a restart, a load balancer
# reload) before it gives up: the move itself goes on in Nova meanwhile.
READ_PATIENCE = 120.0

# The one judge of a move's outcome, shared with drains (engine/lifecycle.py).
from novamove.engine import lifecycle  # noqa: E402
from novamove.engine.lifecycle import ELSEWHERE, FAILED, LANDED, VERIFY, Next, judge  # noqa: E402,F401


@dataclass
class Outcome:
    ok: bool
    server: Server
    migration: Optional[Migration]
    error: Optional[str] = None
    exit_code: int = errors.EXIT_OK
    confirmed: bool = False
    stall: Optional[str] = None         # what was done about a stall (engine/single/stalls.py)
    cold_fallback: bool = False         # aborted after a stall to be moved cold (the mover does)


class MoveWatcher:
    """Polls one server and its migration until the move lands, fails or times out.

    Requests per poll: GET server, GET migrations of the server, and for a running live
    migration GET its progress -- independent of how many computes the cloud has.
    """

    def __init__(self, ctx: MoveContext, *, confirm: bool = True, on_timeout: str = "abort",
                 original_status: Optional[str] = None, check_status: bool = True,
                 on_stall: str = stalls.DEFAULT_ON_STALL, stall_settings: Optional[stalls.StallSettings] = None):
        if on_timeout not in ON_TIMEOUT:
            raise errors.UsageError(f"unknown on-timeout {on_timeout!r} (choose {', '.join(ON_TIMEOUT)})")
        self.ctx = ctx
        self.cloud = ctx.cloud
        self.confirm = confirm
        self.on_timeout = on_timeout
        self.original_status = original_status or ctx.server.status
        # A cold move must leave the server as it was (ACTIVE or SHUTOFF); unknown when waiting
        # for a move someone else started.
        self.check_status = check_status
        self.migration = ctx.migration
        self.deadline = ctx.deadline
        self.forced = False
        self.stall = MoveStall(ctx, on_stall, stall_settings)

    # ------------------------------------------------------------------ observing

    def _poll(self, phase: str) -> tuple[Server, Optional[Migration]]:
        # Giving up on the first blip would abandon a move that Nova is still carrying out.
        return patiently(lambda: self._poll_once(phase), f"still watching {self.ctx.server.name}",
                         patience=READ_PATIENCE, sleep=self.ctx.sleep)

    def _poll_once(self, phase: str) -> tuple[Server, Optional[Migration]]:
        ctx = self.ctx
        server = self.cloud.get_server(ctx.server.id)
        migration = self._migration()
        if ctx.mode == LIVE and migration is not None and migration.in_progress:
            migration = self._with_progress(migration)
        self.migration = migration or self.migration
        if ctx.observe:
            ctx.observe(phase, server, self.migration)
        return server, self.migration

    def _migration(self) -> Optional[Migration]:
        rows = self.cloud.list_migrations(server_id=self.ctx.server.id)
        if self.migration is None:
            # Not scheduled when the isolation window closed: the record Nova makes later.
            known = self.ctx.known_migration_ids or set()
            return next((m for m in rows if m.id not in known and m.migration_type in
                         ("live-migration", "migration")), None) if known is not None else None
        for m in rows:
            if m.id == self.migration.id:
                return m
        return self.migration

    def _with_progress(self, migration: Migration) -> Migration:
        """Merge memory/disk bytes from /servers/{id}/migrations (live, in progress only)."""
        try:
            rows = self.cloud.list_server_migrations(self.ctx.server.id)
        except errors.NotFound:
            return migration
        for row in rows:
            if row.id == migration.id:
                import dataclasses
                return dataclasses.replace(
                    migration, memory_total_bytes=row.memory_total_bytes,
                    memory_remaining_bytes=row.memory_remaining_bytes,
                    disk_total_bytes=row.disk_total_bytes, disk_remaining_bytes=row.disk_remaining_bytes)
        return migration

    # ------------------------------------------------------------------ waiting

    def run(self) -> Outcome:
        """Observe, ask lifecycle.next_step what now, carry it out; bounded by the deadline."""
        ctx = self.ctx
        move = lifecycle.Move(ctx.mode, ctx.target.name, ctx.server.host, migration=self.migration)
        stalled_since: Optional[float] = None
        quiet_since: Optional[float] = None
        last_status = None
        confirms = 0
        while True:
            shown = "migrating" if move.phase is lifecycle.Phase.SUBMITTED else move.phase.value
            server, migration = self._poll(shown)
            move.migration = migration
            action = lifecycle.next_step(move, server)
            if action is Next.LANDED:
                return self._said(self._landed(server, migration))
            if action is Next.CONFIRM:
                if not self.confirm:
                    return Outcome(True, server, migration)
                self._send_confirm(server, migration)
                move.sent(action)
                confirms += 1
                # Confirmation is asynchronous: give it time to settle beyond the deadline.
                self.deadline = max(self.deadline, ctx.clock() + SETTLE_SECONDS)
            elif action in (Next.REVERT, Next.ELSEWHERE):
                return self._wrong_host(server, migration)
            elif action in (Next.FAILED, Next.ABORTED):
                return self._said(self._failed(server, migration))
            elif move.phase is lifecycle.Phase.CONFIRMING:
                if server.status == "VERIFY_RESIZE" and not server.task_state:
                    # Still waiting with nothing under way: the confirmation did not reach Nova
                    # (an error or timeout before it applied). Asking again is safe: Nova refuses
                    # a confirmation of a server no longer awaiting one.
                    quiet_since = quiet_since if quiet_since is not None else ctx.clock()
                    if ctx.clock() - quiet_since > CONFIRM_RETRY_SECONDS and confirms < CONFIRM_TRIES:
                        self._send_confirm(server, migration)
                        quiet_since, confirms = None, confirms + 1
                else:
                    quiet_since = None
                if ctx.clock() > self.deadline:
                    return Outcome(False, server, migration, exit_code=errors.EXIT_TIMEOUT,
                                   error=f"confirmation of {server.name} did not finish in time "
                                         f"(migration {migration.status if migration else '?'}); "
                                         f"`novamove confirm {server.id}` or `novamove recover` finishes it")
            else:
                stalled = self.stall.look(migration)
                if stalled is not None:
                    if ctx.observe:
                        ctx.observe("stalled", server, migration)
                    outcome = self._on_stall(stalled, server, migration)
                    if outcome is not None:
                        return outcome
                # defensive: idle on the source and the record frozen -> rolled back
                status = migration.status if migration else None
                idle_on_source = (not server.task_state and server.host == ctx.server.host
                                  and server.status in ("ACTIVE", "SHUTOFF", "PAUSED"))
                if idle_on_source and status == last_status:
                    stalled_since = stalled_since if stalled_since is not None else ctx.clock()
                    if ctx.clock() - stalled_since > STALL_SECONDS:
                        return self._failed(server, migration)
                else:
                    stalled_since = None
                last_status = status
                if ctx.clock() > self.deadline:
                    outcome = self._timed_out(server, migration)
                    if outcome is not None:
                        return outcome
            ctx.sleep(ctx.poll_interval)

    def _said(self, outcome: Outcome) -> Outcome:
        """An outcome that says what was done about a stall, if there was one."""
        outcome.stall = self.stall.outcome
        if outcome.stall and outcome.error:
            outcome.error += f" (after {self.stall.words()})"
        return outcome

    def _on_stall(self, action: str, server: Server, migration: Migration) -> Optional[Outcome]:
        """Carry out the stall policy's action; None means "keep waiting" (force-complete)."""
        ctx = self.ctx
        if action == stalls.FORCE_COMPLETE:
            try:
                with ctx.journal.change(ctx.run_id, events.MIGRATION_FORCE_COMPLETE, migration.id, why="stall"):
                    self.cloud.force_complete_migration(server.id, migration.id)
                self.forced = True
                self.deadline = max(self.deadline, ctx.clock() + SETTLE_SECONDS)
            except errors.NovamoveError as exc:
                # 409: no longer running (it completed or switched to post-copy by itself); still
                # stalled a window later (a 500, a timeout): seen again and tried again.
                log.warning("force-complete of %s after a stall: %s (following it)", server.name, exc)
                self.stall.forget()
            return None
        try:
            server, migration = self._abort_and_settle(migration)
        except errors.NovamoveError as exc:
            return Outcome(False, server, migration, exit_code=errors.EXIT_FAILED, stall=self.stall.outcome,
                           error=f"{self.stall.stalled}; could not abort it: {exc}")
        if migration is not None and migration.status == "completed" and server.host == ctx.target.name:
            return self._said(Outcome(True, server, migration))   # it finished before the abort
        final = migration.status if migration else "unknown"
        return Outcome(False, server, migration, exit_code=errors.EXIT_FAILED, stall=self.stall.outcome,
                       cold_fallback=action == stalls.COLD,
                       error=f"live migration of {server.name} to {ctx.target.name} {self.stall.words()} "
                             f"(migration {final}); {server.name} is on {server.host} ({server.status})")

    def _abort_and_settle(self, migration: Migration) -> tuple[Server, Optional[Migration]]:
        """Abort a live migration (journaled first) and follow it until it ends."""
        ctx = self.ctx
        with ctx.journal.change(ctx.run_id, events.MIGRATION_ABORT, migration.id):
            self.cloud.abort_migration(ctx.server.id, migration.id)
        ctx.sleep(ctx.poll_interval)
        (server, migration), _ = poll_until(
            lambda: self._poll("aborting"), lambda seen: seen[1] is None or not seen[1].in_progress,
            timeout=SETTLE_SECONDS, interval=ctx.poll_interval, clock=ctx.clock, sleep=ctx.sleep)
        return server, migration

    def _landed(self, server: Server, migration: Optional[Migration]) -> Outcome:
        if self.ctx.mode == COLD and self.check_status and server.status != self.original_status:
            return Outcome(False, server, migration, exit_code=errors.EXIT_FAILED,
                           error=f"{server.name} landed on {server.host} but is {server.status}, "
                                 f"not {self.original_status} as before")
        return Outcome(True, server, migration, confirmed=self.ctx.mode == COLD)

    def _send_confirm(self, server: Server, migration: Migration) -> None:
        ctx = self.ctx
        try:
            with ctx.journal.change(ctx.run_id, events.SERVER_CONFIRM, server.id, migration=migration.id):
                self.cloud.confirm_resize(server.id)
        except errors.NovamoveError as exc:
            if not (errors.is_ambiguous(exc) or isinstance(exc, errors.PreconditionFailed)):
                raise
            # Timed out, lost, a 5xx, or 409 because it is already confirming: what Nova does
            # next says whether it went through; the caller reads it back.
            log.warning("confirm of %s: %s (reading back)", server.name, exc)

    def _wrong_host(self, server: Server, migration: Migration) -> Outcome:
        """A move that landed on another host than the target: a cold one is reverted to its
        source (journaled); a live one cannot be taken back and is reported with the host."""
        ctx = self.ctx
        wrong = server.host
        text = f"Nova put {server.name} on {wrong}, not on {ctx.target.name}"
        if ctx.mode == COLD and server.status == "VERIFY_RESIZE":
            with ctx.journal.change(ctx.run_id, events.SERVER_REVERT, server.id, migration=migration.id,
                                    why="wrong host"):
                self.cloud.revert_resize(server.id)
            ctx.sleep(ctx.poll_interval)
            (server, migration), _ = poll_until(
                lambda: self._poll("reverting"),
                lambda seen: not seen[0].task_state and seen[0].status != "VERIFY_RESIZE",
                timeout=SETTLE_SECONDS, interval=ctx.poll_interval, clock=ctx.clock, sleep=ctx.sleep)
            text += f"; reverted: it is {server.status} on {server.host}"
        else:
            text += f" (it is {server.status} there; `novamove migrate {server.id} --to {ctx.target.name}` moves it)"
        return Outcome(False, server, migration, error=text, exit_code=errors.EXIT_FAILED)

    def _failed(self, server: Server, migration: Optional[Migration]) -> Outcome:
        ctx = self.ctx
        reason = self._reason(server, migration)
        status = migration.status if migration else "unknown"
        where = f"; {server.name} is on {server.host} ({server.status})"
        text = f"{ctx.mode} migration of {server.name} to {ctx.target.name} failed (migration {status})"
        if reason:
            text += f": {reason}"
        return Outcome(False, server, migration, error=text + where, exit_code=errors.EXIT_FAILED)

    def _reason(self, server: Server, migration: Optional[Migration] = None) -> Optional[str]:
        """Nova's reason for the failure, waited for as lifecycle.reason_due says (Nova marks
        the migration failed a moment before it records why)."""
        ctx = self.ctx
        seen = ctx.clock()
        while True:
            try:
                reason = self.cloud.server_fault(server.id, since=ctx.started_at) or server.fault
            except errors.NovamoveError:
                reason = server.fault
            if reason or lifecycle.reason_due(seen, ctx.clock(), reason, migration):
                return reason
            ctx.sleep(1.0)

    def _timed_out(self, server: Server, migration: Optional[Migration]) -> Optional[Outcome]:
        """Apply --on-timeout; None means "keep waiting" (after force-complete)."""
        ctx = self.ctx
        status = migration.status if migration else "unknown"
        waited = f"{ctx.timeout:g}s"
        if ctx.mode != LIVE or migration is None or not migration.in_progress:
            return Outcome(False, server, migration, exit_code=errors.EXIT_TIMEOUT,
                           error=f"gave up waiting after {waited}: migration {status}, "
                                 f"{server.name} is {server.status} on {server.host}; "
                                 "the move continues in Nova")
        if self.on_timeout == "force-complete" and not self.forced:
            if migration.status != "running":
                # Nova accepts force-complete only once the transfer runs (queued/preparing:
                # 409). Act on the observed state, not on the clock: look again shortly, for
                # as long as a migration may reasonably take to start.
                self.force_waited = getattr(self, "force_waited", 0.0) + ctx.poll_interval
                if self.force_waited <= SETTLE_SECONDS:
                    self.deadline = ctx.clock() + ctx.poll_interval
                    return None
            with ctx.journal.change(ctx.run_id, events.MIGRATION_FORCE_COMPLETE, migration.id):
                self.cloud.force_complete_migration(server.id, migration.id)
            self.forced = True
            self.deadline = ctx.clock() + max(ctx.timeout, SETTLE_SECONDS)
            return None
        if self.on_timeout == "abort":
            try:
                with ctx.journal.change(ctx.run_id, events.MIGRATION_ABORT, migration.id):
                    self.cloud.abort_migration(server.id, migration.id)
            except errors.NovamoveError as exc:
                return Outcome(False, server, migration, exit_code=errors.EXIT_TIMEOUT,
                               error=f"gave up waiting after {waited} and could not abort: {exc}")
            ctx.sleep(ctx.poll_interval)
            (server, migration), _ = poll_until(
                lambda: self._poll("aborting"), lambda seen: seen[1] is None or not seen[1].in_progress,
                timeout=SETTLE_SECONDS, interval=ctx.poll_interval, clock=ctx.clock, sleep=ctx.sleep)
            final = migration.status if migration else "unknown"
            if migration is not None and migration.status == "completed" and server.host == ctx.target.name:
                # The migration finished before the abort reached it: it landed after all.
                return Outcome(True, server, migration)
            return Outcome(False, server, migration, exit_code=errors.EXIT_TIMEOUT,
                           error=f"gave up waiting after {waited}: live migration aborted "
                                 f"(migration {final}); {server.name} is on {server.host} ({server.status})")
        return Outcome(False, server, migration, exit_code=errors.EXIT_TIMEOUT,
                       error=f"gave up waiting after {waited}: migration {migration.id} left {status}; "
                             f"{server.name} is on {server.host}")
