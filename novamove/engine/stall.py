"""Live migrations that never converge: how a stall is seen, and what is done about it.

A busy guest dirties memory faster than the link copies it; the migration then runs on at the
same remaining memory (Nova's own limit is 800 s per GiB before it aborts it, and the host stays
undrainable meanwhile). novamove follows the memory progress Nova records on the migration
(`memory_remaining_bytes` of GET /servers/{id}/migrations) and calls it a stall when

- the remaining memory has not dropped by at least `progress` (a fraction of the guest's
  memory) over the last `window` seconds, or
- it has grown again by more than that fraction above the lowest seen, half a window or more
  into the copy (the guest dirties memory faster than it is copied).

Both are tunable, per run, from the environment (docs/reference.md, "Live migrations that
stall"): NOVAMOVE_STALL_WINDOW (seconds, default 30) and NOVAMOVE_STALL_PROGRESS (a fraction,
default 0.02: 2 % of a 16 GiB guest is 330 MB in 30 s, about 11 MB/s).

What is done about a stall (`--on-stall`, default force-complete) is bounded by the server's own
intent tag `novamove:maintenance`: `live` is never moved cold (force-completed instead), and
`live-strict` is never force-completed nor switched to post-copy (aborted: it stays, reported).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional

from novamove import errors
from novamove.model import Migration, Server

FORCE_COMPLETE, ABORT, COLD, LEAVE = "force-complete", "abort", "cold", "leave"
ON_STALL = (FORCE_COMPLETE, ABORT, COLD, LEAVE)
DEFAULT_ON_STALL = FORCE_COMPLETE

WINDOW = 30.0
PROGRESS = 0.02
# How often a batch runner reads one live move's memory progress (an extra GET per move): a
# tenth of the window, at least every second, and the first read one interval after the move
# is seen copying. A stall needs a whole window of samples anyway, so a move that ends within
# its first interval (most do) costs no progress read at all.
SAMPLE_EVERY = 1.0


def sample_every(settings: "StallSettings") -> float:
    return max(SAMPLE_EVERY, settings.window / 10)

INTENT_KEY = "novamove:maintenance"
LIVE_STRICT = "live-strict"
POST_COPY = "running (post-copy)"


@dataclass(frozen=True)
class StallSettings:
    window: float = WINDOW
    progress: float = PROGRESS


def check_on_stall(on_stall: str) -> str:
    """A bad --on-stall is one line, exit 2, before anything is read or changed."""
    if on_stall not in ON_STALL:
        raise errors.UsageError(f"unknown on-stall {on_stall!r} (choose {', '.join(ON_STALL)})")
    return on_stall


def settings_from_env(environ: Optional[dict] = None) -> StallSettings:
    """NOVAMOVE_STALL_WINDOW and NOVAMOVE_STALL_PROGRESS, checked (bad values: one line)."""
    env = os.environ if environ is None else environ
    window, progress = WINDOW, PROGRESS
    text = env.get("NOVAMOVE_STALL_WINDOW")
    if text:
        window = _number("NOVAMOVE_STALL_WINDOW", text)
        if window <= 0:
            raise errors.UsageError(f"NOVAMOVE_STALL_WINDOW={text!r} must be a number of seconds > 0")
    text = env.get("NOVAMOVE_STALL_PROGRESS")
    if text:
        progress = _number("NOVAMOVE_STALL_PROGRESS", text)
        if not 0 < progress < 1:
            raise errors.UsageError(f"NOVAMOVE_STALL_PROGRESS={text!r} must be a fraction between 0 and 1")
    return StallSettings(window, progress)


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise errors.UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise errors.UsageError(f"{name}={text!r} is not a finite number")
    return value


def intent_of(server: Optional[Server]) -> Optional[str]:
    """The server's `novamove:maintenance` tag value (live, live-strict, cold, ...), or None."""
    for tag in (server.tags if server is not None else ()) or ():
        key, sep, value = tag.partition("=")
        if key.strip() == INTENT_KEY and sep:
            return value.strip().lower()
    return None


def action_for(on_stall: str, intent: Optional[str]) -> str:
    """What is done about a stall of a server with `intent`, under the run's `on_stall`."""
    if intent == LIVE_STRICT:
        return ABORT if on_stall != LEAVE else LEAVE     # never force-completed, never post-copy
    if on_stall == COLD and intent == "live":
        return FORCE_COMPLETE                            # never moved cold; still a live move
    return on_stall


def mib(n: Optional[int]) -> str:
    return "?" if n is None else f"{n / (1024 * 1024):.0f} MiB"


def remaining_text(m: Migration) -> str:
    """"412 MiB of 2048 MiB left", for progress lines."""
    if m.memory_remaining_bytes is None and m.memory_total_bytes is None:
        return "memory progress not reported yet"
    left = m.memory_remaining_bytes or 0
    return f"{mib(left)} of {mib(m.memory_total_bytes)} memory left"


@dataclass
class StallWatch:
    """The memory progress of one live migration, sample by sample."""
    settings: StallSettings = field(default_factory=StallSettings)
    samples: list = field(default_factory=list)      # [(time, remaining bytes)]
    lowest: Optional[int] = None
    first_at: Optional[float] = None

    def see(self, now: float, m: Migration) -> Optional[str]:
        """Add a sample; the stall, in words, when this one shows it (else None)."""
        total, left = m.memory_total_bytes, m.memory_remaining_bytes
        if not total or m.status != "running":
            return None              # nothing reported yet, or not copying (queued, post-copy)
        left = left or 0
        self.first_at = now if self.first_at is None else self.first_at
        self.samples.append((now, left))
        # Keep what the window needs: the newest sample at or before now - window, and after.
        cut = now - self.settings.window
        while len(self.samples) > 1 and self.samples[1][0] <= cut:
            self.samples.pop(0)
        step = self.settings.progress * total
        if self.lowest is not None and left > self.lowest + step \
                and now - self.first_at >= self.settings.window / 2:
            return (f"stalled: remaining memory growing again ({mib(self.lowest)} -> {mib(left)} "
                    f"of {mib(total)}): the guest dirties memory faster than it is copied")
        self.lowest = left if self.lowest is None else min(self.lowest, left)
        start_at, start_left = self.samples[0]
        if start_at <= cut and start_left - left < step:
            return (f"stalled: {mib(left)} of {mib(total)} memory left, less than "
                    f"{self.settings.progress:.0%} copied in {self.settings.window:g} s")
        return None
