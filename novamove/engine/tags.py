"""novamove's marks on compute services: who disabled a service, for what, and whether that
run is still at work.

Every operator's novamove sees the cloud, not each other's journals, so coordination lives in
the service's `disabled_reason`:

    novamove:<run>: isolating the target of a migration          (an isolate window)
    novamove:<run>: drain: kernel update [lease 2026-11-26T09:02:00Z]   (a drain at work)
    novamove:<run>: drain: kernel update                          (a drained host, run over)

A drain renews its lease while it runs and drops it when it ends, so a lease that has expired
means "that run died"; no process ids across machines. A tag is written and then read back:
the last writer wins, and a run that reads back someone else's tag has lost the race.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Container, Optional

from novamove import errors

# A drain's (and a campaign's) lease: renewed once half spent (RENEW_AFTER) while it runs; a
# renewal that fails is tried again sooner, and a drain starts no move once only a third is left.
# (A third spent, as before issue 24, cost a third more writes and reads for the same safety.)
LEASE_SECONDS = 120.0
RENEW_AFTER = LEASE_SECONDS / 2
NOVA_REASON_MAX = 255       # Nova's column

_LEASE_RE = re.compile(r" \[lease (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\]$")


# The longest operator reason novamove takes (--reason): the whole disabled_reason, its tag and
# lease included, must fit Nova's 255 characters without cutting the operator's words.
REASON_MAX = 120


def check_reason(reason: Optional[str]) -> None:
    """A --reason that would not fit is one line, exit 2, before anything changes."""
    if reason is not None and len(reason) > REASON_MAX:
        raise errors.UsageError(f"--reason is {len(reason)} characters; at most {REASON_MAX} fit in Nova's "
                                "disabled reason with novamove's tag")


def tagged_reason(run_id: str, reason: Optional[str]) -> str:
    """The disabled_reason novamove writes, so `recover` can tell its own toggles apart."""
    text = f"novamove:{run_id}: {reason or 'isolating the target of a migration'}"
    return text[:NOVA_REASON_MAX]


def reason_run_id(disabled_reason: Optional[str]) -> Optional[str]:
    """The run id in a reason written by `tagged_reason`, or None."""
    if not disabled_reason or not disabled_reason.startswith("novamove:"):
        return None
    run_id, sep, _ = disabled_reason[len("novamove:"):].partition(":")
    return run_id if sep else None


def is_drain_tag(disabled_reason: Optional[str]) -> bool:
    return reason_run_id(disabled_reason) is not None and ": drain:" in (disabled_reason or "")


def is_evacuate_tag(disabled_reason: Optional[str]) -> bool:
    """A failed host fenced by `novamove evacuate` (only `unfence` re-enables it)."""
    return reason_run_id(disabled_reason) is not None and ": evacuate:" in (disabled_reason or "")


def is_isolation_tag(disabled_reason: Optional[str]) -> bool:
    return (reason_run_id(disabled_reason) is not None and not is_drain_tag(disabled_reason)
            and not is_evacuate_tag(disabled_reason))


def drain_reason(run_id: str, reason: Optional[str], lease_until: Optional[datetime] = None) -> str:
    """The disabled_reason of a drained host; with a lease while the drain runs."""
    lease = f" [lease {lease_until.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}]" if lease_until else ""
    head = tagged_reason(run_id, f"drain: {reason or 'maintenance'}")
    return head[:NOVA_REASON_MAX - len(lease)] + lease


def lease_of(disabled_reason: Optional[str]) -> Optional[datetime]:
    match = _LEASE_RE.search(disabled_reason or "")
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def lease_from_now(seconds: float = LEASE_SECONDS, now: Optional[datetime] = None) -> datetime:
    """A lease's end: `now` is Nova's clock where the caller has it (the API's Date header), so
    machines whose clocks disagree still agree on when a lease ends."""
    return (now or datetime.now(timezone.utc)) + timedelta(seconds=seconds)


def is_campaign_tag(disabled_reason: Optional[str]) -> bool:
    """A host a maintenance campaign (`novamove maintain`) holds."""
    return is_drain_tag(disabled_reason) and ": drain: maintain: " in (disabled_reason or "")


def live_drain(disabled_reason: Optional[str], now: Optional[datetime] = None) -> Optional[str]:
    """The run id of a drain whose lease on this service has not expired, else None."""
    if not is_drain_tag(disabled_reason):
        return None
    lease = lease_of(disabled_reason)
    if lease is None or lease <= (now or datetime.now(timezone.utc)):
        return None
    return reason_run_id(disabled_reason)


def refuse_if_drained_elsewhere(host: str, disabled_reason: Optional[str], own_runs: set[str],
                                doing: str, dead_runs: Container[str] = frozenset(),
                                now: Optional[datetime] = None) -> None:
    """A drain or a maintenance campaign of `host` by another run still holds its lease: refuse
    (one line, nothing changed). Runs of our own chain, or runs our journal knows are dead, do
    not count. `now`: Nova's clock, where the caller has it."""
    other = live_drain(disabled_reason, now)
    if other and other not in own_runs and other not in dead_runs:
        until = lease_of(disabled_reason)
        if is_campaign_tag(disabled_reason):
            raise errors.PreconditionFailed(
                f"cannot {doing} {host}: maintenance campaign {other} holds it (its lease runs until "
                f"{until:%H:%M:%S} UTC, renewed while the campaign works on it, from another process or "
                f"machine); wait for it, or `novamove campaign stop {other}` where it runs")
        raise errors.PreconditionFailed(
            f"cannot {doing} {host}: novamove run {other} is draining it (its lease runs until "
            f"{until:%H:%M:%S} UTC, renewed while it works, from another process or machine); "
            "wait for it, or stop it first")
