"""Names, limits and small helpers the batch verbs (drain, undrain, apply) share.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

from novamove import errors
from novamove.engine import events, lifecycle
from novamove.engine.frame import requests_made as _requests  # noqa: F401  (the family's name for it)
from novamove.engine.times import iso as _iso  # noqa: F401  (the family's name for it)
from novamove.model import Server
from novamove.planner import COLD_STATUSES, LIVE_STATUSES



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



PASSING_STATUSES = {"BUILD", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REBUILD", "REBOOT", "HARD_REBOOT",
                    "PASSWORD", "UNKNOWN"}


def is_passing(server: Server) -> bool:
    """Whether what keeps `server` from moving now is likely to pass by itself (a task state,
    a build or another move under way), as opposed to a state only an operator changes
    (ERROR, SHELVED, SUSPENDED, RESCUE...)."""
    return bool(server.task_state) or (server.status or "").upper() in PASSING_STATUSES


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


def _since(previous_start: Optional[str]) -> str:
    start = datetime.now(timezone.utc)
    if previous_start:
        try:
            prev = datetime.fromisoformat(previous_start)
            start = min(start, prev if prev.tzinfo else prev.replace(tzinfo=timezone.utc))
        except ValueError:
            pass
    return _iso(start - SKEW_MARGIN)


