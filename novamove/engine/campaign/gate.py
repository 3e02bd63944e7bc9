"""The gate after a host's hook: when is the host back, and not merely still there?

A hook that returns while its reboot is still to come (`ssh host reboot`, `systemd-run
--on-active=20 systemctl reboot`) leaves the *old* nova-compute reporting for a while: a
heartbeat newer than the hook's end proves nothing then. So, like Ansible's `reboot` module
(which waits for a changed boot id), the `restart` gate passes only on evidence of a start after
the hook began:

- the host's boot, from the hypervisor's uptime (libvirt reports the `uptime` command's text;
  its minutes are rounded down, so the *earliest* boot the text allows must be after the
  hook's start), or, where the driver reports no uptime,
- the compute seen down by a read after the hook started, and reporting up again since.

`heartbeat` (the default without a hook, and the opt-in for hooks that restart nothing) passes
on a report newer than the hook's end. Every time compared is Nova's (the API's Date header
and the service's `updated_at`), never this machine's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

RESTART, HEARTBEAT = "restart", "heartbeat"
# Seconds past the first moment an uptime read can prove a restart that the read waits for
# (Nova's Date header, the `now` it is judged against, has whole seconds).
UPTIME_MARGIN = 1.5
GATES = (RESTART, HEARTBEAT)

_UP = re.compile(r"\bup\s+(.*?),\s+\d+\s+users?\b", re.S)
_DAYS = re.compile(r"(\d+)\s+days?")
_HHMM = re.compile(r"\b(\d+):(\d\d)\b")
_MIN = re.compile(r"(\d+)\s+min")
_SEC = re.compile(r"(\d+)\s+sec")


def default_gate(gate: Optional[str], hook: Optional[str]) -> str:
    return gate or (RESTART if hook else HEARTBEAT)


def uptime_bounds(text: Optional[str]) -> Optional[tuple[float, float]]:
    """(shortest, longest) uptime in seconds that `uptime`'s text allows, or None when the
    text says nothing usable. " 10:01:02 up 2 days,  3:04,  1 user, ..." -> 2 d 3 h 4 min, up
    to a minute more; "up 5 min" -> [300, 360); "up 12 sec" (BusyBox) -> [12, 13)."""
    if not text:
        return None
    m = _UP.search(text)
    if m is None:
        return None
    span = m.group(1)
    days = int(d.group(1)) if (d := _DAYS.search(span)) else 0
    rest = _DAYS.sub("", span)
    if (hm := _HHMM.search(rest)) is not None:
        low, step = (int(hm.group(1)) * 60 + int(hm.group(2))) * 60, 60
    elif (mi := _MIN.search(rest)) is not None:
        low, step = int(mi.group(1)) * 60, 60
    elif (se := _SEC.search(rest)) is not None:
        low, step = int(se.group(1)), 1
    elif days:
        low, step = 0, 60
    else:
        return None
    low += days * 86400
    return float(low), float(low + step)


@dataclass
class GateFacts:
    """What one read of the cloud says about the host, all in Nova's clock."""
    up: bool                              # nova-compute up per Nova, not forced down
    reported: Optional[datetime]          # its updated_at
    now: Optional[datetime]               # Nova's time now (Date header)
    uptime: Optional[str] = None          # the hypervisor's uptime text, if it has one


@dataclass
class GateState:
    """What the gate remembers between reads of one host."""
    kind: str
    hook_started: datetime                # Nova's clock
    hook_ended: datetime                  # Nova's clock
    seen_down_at: Optional[datetime] = None


def judge(state: GateState, facts: GateFacts) -> tuple[bool, str]:
    """(passed, why): the verdict of one read; a `False` is "not yet" (the caller times out)."""
    if not facts.up:
        if facts.now is not None and facts.now >= state.hook_started and state.seen_down_at is None:
            state.seen_down_at = facts.now
        return False, "nova-compute down"
    if facts.reported is None or facts.reported <= state.hook_ended:
        return False, f"no report since the hook ended (last {facts.reported})"
    if state.kind == HEARTBEAT:
        return True, f"up, reported {facts.reported.isoformat()} after the hook"
    bounds = uptime_bounds(facts.uptime)
    if bounds is not None and facts.now is not None:
        earliest_boot = facts.now - timedelta(seconds=bounds[1])
        if earliest_boot > state.hook_started:
            return True, f"restarted: booted after {earliest_boot.isoformat(timespec='seconds')}, after the hook began"
        return False, (f"the host has been up since before the hook began (uptime {bounds[0]:.0f} s or more); "
                       "waiting for its restart")
    if state.seen_down_at is not None and facts.reported > state.seen_down_at:
        return True, f"restarted: seen down at {state.seen_down_at.isoformat(timespec='seconds')}, reporting since"
    return False, "no sign of a restart yet (no uptime from the hypervisor, not seen down)"


def next_read_at(state: GateState, facts: GateFacts) -> Optional[datetime]:
    """Nova's time before which another uptime read cannot prove the restart that this one
    allows, or None (no uptime, or none since the hook began: read again as usual).

    `uptime` counts whole minutes: a read says the boot was in (now - high, now - low]. While
    the count stays the same, the earliest boot it allows, now - high, moves on with the
    clock, and passes the hook's start at hook start + high: a read just after that, before
    the count goes up, proves a boot after the hook began (when the boot was more than
    UPTIME_MARGIN s after it). Reads before then cannot; a minute of reads every few seconds
    costs a dozen requests for the one that counts."""
    bounds = uptime_bounds(facts.uptime)
    if bounds is None or facts.now is None or not facts.up or state.kind != RESTART:
        return None
    low, high = bounds
    if facts.now - timedelta(seconds=low) <= state.hook_started:
        return None                       # booted before the hook began: no restart yet
    return state.hook_started + timedelta(seconds=high + UPTIME_MARGIN)
