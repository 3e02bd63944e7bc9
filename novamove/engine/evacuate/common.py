"""Names the evacuation family shares: verbs, journal kinds (from engine/events), outcomes, tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

from novamove.engine import events
from novamove.engine.frame import requests_made as _requests  # noqa: F401  (the family's name for it)
from novamove.engine.times import iso as _iso
from novamove.engine.tags import reason_run_id, tagged_reason


EVACUATE_VERB = events.VERB_EVACUATE
UNFENCE_VERB = events.VERB_UNFENCE

EV_PLAN = events.EVACUATE_PLAN
EV_FENCE = events.EVACUATE_FENCE
EV_FORCE_DOWN = events.EVACUATE_FORCE_DOWN
EV_DISABLE = events.EVACUATE_DISABLE
EV_EVACUATE = events.EVACUATE_SERVER
EV_FORCE_UP = events.UNFENCE_FORCE_UP
EV_ENABLE = events.UNFENCE_ENABLE

SKIP_TAG = "novamove:maintenance=skip"
POWER_POLICIES = ("restore", "stopped")
POLL_INTERVAL = 0.5
REASON_PATIENCE = 10.0
FENCE_TIMEOUT = 300.0
HEARTBEAT_WAIT = 90.0                  # unfence: how long to wait for nova-compute to report
# evacuate: how long a fenced compute's updated_at must stand still before it counts as stopped
# reporting; longer than two of Nova's default report_interval (10 s). NOVAMOVE_QUIET_PERIOD or
# --quiet-period change it (a cloud with a longer report_interval needs more).
QUIET_PERIOD = 25.0

# Nova evacuates ACTIVE, STOPPED (SHUTOFF) and ERROR servers with no task in progress
# (nova/compute/api.py evacuate: check_instance_state).
EVACUABLE = frozenset({"ACTIVE", "SHUTOFF", "ERROR"})
# Evacuation records: accepted -> pre-migrating -> done (the server runs on the destination);
# `completed` once the source's nova-compute came back and cleaned up; failed / error.
EVAC_DONE = frozenset({"done", "completed"})
EVAC_FAILED = frozenset({"failed", "error", "cancelled"})
# Records the failed host's nova-compute still has to clean up when it starts (duplicates).
EVAC_NOT_CLEANED = frozenset({"accepted", "pre-migrating", "done"})

# Step outcomes.
EVACUATED = events.EVACUATED
SKIPPED = events.SKIPPED       # on purpose: tagged skip
UNPLACED = events.UNPLACED     # cannot be evacuated or placed: the server stays down
FAILED = events.FAILED
GONE = events.GONE             # deleted by its owner during the run: nothing left to evacuate
PLANNED = events.PLANNED
MOVED = events.MOVED           # unfence --move-back
SKEW_MARGIN = timedelta(minutes=10)


def evacuate_reason(run_id: str, reason: Optional[str]) -> str:
    return tagged_reason(run_id, f"evacuate: {reason or 'host failed'}")


def is_our_evacuate_reason(disabled_reason: Optional[str]) -> bool:
    return reason_run_id(disabled_reason) is not None and ": evacuate:" in (disabled_reason or "")


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def expected_status(before: str, power: str) -> str:
    """The status an evacuated server must show on its new host under the power policy."""
    if (before or "").upper() == "ERROR":
        return "ACTIVE"          # Nova rebuilds an ERROR server and it comes back ACTIVE
    if power == "stopped":
        return "SHUTOFF"
    return "SHUTOFF" if (before or "").upper() == "SHUTOFF" else "ACTIVE"


