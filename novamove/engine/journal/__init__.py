"""The journal: runs and every state change they make, in an SQLite file (mode 0600, the
default) or in a database server shared by several machines (a SQLAlchemy URL; store.py).

Each change to the cloud is written as an `intent` *before* the API call and marked `done`
(or `failed`) after it, so that after a crash -- even SIGKILL -- `novamove recover` knows what
may have been changed and can undo it. Nothing secret is ever written here: names, UUIDs,
statuses and reasons only (a command line is stored with its secrets masked).

A run is held by the process that started (or resumed, or recovers) it: its holder token is
the fencing token every write about the run checks, and its lease (leases.py) is renewed while
the process lives. A process whose run was taken over writes nothing more as its holder.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import sqlalchemy as sa

from novamove import errors
from novamove.engine import events
from novamove.engine.journal import leases, migrate
from novamove.engine.journal.changes import Change, Written
from novamove.engine.journal.leases import (holder_text, lease_left, lease_seconds, pid_alive,  # noqa: F401
                                            process_token, run_alive)
from novamove.engine.journal.schema import INTERNAL_RUN_COLUMNS, events as events_t, runs as runs_t
from novamove.engine.journal.statements import (FIND_EVENT, INSERT_EVENT, INSERT_EVENT_FENCED,
                                                INSERT_EVENT_FENCED_RETURNING, MARK_EVENT, MARK_EVENT_FENCED,
                                                READ_EVENT)
from novamove.engine.journal.store import Fenced, autocommit, is_url, open_store

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


def default_path() -> Path | str:
    """$NOVAMOVE_JOURNAL (a path or a database URL), else the SQLite file under XDG_STATE_HOME."""
    env = os.environ.get("NOVAMOVE_JOURNAL")
    if env:
        return env if is_url(env) else Path(env).expanduser()
    return state_dir() / "journal.sqlite"


def state_dir() -> Path:
    """This machine's novamove state: XDG_STATE_HOME/novamove (hook logs of a database journal)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "novamove"


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
    def from_row(cls, row: Any) -> "Event":
        return cls(row["id"], row["run_id"], row["at"], row["kind"], row["target"], row["state"],
                   json.loads(row["data"] or "{}"), row["ended_at"])


def _run_dict(row: Any) -> dict:
    return {k: v for k, v in dict(row).items() if k not in INTERNAL_RUN_COLUMNS}


NEWEST_FIRST = (runs_t.c.started_at.desc(), runs_t.c.started_ns.desc())

