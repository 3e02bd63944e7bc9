"""Names a maintenance campaign uses: its journal kinds (from engine/events), host outcomes, timeouts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from novamove.engine import events
from novamove.engine.times import parse_time
from novamove.engine.tags import drain_reason



VERB = events.VERB_MAINTAIN

EV_CAMPAIGN = events.MAINTAIN_CAMPAIGN
EV_HOST = events.MAINTAIN_HOST
EV_DISABLE = events.MAINTAIN_DISABLE
EV_DRAIN = events.MAINTAIN_DRAIN
EV_STOP = events.MAINTAIN_STOP
EV_HOOK = events.MAINTAIN_HOOK
EV_GATE = events.MAINTAIN_GATE
EV_CHECK = events.MAINTAIN_CHECK
EV_START = events.MAINTAIN_START
EV_ENABLE = events.MAINTAIN_ENABLE
EV_REASON = events.MAINTAIN_REASON
EV_BACK = events.MAINTAIN_BACK

# Host outcomes.
DONE, FAILED, SKIPPED, REFUSED = events.HOST_DONE, events.HOST_FAILED, events.HOST_SKIPPED, events.HOST_REFUSED
NOT_STARTED, INTERRUPTED = events.HOST_NOT_STARTED, events.HOST_INTERRUPTED

HOOK_TIMEOUT = 3600.0
GATE_TIMEOUT = 900.0
CHECK_TIMEOUT = 600.0
POWER_TIMEOUT = 300.0
POLL = 1.0           # the campaign's loop: hooks followed (locally, no API request) this often
GATE_POLL_MAX = 5.0  # the gate's and power waits' reads back off from POLL (x1.5 each) up to this
# One slot free with K >= 2 while another host out has its hook done (gate, check, return: back
# within seconds, usually): the next host waits at most this long for that slot too, so the two
# are drained together (one drain at twice the moves in flight) rather than one after the other.
PAIR_WAIT = 20.0
RECHECK = 10.0       # a host waiting for capacity or group budget is checked again this often
FULL_RECHECK = 120.0  # ... and judged on a whole read of the cloud (not the view) at most this often


def reason_text(run_id: str, what: str, lease_until: Optional[datetime] = None) -> str:
    """The disabled reason a campaign writes: tagged with its run, and a drain reason so that
    `novamove undrain HOST` (with or without --move-back) can give the host back once the
    campaign is over with it. While the campaign holds the host (drain, hook, gate, return) the
    reason carries a lease, renewed as a drain's is: another operator's `drain`, `undrain` or
    `maintain` of that host, from any machine, is refused meanwhile."""
    return drain_reason(run_id, f"maintain: {what}", lease_until)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _parse(ts: Optional[str]) -> Optional[datetime]:
    """Nova's time as naive UTC (the campaign compares it with `_utcnow`)."""
    t = parse_time(ts)
    return t.replace(tzinfo=None) if t else None


