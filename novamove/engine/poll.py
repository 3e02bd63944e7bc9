"""The one "ask until it settles" helper (like openstacksdk's iterate_timeout), with an
injectable clock so that tests need not wait, and the interval that backs off while nothing
is due (`Backoff`): a wait that lasts asks the cloud less and less often, up to a ceiling,
and as often as at first again once something moves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, TypeVar

T = TypeVar("T")

BACKOFF_FACTOR = 1.5


@dataclass
class Backoff:
    """Seconds to the next read: `first`, then each time x `factor`, at most `most`."""
    first: float
    most: float
    factor: float = BACKOFF_FACTOR
    interval: float = field(init=False)

    def __post_init__(self) -> None:
        self.interval = self.first

    def next(self) -> float:
        """The wait before the next read (and the one after it grows)."""
        now = self.interval
        self.interval = min(max(self.most, self.first), self.interval * self.factor)
        return now

    def reset(self) -> None:
        """Something moved: read as often as at first again."""
        self.interval = self.first


def poll_until(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep, max_interval: Optional[float] = None) -> tuple[T, bool]:
    """`probe()` until `done(value)` or `timeout` seconds have passed; returns the last value
    and whether it is done. Probes at least once. With `max_interval` the wait between probes
    backs off (`Backoff`) from `interval` up to it."""
    deadline = clock() + timeout
    waits = Backoff(interval, max_interval if max_interval is not None else interval)
    value = probe()
    while not done(value):
        if clock() >= deadline:
            return value, False
        sleep(waits.next())
        value = probe()
    return value, True
