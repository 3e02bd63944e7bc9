"""One live move's stall (`migrate`, `back`): seen from the memory progress the watcher merges
into its migration (engine/stall.py says what a stall is), journaled as a note, then acted on
as `--on-stall` and the server's intent say (engine/single/waiter.py carries the action out).
"""

from __future__ import annotations

from typing import Optional

from novamove.engine import events, stall
from novamove.engine.single.strategies.base import MoveContext
from novamove.model import LIVE, Migration

FORCED, FORCED_POST_COPY = "force-completed", "force-completed (post-copy)"
ABORTED, COLD_FALLBACK, LEFT = "aborted", "fell back to cold", "left running"


class MoveStall:
    def __init__(self, ctx: MoveContext, on_stall: str, settings: Optional[stall.StallSettings] = None):
        self.ctx = ctx
        self.on_stall = stall.check_on_stall(on_stall)
        self.intent = stall.intent_of(ctx.server)
        self.watch = stall.StallWatch(settings or stall.settings_from_env())
        self.stalled: Optional[str] = None
        self.action: Optional[str] = None
        self.post_copy = False

    def look(self, migration: Optional[Migration]) -> Optional[str]:
        """The action to carry out now (force-complete, abort, cold), once, or None."""
        ctx = self.ctx
        if migration is None or ctx.mode != LIVE:
            return None
        if migration.status == stall.POST_COPY and self.action == stall.FORCE_COMPLETE:
            self.post_copy = True
        if self.action is not None or migration.status != "running":
            return None
        stalled = self.watch.see(ctx.clock(), migration)
        if stalled is None:
            return None
        self.stalled, self.action = stalled, stall.action_for(self.on_stall, self.intent)
        ctx.journal.note(ctx.run_id, events.MIGRATION_STALL, ctx.server.id, migration_id=migration.id,
                         stall=stalled, action=self.action, intent=self.intent,
                         memory_remaining_bytes=migration.memory_remaining_bytes,
                         memory_total_bytes=migration.memory_total_bytes)
        return None if self.action == stall.LEAVE else self.action

    def forget(self) -> None:
        """The action did not reach Nova: watch afresh (a stall seen again is acted on again)."""
        self.stalled, self.action = None, None
        self.watch = stall.StallWatch(self.watch.settings)

    @property
    def outcome(self) -> Optional[str]:
        """What the result says was done about the stall (None: no stall)."""
        if self.action is None:
            return None
        return {stall.FORCE_COMPLETE: FORCED_POST_COPY if self.post_copy else FORCED,
                stall.ABORT: ABORTED, stall.COLD: COLD_FALLBACK, stall.LEAVE: LEFT}[self.action]

    def words(self) -> str:
        strict = " (intent live-strict: never force-completed)" if self.intent == stall.LIVE_STRICT else ""
        return f"{self.stalled}; {self.outcome}{strict}"
