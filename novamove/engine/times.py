"""Timestamps as Nova and Placement write them (ISO 8601, with or without a zone: UTC), read
and written in one way for every family."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def parse_time(ts: Optional[str]) -> Optional[datetime]:
    """An aware UTC datetime from Nova's text (`2026-12-02T13:36:25.000000`, `...Z`,
    `...+00:00`); None for nothing or for text that is not a time."""
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    """Nova's own format (UTC, no zone, seconds): what its `changes-since` filters compare."""
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
