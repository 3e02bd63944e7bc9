"""Steps shared by the strategies: ask Nova to move the server, wait until it is scheduled."""

from __future__ import annotations

from typing import Optional

from novamove.engine import events
from novamove import errors
from novamove.model import LIVE, Migration
from novamove.engine.single.strategies.base import MoveContext, Step

# Seconds to wait for Nova to create the migration record before concluding it refused.
NO_RECORD_GRACE = 30.0


class RequestMove(Step):
    """POST the migrate / os-migrateLive action, with the target host or without it (isolate)."""

    name = "request-move"

    def __init__(self, host: Optional[str]):
        self.host = host

    def pre_condition(self, ctx: MoveContext) -> None:
        # Remember the migrations that already exist, to recognise the one this call creates
        # (isolate lists them earlier, before its window opens).
        if ctx.known_migration_ids is None:
            ctx.known_migration_ids = {m.id for m in ctx.cloud.list_migrations(server_id=ctx.server.id)}

    def execute(self, ctx: MoveContext) -> None:
        try:
            with ctx.journal.change(ctx.run_id, events.SERVER_MIGRATE, ctx.server.id, mode=ctx.mode,
                                    host=self.host, dest=ctx.target.name, source=ctx.server.host):
                if ctx.mode == LIVE:
                    ctx.cloud.live_migrate_server(ctx.server.id, host=self.host)
                else:
                    ctx.cloud.migrate_server(ctx.server.id, host=self.host)
        except errors.PreconditionFailed as exc:
            # Our pre-checks passed but Nova refused the request itself (400/409, e.g. "No valid
            # host" from a synchronous scheduling, a lock, a task in progress): a failed move.
            reason = str(exc).split(": ", 1)[-1]
            raise errors.MoveFailed(f"Nova refused the {ctx.mode} migration of {ctx.server.name} to "
                                    f"{ctx.target.name}: {reason}") from exc
        except errors.NovamoveError as exc:
            if not errors.is_ambiguous(exc):
                raise
            # Timeout, lost connection or 5xx: Nova may have accepted it. Read the cloud back;
            # the request is never sent twice.
            if not accepted_after_all(ctx):
                raise errors.MoveFailed(f"the {ctx.mode} migration request for {ctx.server.name} "
                                        f"failed ({exc}) and Nova did not start it") from exc
            ctx.journal.note(ctx.run_id, "server.migrate.read_back", ctx.server.id, accepted=True,
                             error=str(exc))

    # revert: nothing. Once Nova accepted a move it is Nova's; the engine watches it and
    # reports, and `novamove abort`/`revert` are the operator's explicit undo.


def accepted_after_all(ctx: MoveContext, tries: int = 3) -> bool:
    """After an ambiguous answer to the move request: did Nova take it? A task state on the
    server or a new migration record says yes. If the cloud does not answer either, say yes:
    the watcher then follows what Nova does (and reports a move that never started)."""
    for _ in range(tries):
        try:
            server = ctx.cloud.get_server(ctx.server.id)
            if server.task_state or server.host != ctx.server.host:
                return True
            known = ctx.known_migration_ids or set()
            return any(m.id not in known for m in ctx.cloud.list_migrations(server_id=ctx.server.id))
        except errors.Unreachable:
            ctx.sleep(1.0)
    return True


class WaitScheduled(Step):
    """Wait until the scheduler has decided: the migration record names its destination
    (or failed). The migrate API answers before scheduling, so this is the earliest moment
    isolate may give the other computes back."""

    name = "wait-scheduled"

    def execute(self, ctx: MoveContext) -> None:
        asked = ctx.clock()
        while True:
            migration = self._ours(ctx)
            if migration is not None:
                ctx.migration = migration
                if migration.dest_host or migration.failed or migration.done:
                    break
            if ctx.disabled and ctx.clock() - asked > ctx.schedule_timeout:
                # The isolation window closes at its own deadline; the move, if Nova still
                # carries it out, is watched and judged like any other (a wrong host included).
                ctx.journal.note(ctx.run_id, events.MIGRATION_SCHEDULE_TIMEOUT, ctx.server.id,
                                 seconds=round(ctx.clock() - asked, 2),
                                 status=migration.status if migration else None)
                self._observe(ctx, migration)
                return
            elif ctx.clock() - asked > NO_RECORD_GRACE:
                server = ctx.cloud.get_server(ctx.server.id)
                if not server.task_state:
                    raise errors.MoveFailed(
                        f"Nova accepted the move of {ctx.server.name} but never started it"
                        + (f": {server.fault}" if server.fault else ""))
            self._observe(ctx, migration)
            if ctx.clock() > ctx.deadline:
                raise errors.Timeout(f"the move of {ctx.server.name} was not scheduled within "
                                     f"{ctx.timeout:g}s")
            ctx.sleep(ctx.schedule_poll_interval)
        ctx.scheduled = bool(ctx.migration.dest_host) and not ctx.migration.failed
        self._observe(ctx, ctx.migration)
        ctx.journal.note(ctx.run_id, events.MIGRATION_SCHEDULED, ctx.migration.id,
                         dest=ctx.migration.dest_host, status=ctx.migration.status,
                         seconds=round(ctx.clock() - asked, 2))

    @staticmethod
    def _ours(ctx: MoveContext) -> Optional[Migration]:
        new = [m for m in ctx.cloud.list_migrations(server_id=ctx.server.id)
               if m.id not in ctx.known_migration_ids]
        return new[0] if new else None   # newest first

    @staticmethod
    def _observe(ctx: MoveContext, migration: Optional[Migration]) -> None:
        if ctx.observe:
            ctx.observe("scheduling", None, migration)