class Journal:
    def __init__(self, path: str | os.PathLike | None = None, observers: Iterable[Observer] = ()):
        location = path if path else default_path()
        if is_url(str(location)):
            self.store = open_store(str(location))
            self.path: Any = self.store.display          # a URL without its password
        else:
            self.path = Path(location).expanduser()
            self._create_file()
            self.store = open_store(self.path)
        self.observers: list[Observer] = list(observers)
        self.holder = leases.holder_token()   # this process's fencing token
        self._held: set[str] = set()          # runs this journal holds (writes fenced, leases renewed)
        self._lost: set[str] = set()          # runs taken over from this process: no more writes
        self._lock = threading.Lock()
        self._last_event = 0                  # the id of the last event this journal wrote
        # Intents this process wrote for runs it holds, as they stand in the journal: marking one
        # needs no read (nobody else writes a held run's events; a taker's fence stops our write).
        self._open: dict[int, dict] = {}
        migrate.ensure(self.store)
        self.store.answered = True            # from now on a lost connection is a blip to ride out

    @property
    def shared(self) -> bool:
        """Whether the journal is a database server (other machines may share it)."""
        return self.store.dialect != "sqlite"

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
    def _create_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)

    def _native(self, sql: str) -> str:
        return sql if self.store.dialect == "sqlite" else sql.replace("?", "%s")

    def _write(self, stmt: Any, args: tuple | dict = ()) -> Any:
        """Every write of the journal's records (lease renewals aside), committed before it returns: a
        Core statement (parameters: a dict), SQL text with `?` placeholders, or a function of a connection
        (one transaction, unless marked store.autocommit)."""
        return self._execute(stmt, args)

    def _execute(self, stmt: Any, args: tuple | dict = ()) -> Any:
        function = callable(stmt) and not isinstance(stmt, (str, sa.sql.ClauseElement))
        # One statement (or a function marked `autocommit`: its statements need no transaction
        # together) goes to a server's autocommit pool: committed when its answer comes back.
        quick = self.store.quick if not function or getattr(stmt, "autocommit", False) else None

        def call() -> Any:      # one transaction, tried again as a whole when the database says so
            with quick.connect() if quick is not None else self.store.engine.begin() as c:
                if function:
                    return stmt(c)
                if isinstance(stmt, str):
                    return self._written(stmt, c.exec_driver_sql(self._native(stmt), tuple(args)))
                return self._written(stmt, c.execute(stmt, args or None))
        return self.store.run(call, "write")

    def _written(self, stmt: Any, r: Any) -> "Written":
        if r.returns_rows:                      # INSERT ... RETURNING (PostgreSQL)
            ids = [row[0] for row in r]
            return Written(len(ids), ids[0] if ids else 0)
        if isinstance(stmt, sa.Insert) and stmt.select is None:
            return Written(r.rowcount, r.inserted_primary_key[0] or 0)
        return Written(r.rowcount, (r.lastrowid or 0) if self.store.dialect != "postgresql" else 0)

    def _read(self, stmt: Any, args: tuple | dict = ()) -> list[dict]:
        def call() -> list[dict]:
            with (self.store.quick or self.store.engine).connect() as c:
                r = (c.exec_driver_sql(self._native(stmt), tuple(args)) if isinstance(stmt, str)
                     else c.execute(stmt, args or None))
                return [dict(m) for m in r.mappings()]
        return self.store.run(call, "read")

    # ------------------------------------------------------------------ holding runs

    def _holding(self, run_id: str) -> bool:
        """Whether writes about `run_id` are this process's as holder (then fenced)."""
        if run_id in self._lost:
            raise self._fenced(run_id)
        return run_id in self._held

    def _fenced(self, run_id: str) -> Fenced:
        with self._lock:
            self._held.discard(run_id)
            self._lost.add(run_id)
        rows = self._read(sa.select(runs_t).where(runs_t.c.id == run_id))
        by = holder_text(rows[0]) if rows else "another process"
        return Fenced(f"run {run_id} was taken over by {by} (this process's lease on it had expired): "
                      "this process writes nothing more for it")

    def _hold(self, run_id: str) -> None:
        with self._lock:
            self._held.add(run_id)
            self._lost.discard(run_id)
        leases.RENEWER.add(self)

    def _release(self, run_id: str) -> None:
        with self._lock:
            self._held.discard(run_id)

    def renew_leases(self) -> None:
        """Push the lease of every run held further (the Renewer calls it); a run whose holder
        is no longer this process is lost (fenced) from now on."""
        for run_id in list(self._held):
            w = self._execute(runs_t.update().where(runs_t.c.id == run_id, runs_t.c.holder == self.holder)
                              .values(lease_until=time.time() + lease_seconds(), version=runs_t.c.version + 1))
            if w.rowcount == 0 and run_id in self._held:
                LOG.warning("%s", self._fenced(run_id))

    def take_over(self, run_id: str) -> bool:
        """Hold a dead run (recover, a continuing run): compare-and-swap on its version, so a
        holder that renewed its lease meanwhile keeps it. False when it is alive or was taken."""
        rows = self._read(sa.select(runs_t).where(runs_t.c.id == run_id))
        if not rows:
            return False
        run = rows[0]
        if run["holder"] == self.holder:
            self._hold(run_id)
            return True
        if run["status"] == events.RUN_RUNNING and run_alive(run):
            return False
        w = self._write(runs_t.update().where(runs_t.c.id == run_id, runs_t.c.version == run["version"])
                        .values(holder=self.holder, version=run["version"] + 1,
                                lease_until=time.time() + lease_seconds()), ())
        # No row after a lost answer: the swap may have been committed all the same (then we hold it)
        won = w.rowcount == 1 or self._read(sa.select(runs_t.c.holder).where(runs_t.c.id == run_id))[0][
            "holder"] == self.holder
        self._hold(run_id) if won else None
        return won

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, verb: str, *, cloud: Optional[str] = None,
                  server_id: Optional[str] = None, server_name: Optional[str] = None,
                  source: Optional[str] = None, dest: Optional[str] = None,
                  mode: Optional[str] = None, strategy: Optional[str] = None) -> str:
        # The primary key makes a run id taken twice an error, on every backend; tried again
        # after a lost connection, the run may be there already: this process's own, it is.
        tries = []

        @autocommit
        def insert(c: Any) -> None:
            tries.append(1)
            if len(tries) > 1 and c.execute(sa.select(runs_t.c.id).where(
                    runs_t.c.id == run_id, runs_t.c.holder == self.holder)).first():
                return
            c.execute(stmt)
        stmt = runs_t.insert().values(
            id=run_id, verb=verb, started_at=now(), started_ns=time.time_ns(), status="running", cloud=cloud,
            server_id=server_id, server_name=server_name, source=source, dest=dest, mode=mode,
            strategy=strategy, pid=os.getpid(), process=process_token(os.getpid()),
            user_name=leases.user_name(), machine=leases.machine_name(), command=leases.command_line(),
            holder=self.holder, lease_until=time.time() + lease_seconds(), version=0)
        self._write(insert, ())
        self._hold(run_id)
        self._tell_run(RUN_START, run_id)
        return run_id

    def _tell_run(self, kind: str, run_id: str) -> None:
        if not self.observers:
            return
        rows = self._read(sa.select(runs_t).where(runs_t.c.id == run_id))
        if rows:
            self._tell({"record": RECORD_RUN, "kind": kind, "run": _run_dict(rows[0])})

    def resume_run(self, run_id: str) -> None:
        """This process takes over an ended or dead run to continue it (`--resume`): the run is
        "running" again under this process's pid, token and lease (compare-and-swap on its
        version), so status, stop and a second resume see who holds it; who started it stays."""
        for _ in range(5):
            rows = self._read(sa.select(runs_t.c.version).where(runs_t.c.id == run_id))
            version = rows[0]["version"] if rows else 0
            w = self._write(runs_t.update().where(runs_t.c.id == run_id, runs_t.c.version == version).values(
                status=events.RUN_RUNNING, finished_at=None, pid=os.getpid(), process=process_token(os.getpid()),
                **leases.taken_over_by(now()), holder=self.holder, lease_until=time.time() + lease_seconds(),
                version=version + 1), ())
            if w.rowcount == 1 or not rows:
                break
        else:
            raise errors.PreconditionFailed(f"run {run_id} is being taken by another process: not resumed")
        self._hold(run_id)
        self._tell_run(RUN_RESUME, run_id)

    def _run_update(self, run_id: str, **values: Any) -> None:
        stmt = runs_t.update().where(runs_t.c.id == run_id)
        if self._holding(run_id):
            stmt = stmt.where(runs_t.c.holder == self.holder)
        elif values.get("finished_at"):
            # Finishing another process's run (recover, a continuing run): it is ours now, so
            # its old holder, should it wake up, writes nothing more as holder.
            values.update(holder=self.holder, version=runs_t.c.version + 1)
        if self._write(stmt.values(**values), ()).rowcount == 0 and run_id in self._held:
            raise self._fenced(run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {"status", "summary", "error", "dest", "source", "mode", "strategy", "finished_at"}
        cols = {k: v for k, v in fields.items() if k in allowed}
        if not cols:
            return
        self._run_update(run_id, **cols)
        self._tell_run(RUN_UPDATE, run_id)

    def finish_run(self, run_id: str, status: str, summary: Optional[str] = None,
                   error: Optional[str] = None) -> None:
        values: dict = dict(status=status, error=error, finished_at=now(), lease_until=None)
        if summary is not None:
            values["summary"] = summary
        self._run_update(run_id, **values)
        self._release(run_id)
        self._tell_run(RUN_FINISH, run_id)

    def get_run(self, run_id: str) -> Optional[dict]:
        rows = self._read(sa.select(runs_t).where(sa.or_(runs_t.c.id == run_id,
                                                         runs_t.c.id.like(run_id.replace("%", "") + "%"))))
        return _run_dict(rows[0]) if len(rows) == 1 else None

    def runs(self, limit: int = 50, server_id: Optional[str] = None, verbs: Iterable[str] = (),
             source: Optional[str] = None) -> list[dict]:
        """Newest first; only those of `verbs` and of `source` when given (chosen by the database:
        a shared journal holds every run of the team, for months)."""
        q = sa.select(runs_t).order_by(*NEWEST_FIRST).limit(limit)
        if server_id:
            q = q.where(runs_t.c.server_id == server_id)
        if verbs:
            q = q.where(runs_t.c.verb.in_(sorted(verbs)))
        if source is not None:
            q = q.where(runs_t.c.source == source)
        return [_run_dict(r) for r in self._read(q)]

    def unfinished_runs(self) -> list[dict]:
        """Runs that did not reach a final status: running (maybe killed) or interrupted."""
        q = (sa.select(runs_t).where(runs_t.c.status.not_in(list(FINAL)))
             .order_by(runs_t.c.started_at, runs_t.c.started_ns))
        return [_run_dict(r) for r in self._read(q)]

    def recent_final_runs(self, verbs: set[str], limit: int = 200) -> list[dict]:
        """The latest runs of `verbs` that ended (any final status but "recovered"), oldest
        first: a run can end "failed" and still leave a change behind (a re-enable that did
        not go through), so `recover` looks at these too."""
        q = (sa.select(runs_t).where(runs_t.c.verb.in_(sorted(verbs)), runs_t.c.status.in_(["failed", "ok"]))
             .order_by(*NEWEST_FIRST).limit(limit))
        return [_run_dict(r) for r in reversed(self._read(q))]

    def last_move(self, server_id: str) -> Optional[dict]:
        """The latest run that moved `server_id` (for `novamove back`)."""
        q = (sa.select(runs_t).where(runs_t.c.server_id == server_id, runs_t.c.verb.in_(["migrate", "back"]),
                                     runs_t.c.status == "ok", runs_t.c.source.is_not(None),
                                     runs_t.c.dest.is_not(None), runs_t.c.source != runs_t.c.dest)
             .order_by(*NEWEST_FIRST).limit(1))
        rows = self._read(q)
        return _run_dict(rows[0]) if rows else None

    # ------------------------------------------------------------------ events

    def intent(self, run_id: str, kind: str, target: Optional[str], **data: Any) -> int:
        """Announce a change before making it; returns the event id to mark done/failed."""
        return self._insert(run_id, kind, target, "intent", data)

    def note(self, run_id: str, kind: str, target: Optional[str], **data: Any) -> int:
        """Record an observation (not a change): scheduling decisions, statuses, outcomes."""
        return self._insert(run_id, kind, target, "note", data)

    def _insert(self, run_id: str, kind: str, target: Optional[str], state: str, data: dict) -> int:
        text = json.dumps(data, default=str)
        row = dict(run_id=run_id, at=now(), kind=kind, target=target, state=state, data=text)
        held = self._holding(run_id)
        if held:
            # Written only while this process is the run's holder: one statement, no row lock.
            stmt = INSERT_EVENT_FENCED_RETURNING if self.store.dialect == "postgresql" else INSERT_EVENT_FENCED
            params = dict(row, fence_run=run_id, fence_holder=self.holder)
        else:
            stmt, params = INSERT_EVENT, row
        tries = []

        @autocommit
        def insert(c: Any) -> Written:
            tries.append(1)
            if len(tries) > 1:          # the first try may have been committed (see FIND_EVENT)
                found = c.execute(FIND_EVENT, dict(row, after=self._last_event)).scalar()
                if found:
                    return Written(1, found)
            return self._written(stmt, c.execute(stmt, params))
        w = self._write(insert, ())
        if held and w.rowcount == 0:
            raise self._fenced(run_id)
        self._last_event = max(self._last_event, w.lastrowid)
        if held and state == "intent":
            self._remember(w.lastrowid, dict(row, ended_at=None))
        if self.observers:
            self._tell({"record": RECORD_EVENT, "event": Event(w.lastrowid, run_id, row["at"], kind, target, state,
                                                                 json.loads(text), None)})
        return w.lastrowid

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
        known = self._open.get(event_id)

        @autocommit
        def read_then_write(c: Any) -> tuple:
            # One connection: the read of what the change holds so far (unless this process wrote
            # it, for a run it still holds) and the (fenced) write of its outcome.
            if known is not None and self._holding(known["run_id"]):
                row = dict(known)
            else:
                rows = [dict(m) for m in c.execute(READ_EVENT, {"event_id": event_id}).mappings()]
                if not rows:
                    return None, state or "intent", 0, False
                row = rows[0]
            merged = json.loads(row["data"] or "{}")
            merged.update(data)
            new_state = state or row["state"]
            ended = row["ended_at"]
            if new_state != row["state"]:
                ended = now() if new_state in ("done", "failed") else None
            row.update(new_state=new_state, new_data=json.dumps(merged, default=str), new_ended_at=ended)
            params = {k: row[k] for k in ("new_state", "new_data", "new_ended_at")}
            params["event_id"] = event_id
            held = self._holding(row["run_id"])
            if held:
                params.update(fence_run=row["run_id"], fence_holder=self.holder)
            return row, new_state, c.execute(MARK_EVENT_FENCED if held else MARK_EVENT, params).rowcount, held

        row, state, rowcount, held = self._write(read_then_write, ())
        if row is None:
            return
        if rowcount == 0 and held:
            raise self._fenced(row["run_id"])
        self._open.pop(event_id, None)
        if held and state == "intent":
            self._remember(event_id, {k: row[k] for k in ("run_id", "at", "kind", "target")} | dict(
                state=state, data=row["new_data"], ended_at=row["new_ended_at"]))
        if state != row["state"] and self.observers:
            self._tell({"record": RECORD_EVENT, "event": Event(event_id, row["run_id"], row["at"], row["kind"],
                                                                 row["target"], state, json.loads(row["new_data"]),
                                                                 row["new_ended_at"])})

    def _remember(self, event_id: int, row: dict) -> None:
        if len(self._open) >= 10_000:         # bounded: a forgotten one is read back when marked
            self._open.clear()
        self._open[event_id] = row

    def _merge(self, event_id: int, data: dict) -> None:
        self._mark(event_id, None, data)

    def events(self, run_id: str) -> list[Event]:
        return [Event.from_row(r) for r in
                self._read(sa.select(events_t).where(events_t.c.run_id == run_id).order_by(events_t.c.id))]

    def events_of_kinds(self, kinds: Iterable[str], targets: Iterable[str] = ()) -> list[Event]:
        """Every run's events of `kinds` (on `targets` when given), in the order they were
        written: one query, chosen by the database, however many runs a shared journal holds."""
        q = sa.select(events_t).where(events_t.c.kind.in_(sorted(set(kinds)))).order_by(events_t.c.id)
        wanted = sorted(set(targets))
        if wanted:
            q = q.where(events_t.c.target.in_(wanted))
        return [Event.from_row(r) for r in self._read(q)]

    def request_ids(self, run_id: str) -> list[str]:
        """Nova's request ids of the run's changes, in order (for reports and error texts)."""
        return [e.data["request_id"] for e in self.events(run_id) if e.data.get("request_id")]
