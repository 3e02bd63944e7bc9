"""`--events FILE|-`: every journal state change as one JSON object per line.

The journal calls the stream right after each write, so the stream's last state for an event
id is the journal's (see docs/events.md; the schema is events.schema.json beside this file).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from importlib import resources
from typing import IO, Any, Callable, Optional

from novamove.report import RUN_KEYS, renamed

SCHEMA_VERSION = 1
SCHEMA_FILE = "events.schema.json"

# Run fields a stream line carries, under the names `history -f json` gives them.
RUN_FIELDS = ("verb", "status", "started_at", "finished_at", "cloud", "server_id", "server_name",
              "source_compute", "dest_compute", "mode", "strategy", "summary", "error")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line(record: dict) -> dict:
    """One journal record (Journal._tell) as the stream's JSON object."""
    if record["record"] == "run":
        run = renamed(record["run"], RUN_KEYS)
        out = {"schema_version": SCHEMA_VERSION, "time": utc_now(), "run_id": run["id"],
               "record": "run", "kind": record["kind"]}
        out.update({k: run.get(k) for k in RUN_FIELDS})
        return out
    ev = record["event"]
    return {"schema_version": SCHEMA_VERSION, "time": utc_now(), "run_id": ev.run_id, "record": "event",
            "kind": ev.kind, "event_id": ev.id, "target": ev.target, "state": ev.state, "at": ev.at,
            "ended_at": ev.ended_at, "data": ev.data}


Redact = Callable[[Any], Any]


class EventStream:
    """An observer writing one line per record, flushed at once (a `tail -f` sees it live).

    `redact`, if given, gets each line (plain JSON types) and returns what to write: the Ansible
    modules mask their no_log values with it (a hook or fence command the journal records)."""

    def __init__(self, out: IO[str], close: bool = False, redact: Optional[Redact] = None):
        self.out, self._close, self.redact = out, close, redact
        self.__name__ = f"--events {getattr(out, 'name', '?')}"

    @classmethod
    def open(cls, where: str, redact: Optional[Redact] = None) -> "EventStream":
        if where == "-":
            return cls(sys.stdout, redact=redact)
        # Created readable by its owner only, as the journal it mirrors (hook and fence commands).
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stream = cls(os.fdopen(fd, "a", encoding="utf-8"), close=True, redact=redact)
        stream.__name__ = f"--events {where}"
        return stream

    def __call__(self, record: dict) -> None:
        out = line(record)
        if self.redact is not None:
            out = self.redact(json.loads(json.dumps(out, default=str)))
        self.out.write(json.dumps(out, default=str, sort_keys=True) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self._close:
            self.out.close()


def schema() -> dict:
    """The JSON Schema of a stream line (shipped in the package)."""
    return json.loads(resources.files("novamove.observe").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


def last_states(lines: list[dict], run_id: Optional[str] = None) -> dict[int, str]:
    """The last state of every event id in a stream (what the journal must show)."""
    out: dict[int, str] = {}
    for x in lines:
        if x["record"] == "event" and (run_id is None or x["run_id"] == run_id):
            out[x["event_id"]] = x["state"]
    return out
