"""The local journal: an SQLite file (mode 0600) of runs and every state change they make.

Each change to the cloud is written as an `intent` *before* the API call and marked `done`
(or `failed`) after it, so that after a crash -- even SIGKILL -- `novamove recover` knows what
may have been changed and can undo it. Nothing secret is ever written here: names, UUIDs,
statuses and reasons only.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from novamove import requestids
from novamove.engine import events, faults

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    verb        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,          -- running | ok | failed | noop | interrupted | recovered
    cloud       TEXT,
    server_id   TEXT,
    server_name TEXT,
    source      TEXT,
    dest        TEXT,
    mode        TEXT,
    strategy    TEXT,
    pid         INTEGER,
    process     TEXT,                   -- boot id + pid + start time: which process, exactly
    summary     TEXT,
    error       TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL REFERENCES runs(id),
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,             -- service.disable | service.enable | server.migrate | ...
    target   TEXT,                      -- service host, server id, migration id
    state    TEXT NOT NULL,             -- intent | done | failed | note
    data     TEXT,                      -- JSON
    ended_at TEXT                       -- when the change became done or failed
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id);
"""

LOG = logging.getLogger(__name__)

# An observer sees every journal state change, as one record (a dict: see record kinds below),
# right after it is on disk: the event stream and the metrics are observers (novamove/observe/).
Observer = Callable[[dict], None]

# Record kinds an observer receives (the "kind" of a run record; event records carry the
# journal event's own kind and "record": "event").
RECORD_RUN = "run"
RECORD_EVENT = "event"
RUN_START, RUN_RESUME, RUN_UPDATE, RUN_FINISH = "run.start", "run.resume", "run.update", "run.finish"

# Run statuses that mean "this run is over and left nothing behind on purpose".
FINAL = events.FINAL


def default_path() -> Path:
    env = os.environ.get("NOVAMOVE_JOURNAL")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "novamove" / "journal.sqlite"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Event:
    id: int
    run_id: str
    at: str
    kind: str
    target: Optional[str]
    state: str
    data: dict

    ended_at: Optional[str] = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Event":
        return cls(row["id"], row["run_id"], row["at"], row["kind"], row["target"], row["state"],
                   json.loads(row["data"] or "{}"), row["ended_at"])


