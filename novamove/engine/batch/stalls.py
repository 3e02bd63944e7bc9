"""A batch runner's live moves that stall (engine/stall.py says what a stall is): seen from the
memory progress Nova records, journaled as a note (so `--events` shows it), then acted on as
`--on-stall` and the server's intent say, every action journaled before it is sent.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from novamove import errors
from novamove.engine import events, stall
from novamove.model import COLD, LIVE, Migration

if TYPE_CHECKING:
    from novamove.engine.batch.moves import BatchRunner, _InFlight

# What a step's result says was done about its stall (StepResult.stall).
FORCED, FORCED_POST_COPY = "force-completed", "force-completed (post-copy)"
RETRIED, ABORTED_STAYS, COLD_FALLBACK, LEFT = ("aborted, retried elsewhere", "aborted", "fell back to cold",
                                               "left running")


@dataclasses.dataclass
class StallState:
    """One in-flight move's stall bookkeeping."""
    intent: Optional[str] = None
    intent_read: bool = False            # False for a move adopted from an earlier run: read it first
    watch: Optional[stall.StallWatch] = None
    sampled_at: float = float("-inf")
    said_at: float = float("-inf")
    stalled: Optional[str] = None        # the stall, in words
    action: Optional[str] = None         # what the policy chose
    post_copy: bool = False


class StallHandler:
    """Carries out `on_stall` for the moves of one BatchRunner. `retried` is shared by the rounds
    of one drain (`earlier`): a server aborted after a stall is retried once on another host, not twice."""

    def __init__(self, runner: "BatchRunner", on_stall: str, settings: stall.StallSettings,
                 earlier: dict[str, tuple[str, str]], retry: bool = True):
        self.runner = runner
        self.retry = retry      # a drain has other hosts; a move back has only its one
        self.on_stall = stall.check_on_stall(on_stall)
        self.settings = settings
        # server -> (its stall, what was done) of an earlier move in this drain (shared by rounds)
        self.earlier = earlier

    def watch(self, f: "_InFlight") -> None:
        """One look at a live move's memory progress (at most every SAMPLE_EVERY seconds)."""
        r, st, m = self.runner, f.stall, f.migration
        if m is None or f.step.mode != LIVE or not m.in_progress or f.move.abort_sent:
            return
        if m.status == stall.POST_COPY and st.action == stall.FORCE_COMPLETE:
            st.post_copy = True
        if st.action is not None or m.status != "running":
            return
        now = r.clock()
        if st.sampled_at == float("-inf"):
            st.sampled_at = now          # first seen copying: the first read comes one interval later
            return
        if now - st.sampled_at < stall.sample_every(self.settings):
            return
        st.sampled_at = now
        row = self._progress(f, m)
        if row is None:
            return
        st.watch = st.watch or stall.StallWatch(self.settings)
        stalled = st.watch.see(now, row)
        if stalled is None:
            if now - st.said_at >= self.settings.window:
                st.said_at = now
                r.progress(f"{f.step.server_name}: live {f.step.source} -> {f.step.dest}: {stall.remaining_text(row)}")
            return
        self._act(f, row, stalled)

    def _progress(self, f: "_InFlight", m: Migration) -> Optional[Migration]:
        try:
            rows = self.runner._call(lambda: self.runner.cloud.list_server_migrations(f.step.server_id),
                                     f"progress of {f.step.server_name}")
        except errors.NotFound:
            return None
        return next((row for row in rows if row.id == m.id), None)

    def _act(self, f: "_InFlight", m: Migration, stalled: str) -> None:
        r, st, step = self.runner, f.stall, f.step
        if not st.intent_read:
            # A move an earlier run started: its server's intent is read before anything is done.
            server = r._call(lambda: r.cloud.get_server(step.server_id), f"server {step.server_name}")
            st.intent, st.intent_read = stall.intent_of(server), True
        action = stall.action_for(self.on_stall, st.intent)
        st.stalled, st.action = stalled, action
        why = {stall.FORCE_COMPLETE: "force-completing it", stall.LEAVE: "leaving it running (--on-stall leave)",
               stall.COLD: "aborting it to move it cold",
               stall.ABORT: ("aborting it (intent live-strict: never force-completed)"
                             if st.intent == stall.LIVE_STRICT else "aborting it")}[action]
        r.journal.note(r.run_id, events.DRAIN_STALL, step.server_id, migration_id=m.id, stall=stalled,
                       action=action, intent=st.intent, memory_remaining_bytes=m.memory_remaining_bytes,
                       memory_total_bytes=m.memory_total_bytes)
        r.progress(f"{step.server_name}: {stalled}; {why}")
        if action == stall.FORCE_COMPLETE:
            try:
                with r.journal.change(r.run_id, events.DRAIN_FORCE_COMPLETE, step.server_id, migration_id=m.id,
                                      why="stall"):
                    r._call(lambda: r.cloud.force_complete_migration(step.server_id, m.id), "force-complete")
                r.actions += 1
            except errors.NovamoveError as exc:
                # 409: no longer running (it completed, or switched to post-copy by itself): what
                # Nova does next says how it ended. Still running and stalled a window later
                # (a 500, a timeout): seen again and tried again.
                r.progress(f"{step.server_name}: force-complete not accepted ({exc}); following it")
                st.action, st.watch = None, None
        elif action in (stall.ABORT, stall.COLD):
            f.move.abort_wanted = True          # the runner sends it, journaled (drain.abort)

    # ------------------------------------------------------------------ outcomes

    def landed(self, f: "_InFlight") -> tuple[str, Optional[str]]:
        """(detail suffix, StepResult.stall) of a move that landed."""
        st = f.stall
        if st.action == stall.FORCE_COMPLETE:
            done = FORCED_POST_COPY if st.post_copy else FORCED
            return f" after a stall ({st.stalled}): {done}", done
        if st.action == stall.LEAVE:
            return f" after a stall ({st.stalled}), left running: it converged", LEFT
        if f.step.server_id in self.earlier:
            before, done = self.earlier[f.step.server_id]
            return f" (earlier {before}: {done})", done
        return "", None

    def aborted(self, f: "_InFlight", host: Optional[str]) -> Optional[tuple[str, str, str]]:
        """A stall's abort went through: (outcome, detail, stall) or None (not a stall's).
        COLD starts the cold move now (the caller queues it); ABORT retries once elsewhere."""
        st, step = f.stall, f.step
        if st.action not in (stall.ABORT, stall.COLD):
            return None
        where = f", still on {host}" if host else ""
        if st.action == stall.COLD:
            self.earlier[step.server_id] = (st.stalled, COLD_FALLBACK)
            return events.RETRY, f"{st.stalled}: aborted, moving it cold{where}", COLD_FALLBACK
        if self.retry and st.intent != stall.LIVE_STRICT and step.server_id not in self.earlier:
            self.earlier[step.server_id] = (st.stalled, RETRIED)
            return events.RETRY, f"{st.stalled}: aborted on {step.dest}, retrying once on another host{where}", RETRIED
        strict = " (intent live-strict: never force-completed)" if st.intent == stall.LIVE_STRICT else ""
        # A drain reports it left on its host (exit 8, named); a move back that did not happen
        # is a failure of that undrain (as its other moves that do not land).
        outcome = events.ABORTED if self.retry else events.FAILED
        return outcome, f"{st.stalled}: aborted{strict}{where}", ABORTED_STAYS

    def cold_step(self, f: "_InFlight"):
        """The step that moves a stalled, aborted server cold to the same destination."""
        return dataclasses.replace(f.step, mode=COLD)
