"""Small helpers for acceptance tests (import as `from cloudtest import ...`)."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_until(proc, needle: str, lines: list, timeout: float = 180) -> None:
    """Read proc's progress (stderr) into `lines` until a line holds `needle`; else kill it and
    fail with what it printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if needle in line:
            return
    proc.kill()
    raise AssertionError(f"never saw {needle!r}:\n" + "\n".join(lines))
