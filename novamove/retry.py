"""Riding out a cloud API that is briefly unreachable (a restart, a load balancer reload).

Only for calls that are safe to repeat: reads, and writes that set a state rather than start
an action (enabling a service). Starting a migration is never retried here.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional, TypeVar

from novamove import errors

log = logging.getLogger("novamove.retry")
T = TypeVar("T")


def patiently(call: Callable[[], T], what: str, *, patience: float = 60.0,
              sleep: Optional[Callable[[float], None]] = None) -> T:
    """`call()`, retried on errors.Unreachable with doubling pauses (1 s up to 15 s) until
    `patience` seconds of pauses have passed; then the last error is raised."""
    sleep = sleep or time.sleep
    delay, waited = 1.0, 0.0
    while True:
        try:
            return call()
        except errors.Unreachable as exc:
            if waited >= patience:
                raise
            log.warning("%s; %s: next try in %.0f s", exc, what, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 15.0)
