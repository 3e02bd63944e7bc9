"""A journaled change in progress (Journal.change) and what a write did (Written)."""

from __future__ import annotations

from typing import Any

from novamove import requestids
from novamove.engine import faults


class Change:
    """A journaled change in progress (see Journal.change): `record(...)` adds facts stored
    with its outcome."""

    def __init__(self, journal: Any, event_id: int, kind: str, keep_open: bool = False):
        self.journal, self.id, self.kind, self.keep_open = journal, event_id, kind, keep_open
        self.data: dict = {}

    def record(self, **data: Any) -> None:
        self.data.update(data)

    def __enter__(self) -> "Change":
        requestids.take()          # an id from before this change is not this change's
        try:
            faults.hit(self.kind, "before")
        except BaseException as exc:
            self.journal.failed(self.id, error=str(exc)[:500] or type(exc).__name__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        rid = requestids.take() or getattr(exc, "request_id", None)
        if rid:
            self.data.setdefault("request_id", rid)
        if exc is None:
            try:
                faults.hit(self.kind, "after")
            except BaseException as injected:
                self.journal.failed(self.id, error=str(injected)[:500], **self.data)
                raise
            if not self.keep_open:
                self.journal.done(self.id, **self.data)
            elif self.data:
                self.journal._merge(self.id, self.data)
            return False
        self.journal.failed(self.id, error=str(exc)[:500] or exc_type.__name__, **self.data)
        return False


class Written:
    """What a write did: rows it matched, and the id of the row it inserted."""
    __slots__ = ("rowcount", "lastrowid")

    def __init__(self, rowcount: int, lastrowid: int) -> None:
        self.rowcount, self.lastrowid = rowcount, lastrowid