class Journal:
    def __init__(self, path: str | os.PathLike | None = None, observers: Iterable[Observer] = ()):
        self.path = Path(path).expanduser() if path else default_path()
        self.observers: list[Observer] = list(observers)
        self._create()

    def observe(self, *observers: Observer) -> "Journal":
        """Add observers (the api's `observers=`): they see the changes from now on."""
        self.observers.extend(o for o in observers if o not in self.observers)
        return self

    def _tell(self, record: dict) -> None:
        """Hand one state change to every observer. The journal is the truth and the run goes
        on whatever an observer does: one that raises is dropped (with a warning), so a full
        disk under --events or a gone Pushgateway never fails a move."""
        for observer in list(self.observers):
            try:
                observer(record)
            except Exception as exc:  # noqa: BLE001 -- any observer fault, by design
                self.observers.remove(observer)
                LOG.warning("observer %s failed and is dropped: %s", getattr(observer, "__name__", observer), exc)

    # The file is created 0600 in a 0700 directory before SQLite ever opens it: it names the
    # cloud's hosts and servers, which is nobody else's business.
    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "process" not in columns:        # a journal written by an earlier novamove
                db.execute("ALTER TABLE runs ADD COLUMN process TEXT")
            event_columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            if "ended_at" not in event_columns:   # written before changes had an end time
                db.execute("ALTER TABLE events ADD COLUMN ended_at TEXT")

    def _connect(self) -> sqlite3.Connection:
        # autocommit: every write is on disk before the API call it announces.
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _write(self, sql: str, args: tuple) -> int:
        with closing(self._connect()) as db:
            cur = db.execute(sql, args)
            return cur.lastrowid or 0

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with closing(self._connect()) as db:
            return list(db.execute(sql, args))

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, verb: str, *, cloud: Optional[str] = None,
                  server_id: Optional[str] = None, server_name: Optional[str] = None,
                  source: Optional[str] = None, dest: Optional[str] = None,
                  mode: Optional[str] = None, strategy: Optional[str] = None) -> str:
        self._write(
            "INSERT INTO runs (id, verb, started_at, status, cloud, server_id, server_name, source,"
            " dest, mode, strategy, pid, process) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, verb, now(), "running", cloud, server_id, server_name, source, dest, mode,
             strategy, os.getpid(), process_token(os.getpid())))
        self._tell_run(RUN_START, run_id)
        return run_id

    def _tell_run(self, kind: str, run_id: str) -> None:
        if not self.observers:
            return
        rows = self._read("SELECT * FROM runs WHERE id=?", (run_id,))
        if rows:
            self._tell({"record": RECORD_RUN, "kind": kind, "run": dict(rows[0])})

    def resume_run(self, run_id: str) -> None:
        """This process takes over an ended or dead run to continue it (`--resume`): the run is
        "running" again under this process's pid and token, so status, stop and a second
        resume see who holds it."""
        self._write("UPDATE runs SET status=?, finished_at=NULL, pid=?, process=? WHERE id=?",
                    (events.RUN_RUNNING, os.getpid(), process_token(os.getpid()), run_id))
        self._tell_run(RUN_RESUME, run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {"status", "summary", "error", "dest", "source", "mode", "strategy", "finished_at"}
        cols = [k for k in fields if k in allowed]
        if not cols:
            return
        self._write(f"UPDATE runs SET {', '.join(c + '=?' for c in cols)} WHERE id=?",
                    tuple(fields[c] for c in cols) + (run_id,))
        self._tell_run(RUN_UPDATE, run_id)

    def finish_run(self, run_id: str, status: str, summary: Optional[str] = None,
                   error: Optional[str] = None) -> None:
        self._write("UPDATE runs SET status=?, summary=COALESCE(?, summary), error=?, finished_at=?"
                    " WHERE id=?", (status, summary, error, now(), run_id))
        self._tell_run(RUN_FINISH, run_id)

    def get_run(self, run_id: str) -> Optional[dict]:
        rows = self._read("SELECT * FROM runs WHERE id=? OR id LIKE ?", (run_id, run_id + "%"))
        return dict(rows[0]) if len(rows) == 1 else None

    def runs(self, limit: int = 50, server_id: Optional[str] = None) -> list[dict]:
        if server_id:
            rows = self._read("SELECT * FROM runs WHERE server_id=? ORDER BY started_at DESC, rowid DESC"
                              " LIMIT ?", (server_id, limit))
        else:
            rows = self._read("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def unfinished_runs(self) -> list[dict]:
        """Runs that did not reach a final status: running (maybe killed) or interrupted."""
        marks = ",".join("?" * len(FINAL))
        rows = self._read(f"SELECT * FROM runs WHERE status NOT IN ({marks}) ORDER BY started_at, rowid",
                          tuple(FINAL))
        return [dict(r) for r in rows]

    def recent_final_runs(self, verbs: set[str], limit: int = 200) -> list[dict]:
        """The latest runs of `verbs` that ended (any final status but "recovered"), oldest
        first: a run can end "failed" and still leave a change behind (a re-enable that did
        not go through), so `recover` looks at these too."""
        marks = ",".join("?" * len(verbs))
        rows = self._read(f"SELECT * FROM runs WHERE verb IN ({marks}) AND status IN ('failed', 'ok')"
                          " ORDER BY started_at DESC, rowid DESC LIMIT ?", tuple(verbs) + (limit,))
        return [dict(r) for r in reversed(rows)]

    def last_move(self, server_id: str) -> Optional[dict]:
        """The latest run that moved `server_id` (for `novamove back`)."""
        rows = self._read("SELECT * FROM runs WHERE server_id=? AND verb IN ('migrate','back')"
                          " AND status='ok' AND source IS NOT NULL AND dest IS NOT NULL AND source != dest"
                          " ORDER BY started_at DESC, rowid DESC LIMIT 1", (server_id,))
        return dict(rows[0]) if rows else None

    # ------------------------------------------------------------------ events

    def intent(self, run_id: str, kind: str, target: Optional[str], **data: Any) -> int:
        """Announce a change before making it; returns the event id to mark done/failed."""
        return self._insert(run_id, kind, target, "intent", data)

    def note(self, run_id: str, kind: str, target: Optional[str], **data: Any) -> int:
        """Record an observation (not a change): scheduling decisions, statuses, outcomes."""
        return self._insert(run_id, kind, target, "note", data)

    def _insert(self, run_id: str, kind: str, target: Optional[str], state: str, data: dict) -> int:
        event_id = self._write("INSERT INTO events (run_id, at, kind, target, state, data) VALUES (?,?,?,?,?,?)",
                               (run_id, now(), kind, target, state, json.dumps(data, default=str)))
        self._tell_event(event_id)
        return event_id

    def _tell_event(self, event_id: int) -> None:
        if not self.observers:
            return
        rows = self._read("SELECT * FROM events WHERE id=?", (event_id,))
        if rows:
            self._tell({"record": RECORD_EVENT, "event": Event.from_row(rows[0])})

    def change(self, run_id: str, kind: str, target: Optional[str], *, keep_open: bool = False,
               **data: Any) -> "Change":
        """Write the intent now; used as a context manager around the API call, it marks the
        change done (or failed with the error, which is re-raised). The one way novamove
        changes the cloud: a change without its journal entry cannot be written.

            with journal.change(run_id, events.SERVICE_DISABLE, host, service_id=sid) as change:
                cloud.disable_service(service, reason)
                change.record(request_id=...)

        `keep_open`: on success the intent stays open (a move in flight: its watcher marks it
        done or failed when the move ends). NOVAMOVE_FAULT hooks in here (engine/faults.py).
        `change.id` is known from the start, even if the call never ran.
        """
        return Change(self, self.intent(run_id, kind, target, **data), kind, keep_open)

    def done(self, event_id: int, **data: Any) -> None:
        self._mark(event_id, "done", data)

    def failed(self, event_id: int, **data: Any) -> None:
        self._mark(event_id, "failed", data)

    def _mark(self, event_id: int, state: Optional[str], data: dict) -> None:
        """Set a change's state (None: keep it) and merge facts into its data. Observers hear of
        a state change only (an outcome, an intent reopened): more facts alone are no news."""
        rows = self._read("SELECT state, data, ended_at FROM events WHERE id=?", (event_id,))
        merged = json.loads(rows[0]["data"] or "{}") if rows else {}
        merged.update(data)
        before = rows[0]["state"] if rows else "intent"
        state = state or before
        ended = rows[0]["ended_at"] if rows else None
        if state != before:
            ended = now() if state in ("done", "failed") else None
        self._write("UPDATE events SET state=?, data=?, ended_at=? WHERE id=?",
                    (state, json.dumps(merged, default=str), ended, event_id))
        if state != before:
            self._tell_event(event_id)

    def _merge(self, event_id: int, data: dict) -> None:
        self._mark(event_id, None, data)

    def events(self, run_id: str) -> list[Event]:
        return [Event.from_row(r) for r in
                self._read("SELECT * FROM events WHERE run_id=? ORDER BY id", (run_id,))]

    def request_ids(self, run_id: str) -> list[str]:
        """Nova's request ids of the run's changes, in order (for reports and error texts)."""
        return [e.data["request_id"] for e in self.events(run_id) if e.data.get("request_id")]


class Change:
    """A journaled change in progress (see Journal.change): `record(...)` adds facts stored
    with its outcome."""

    def __init__(self, journal: "Journal", event_id: int, kind: str, keep_open: bool = False):
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


def process_token(pid: int) -> Optional[str]:
    """What tells this process apart from any other that gets the same pid later (after a
    reboot, or once pids wrap): the boot id and the process's start time. None off Linux."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]         # field 22: starttime
    except (OSError, IndexError):
        return None
    return f"{boot}:{pid}:{start}"


def run_alive(run: dict) -> bool:
    """Whether the process that ran `run` still runs (here): its pid alone is not enough, a
    reused pid after a reboot would keep a dead run "running" forever."""
    pid = run.get("pid")
    if not pid_alive(pid):
        return False
    recorded = run.get("process")
    return recorded is None or process_token(pid) in (None, recorded)


def pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A process that exited but nobody reaped (a hook whose novamove was killed, reparented to
    # an init that does not reap, as in many containers) is a zombie: over, not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")

