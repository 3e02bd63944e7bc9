"""Signals as exceptions, so that `finally`/revert code runs on Ctrl-C and on `kill`.

SIGKILL cannot be caught: that case is what the journal and `novamove recover` are for.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from novamove import errors

_CATCH = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Interrupted inside the block (SIGINT already raises KeyboardInterrupt)."""
    if not _main_thread():
        yield
        return

    def raise_interrupted(signum, _frame):
        raise errors.Interrupted(f"interrupted by signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, raise_interrupted) for s in _CATCH}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred_signals(reraise: bool = True) -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP while the block runs (restoring services must not be cut short);
    afterwards re-raise the first one held (unless `reraise` is False: the caller is already
    unwinding from an error or interrupt)."""
    if not _main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum, _frame):
        received.append(signum)

    sigs = (signal.SIGINT,) + _CATCH
    previous = {s: signal.signal(s, remember) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and reraise:
        if received[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise errors.Interrupted(f"interrupted by signal {signal.Signals(received[0]).name}")
