"""One move's lifecycle, as pure rules: where a move stands (`Phase`), what its outcome is
(`judge`) and what to do next (`next_step`), the same for a single `migrate`/`wait`
(engine/single/waiter.py) and for every move of a drain, undrain or later batch verb (engine/batch/moves.py).
The watchers only observe (one server + its migrations, or one shared listing for many) and carry
out what `next_step` says, under their own clocks and bounds. Each Nova quirk is handled here, once:

- a migration record marked "error" by a compute's resource tracker while the move goes on
  (a stale migration context: "Current instance migration X doesn't match migration Y") is not
  the end: the move is over only once Nova has let go of the server (no task state);
- a live migration ends `completed`, a cold one `finished` + VERIFY_RESIZE (to confirm) and
  then `confirmed`; success also needs the server, read back, on the target;
- Nova marks a migration failed a moment before it records why (the instance fault and the
  action event come as the exception unwinds): the reason is worth waiting for, briefly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from novamove.model import COLD, LIVE, Migration, Server

# Verdicts of `judge`.
WAIT = None
LANDED, VERIFY, FAILED, ELSEWHERE = "landed", "verify", "failed", "elsewhere"

# Seconds to wait for Nova's reason once a move is seen failed.
REASON_PATIENCE = 10.0

# Server statuses a finished move may leave the server in (as it was before: ACTIVE, PAUSED
# or SHUTOFF).
SETTLED_STATUSES = frozenset({"ACTIVE", "PAUSED", "SHUTOFF"})


def over(migration: Migration, server: Server) -> bool:
    """Whether a failed-looking record means the move is over: only once Nova let go of the
    server (a stale "error" mid-move keeps the task state)."""
    return migration.failed and not server.task_state


def judge(mode: str, server: Server, migration: Optional[Migration], target: str,
          source: Optional[str] = None) -> Optional[str]:
    """LANDED / VERIFY (cold, awaiting confirmation) / FAILED / ELSEWHERE (the scheduler chose
    another host than the target), or WAIT (None) while the move goes on."""
    if server.status == "ERROR":
        return FAILED
    if migration is None:
        return WAIT
    if migration.failed:
        return FAILED if over(migration, server) else WAIT
    if server.task_state:
        return WAIT
    if mode == LIVE:
        done = migration.status == "completed"
    elif migration.status == "finished" and server.status == "VERIFY_RESIZE":
        return VERIFY if server.host == target else _elsewhere(server, source)
    else:
        done = migration.status == "confirmed"
    if not done:
        return WAIT
    return LANDED if server.host == target else _elsewhere(server, source)


def _elsewhere(server: Server, source: Optional[str]) -> str:
    return ELSEWHERE if source is not None and server.host not in (source, None) else FAILED


def reason_due(failed_seen_at: float, now: float, reason: Optional[str],
               migration: Optional[Migration] = None) -> bool:
    """Report the failure now (with its reason, after waiting long enough for one, or at once
    when Nova writes none: see `no_reason_coming`)."""
    return bool(reason) or no_reason_coming(migration) or now - failed_seen_at >= REASON_PATIENCE


def no_reason_coming(migration: Optional[Migration]) -> bool:
    """A live migration the hypervisor gave up on: the driver calls Nova's rollback
    (ComputeManager._rollback_live_migration, default status "failed") instead of raising, so
    no exception unwinds and no instance fault or failed action event is ever written. Paths
    that raise (pre-checks, pre_live_migration, the conductor) mark the record "error" and do
    write a reason, which is waited for."""
    return (migration is not None and migration.migration_type == "live-migration"
            and migration.status == "failed" and bool(migration.source_host and migration.dest_host))


# ---------------------------------------------------------------------------- phases and next step

class Phase(str, Enum):
    """Where one move stands, as its watcher tracks it."""
    SUBMITTED = "submitted"      # Nova accepted the request; no migration record seen yet
    MIGRATING = "migrating"      # a record, the move under way
    CONFIRMING = "confirming"    # cold move in VERIFY_RESIZE, confirmation sent
    REVERTING = "reverting"      # cold move being taken back (on request, or it landed elsewhere)
    ABORTING = "aborting"        # live move, abort sent
    DONE = "done"


class Next(str, Enum):
    """What a watcher does next with one move."""
    WAIT = "wait"                # look again later
    READ_SERVER = "read-server"  # the migration record is not enough: read the server, ask again
    ABORT = "abort"              # send the abort of a live move (wanted, not sent yet)
    CONFIRM = "confirm"          # VERIFY_RESIZE on the target: confirm it
    REVERT = "revert"            # VERIFY_RESIZE that must not stay: revert it
    LANDED = "landed"            # on the target, settled: success
    ABORTED = "aborted"          # taken back on request: still on the source
    ELSEWHERE = "elsewhere"      # landed, settled, on another host than the target
    FAILED = "failed"            # over, not on the target (with Nova's reason, see reason_due)


@dataclass
class Move:
    """What a watcher knows of one move: the facts `next_step` decides on, and the phase."""
    mode: str
    target: str
    source: Optional[str] = None
    migration: Optional[Migration] = None
    phase: Phase = Phase.SUBMITTED
    abort_wanted: bool = False   # Ctrl-C with abort, a step over its timeout
    abort_sent: bool = False
    confirm_sent: bool = False
    revert_sent: bool = False

    def sent(self, action: "Next") -> None:
        """Record that `action` went to Nova (journaled by the caller) and the phase it opens."""
        if action is Next.ABORT:
            self.abort_sent, self.phase = True, Phase.ABORTING
        elif action is Next.CONFIRM:
            self.confirm_sent, self.phase = True, Phase.CONFIRMING
        elif action is Next.REVERT:
            self.revert_sent, self.phase = True, Phase.REVERTING


def next_step(move: Move, server: Optional[Server] = None) -> Next:
    """The one "what now" of a move, from its migration record and (when given) its server.

    Returns READ_SERVER when the record alone cannot decide, so that a watcher following many
    moves with one shared listing reads a server only when it matters."""
    m = move.migration
    if m is not None and not m.failed and not m.in_progress and move.phase is Phase.SUBMITTED:
        move.phase = Phase.MIGRATING
    if move.abort_wanted and not move.abort_sent and move.mode == LIVE and m is not None and m.in_progress:
        return Next.ABORT
    if m is None:
        return Next.FAILED if server is not None and server.status == "ERROR" else Next.WAIT
    if m.failed:
        if move.revert_sent or (move.abort_sent and m.status in ("cancelled", "aborted")):
            return Next.ABORTED
        if server is None:
            return Next.READ_SERVER
        return Next.FAILED if over(m, server) else Next.WAIT
    if server is not None and server.status == "ERROR":
        return Next.FAILED
    if m.in_progress:
        if move.phase is Phase.SUBMITTED:
            move.phase = Phase.MIGRATING
        return Next.WAIT
    if server is None:
        return Next.READ_SERVER
    if move.mode == COLD and m.status == "finished":
        if server.status != "VERIFY_RESIZE" or server.task_state:
            return Next.WAIT            # Nova still settling it
        if move.revert_sent or move.confirm_sent:
            return Next.WAIT            # sent; the watcher decides when to ask again
        if move.abort_wanted or server.host != move.target:
            return Next.REVERT          # never leave it in VERIFY_RESIZE on the wrong host
        return Next.CONFIRM
    verdict = judge(move.mode, server, m, move.target, move.source)
    if server.status not in SETTLED_STATUSES and verdict != FAILED:
        return Next.WAIT                # moved, but not back in the state it was in yet
    if verdict == LANDED:
        return Next.LANDED
    if verdict is WAIT:
        return Next.WAIT
    if (move.abort_sent or move.revert_sent) and server.host == move.source:
        return Next.ABORTED
    if verdict == ELSEWHERE:
        return Next.ELSEWHERE
    return Next.FAILED
