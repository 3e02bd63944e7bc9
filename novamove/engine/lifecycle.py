"""One move's lifecycle, as pure rules: where a move stands and what its outcome is, judged the
same way for a single `migrate`/`wait` (engine/waiter.py) and for every move of a drain,
undrain or later batch verb (engine/batch.py). Each Nova quirk is handled here, once:

- a migration record marked "error" by a compute's resource tracker while the move goes on
  (a stale migration context: "Current instance migration X doesn't match migration Y") is not
  the end: the move is over only once Nova has let go of the server (no task state);
- a live migration ends `completed`, a cold one `finished` + VERIFY_RESIZE (to confirm) and
  then `confirmed`; success also needs the server, read back, on the target;
- Nova marks a migration failed a moment before it records why (the instance fault and the
  action event come as the exception unwinds): the reason is worth waiting for, briefly.
"""

from __future__ import annotations

from typing import Optional

from novamove.model import LIVE, Migration, Server

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


def reason_due(failed_seen_at: float, now: float, reason: Optional[str]) -> bool:
    """Report the failure now (with its reason, or after waiting long enough for one)."""
    return bool(reason) or now - failed_seen_at >= REASON_PATIENCE
