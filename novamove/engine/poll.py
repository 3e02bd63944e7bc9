"""The one "ask until it settles" helper (like openstacksdk's iterate_timeout), with an
injectable clock so that tests need not wait."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll_until(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> tuple[T, bool]:
    """`probe()` until `done(value)` or `timeout` seconds have passed; returns the last value
    and whether it is done. Probes at least once."""
    deadline = clock() + timeout
    value = probe()
    while not done(value):
        if clock() >= deadline:
            return value, False
        sleep(interval)
        value = probe()
    return value, True
