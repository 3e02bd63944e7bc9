"""A journal write rides out a transient database fault (issue 19): a connection killed by the
server (MariaDB `KILL`, PostgreSQL pg_terminate_backend), a lost connection after the commit
went out, an SQLite file locked by another process; bounded, then one line naming
`novamove recover` (exit 6)."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from novamove import errors
from novamove.engine.journal import Journal

RUN = "r-retry"


def _kill_server_side(journal_servers, backend: str, dbapi_connection) -> None:
    """End one journal connection from the server's side, as an operator or a fail-over would."""
    info = journal_servers.server(backend)
    admin = sa.create_engine(info["admin_url"], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        if backend == "mariadb":
            c.exec_driver_sql(f"KILL {dbapi_connection.thread_id()}")
        else:
            pid = dbapi_connection.info.backend_pid
            c.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            for _ in range(100):      # the backend ends on its own signal: wait until it has
                if not c.exec_driver_sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}").first():
                    break
                time.sleep(0.02)
    admin.dispose()


def _kill_before(journal, journal_servers, backend, statement_start: str, times: int) -> list:
    """Kill the connection that is about to run a statement starting with `statement_start`,
    the first `times` times."""
    killed: list = []

    def kill(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(statement_start) and len(killed) < times:
            killed.append(statement)
            _kill_server_side(journal_servers, backend, conn.connection.dbapi_connection)
    for engine in _engines(journal):
        sa.event.listen(engine, "before_cursor_execute", kill)
    return killed


def _engines(journal) -> list:
    """The journal's pools: its transactions' and, on a server, its autocommit one."""
    store = journal.store
    return [e for e in store.__dict__.get("real_engines", (store.engine, store.quick)) if e is not None]


def _is_write(statement: str) -> bool:
    return statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")


def _intents(journal) -> list:
    return [e for e in journal.events(RUN) if e.kind == "drain.move"]


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_write_rides_out_a_connection_the_server_killed(journal_servers, backend):
    j = Journal(journal_servers.new_database(backend))
    j.start_run(RUN, "drain", source="c1")
    inserts = _kill_before(j, journal_servers, backend, "INSERT INTO EVENTS", times=1)
    with j.change(RUN, "drain.move", "s1", dest="c2"):     # its intent's connection is killed
        pass
    updates = _kill_before(j, journal_servers, backend, "UPDATE EVENTS", times=1)
    with j.change(RUN, "drain.move", "s2", dest="c2"):     # its outcome's connection is killed
        pass
    assert (len(inserts), len(updates)) == (1, 1)
    assert [(e.target, e.state) for e in _intents(j)] == [("s1", "done"), ("s2", "done")]


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_database_that_stays_away_fails_the_write_in_one_line_naming_recover(journal_servers, backend,
                                                                               monkeypatch):
    monkeypatch.setenv("NOVAMOVE_JOURNAL_PATIENCE", "0.5")
    url = journal_servers.new_database(backend)
    j = Journal(url)
    j.start_run(RUN, "drain", source="c1")
    killed = _kill_before(j, journal_servers, backend, "INSERT INTO EVENTS", times=1000)
    t = time.monotonic()
    with pytest.raises(errors.Unreachable) as caught:
        j.intent(RUN, "drain.move", "s1")
    assert time.monotonic() - t < 20 and len(killed) >= 3           # bounded, and tried more than once
    text = str(caught.value)
    assert caught.value.exit_code == errors.EXIT_UNREACHABLE and "\n" not in text
    assert "novamove recover" in text and "does not answer" in text
    assert journal_servers.server(backend)["password"] not in text


class _LostAfterCommit:
    """The journal's next `times` writes (a transaction, or a statement on a server's
    autocommit pool) are committed, then their connection lost before the answer came back: the
    writer cannot tell whether they were written. Reads go through."""

    def __init__(self, journal, times: int = 1):
        self.lost, self.times = 0, times
        store = journal.store
        real = store.__dict__.setdefault("real_engines", (store.engine, store.quick))
        for engine in real:
            if engine is not None and not sa.event.contains(engine, "before_cursor_execute", _mark_write):
                sa.event.listen(engine, "before_cursor_execute", _mark_write)
        store.engine = _Through(real[0], "begin", self)
        if real[1] is not None:
            store.quick = _Through(real[1], "connect", self)

    @contextmanager
    def around(self, opening):
        with opening as c:
            c.info.pop("wrote", None)
            yield c
            wrote = c.info.pop("wrote", False)
        if wrote and self.lost < self.times:
            self.lost += 1
            raise sa.exc.OperationalError("COMMIT", {}, _Lost(2013, "Lost connection to server during query"),
                                          connection_invalidated=True)


def _mark_write(conn, cursor, statement, parameters, context, executemany):
    if _is_write(statement):
        conn.info["wrote"] = True


class _Through:
    """An engine whose `method` (begin or connect) goes through a _LostAfterCommit."""

    def __init__(self, engine, method: str, lose: _LostAfterCommit):
        self._engine, self._method, self._lose = engine, method, lose

    def __getattr__(self, name):
        if name == self._method:
            return lambda: self._lose.around(getattr(self._engine, name)())
        return getattr(self._engine, name)


class _Lost(Exception):
    pass


def test_an_intent_committed_before_its_connection_was_lost_is_not_written_twice(journal_url):
    j = Journal(journal_url)
    j.start_run(RUN, "drain", source="c1")
    with j.change(RUN, "drain.move", "s0", dest="c2"):
        pass
    lost = _LostAfterCommit(j)
    with j.change(RUN, "drain.move", "s1", dest="c2"):      # the intent: committed, then "lost"
        pass
    assert lost.lost == 1
    lost = _LostAfterCommit(j)
    with j.change(RUN, "drain.move", "s1", dest="c2"):      # the same change again: a new intent
        pass
    assert lost.lost == 1
    assert [(e.target, e.state) for e in _intents(j)] == [("s0", "done"), ("s1", "done"), ("s1", "done")]


def test_a_run_started_before_its_connection_was_lost_starts_once(journal_url):
    j = Journal(journal_url)
    lost = _LostAfterCommit(j)
    j.start_run(RUN, "drain", source="c1")
    assert lost.lost == 1
    assert j.get_run(RUN)["status"] == "running"
    j.intent(RUN, "drain.move", "s1")                  # and it is held: fenced writes pass


def _lock_file(path, seconds: float, locked: threading.Event) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    locked.set()
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()


def test_sqlite_a_locked_file_is_waited_for_then_one_line_naming_recover(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVAMOVE_JOURNAL_PATIENCE", "3")        # busy timeout 1 s, then retries
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.start_run(RUN, "drain", source="c1")
    locked = threading.Event()
    holder = threading.Thread(target=_lock_file, args=(path, 2.0, locked))
    holder.start()
    locked.wait()
    j.intent(RUN, "drain.move", "s1")                  # waits out a 2 s lock
    holder.join()
    assert [e.target for e in _intents(j)] == ["s1"]

    monkeypatch.setenv("NOVAMOVE_JOURNAL_PATIENCE", "0.3")
    j = Journal(path)
    locked.clear()
    holder = threading.Thread(target=_lock_file, args=(path, 2.0, locked))
    holder.start()
    locked.wait()
    try:
        with pytest.raises(errors.Unreachable) as caught:
            j.note(RUN, "drain.move", "s2")
    finally:
        holder.join()
    text = str(caught.value)
    assert "\n" not in text and "novamove recover" in text and "locked" in text
    assert len(_intents(Journal(path))) == 1


# ---------------------------------------------------------------- budget slots and claims (issue 19)

def test_a_budget_slot_committed_before_its_connection_was_lost_is_taken_once(journal_url):
    """The slot's transaction (the budget's compare-and-swap and the slot) committed, the answer
    lost: tried again, the run finds its own slot, and neither takes a second one nor waits in
    line behind itself (with a budget of 1 it would wait forever)."""
    from novamove.engine.journal import budgets
    j = Journal(journal_url)
    budgets.set_budget(j, "fake", max_in_flight=1, max_per_host=None)
    j.start_run(RUN, "drain", cloud="fake")
    gate = budgets.Gate(j, RUN, "fake")
    gate.refresh()
    lost = _LostAfterCommit(j)
    assert gate.take("v1", "c2"), "the slot taken by the lost commit is this move's"
    assert lost.lost == 1
    assert [(r["run_id"], r["server_id"], r["state"]) for r in budgets.in_flight(j, "fake")] == [
        (RUN, "v1", "moving")]
    gate.release("v1")
    assert budgets.in_flight(j, "fake") == []


def test_a_place_in_line_written_before_its_connection_was_lost_is_written_once(journal_url):
    from novamove.engine.journal import budgets
    j = Journal(journal_url)
    budgets.set_budget(j, "fake", max_in_flight=1, max_per_host=None)
    for run_id in ("first", RUN):
        j.start_run(run_id, "drain", cloud="fake")
    first = budgets.Gate(j, "first", "fake")
    first.refresh()
    assert first.take("v0", "c2")
    gate = budgets.Gate(j, RUN, "fake")
    gate.refresh()
    lost = _LostAfterCommit(j)
    assert not gate.take("v1", "c2")                   # waits: its place in line, committed, "lost"
    assert lost.lost == 1
    assert [(r["run_id"], r["state"]) for r in budgets.in_flight(j, "fake")] == [
        ("first", "moving"), (RUN, "waiting")]


def test_a_claim_committed_before_its_connection_was_lost_is_taken_once_as_ours(journal_url):
    """Tried again, the claim finds its own row (this run, this process) and takes it for its
    own: no second insert bumping into it, no take-over of itself. Another run's claim is not
    taken for ours (the claim test of test_journal_backends.py)."""
    from novamove.engine.journal import claims
    from novamove.engine.journal.schema import claims as claims_t
    j = Journal(journal_url)
    j.start_run(RUN, "drain", source="c1")
    failed: list = []
    for engine in _engines(j):
        sa.event.listen(engine, "handle_error", lambda ctx: failed.append(type(ctx.original_exception)))
    lost = _LostAfterCommit(j)
    assert claims.claim(j, "host:c1", RUN) is None
    assert lost.lost == 1
    assert failed == [], "no statement failed (a duplicate insert would)"
    rows = j._read(sa.select(claims_t))
    assert [(r["name"], r["run_id"], r["holder"], r["version"]) for r in rows] == [
        ("host:c1", RUN, j.holder, 0)]
    other = Journal(journal_url)                      # another process: the claim is not its own
    other.start_run("r-other", "drain", source="c1")
    assert claims.claim(other, "host:c1", "r-other")["id"] == RUN


def _never_answers(journal) -> None:
    """The journal's database stopped answering its writes: each is lost before it is made."""
    def refuse(conn, cursor, statement, parameters, context, executemany):
        if _is_write(statement):
            raise sa.exc.OperationalError(statement[:20], {}, _Lost(2013, "Lost connection to server during query"),
                                          connection_invalidated=True)
    for engine in _engines(journal):
        sa.event.listen(engine, "before_cursor_execute", refuse)


@pytest.mark.parametrize("what", ["claim", "budget"])
def test_a_claim_or_budget_the_database_does_not_take_fails_as_unreachable(journal_url, monkeypatch, what):
    """A write the database never answers is exit 6 naming `novamove recover`: not "other runs
    keep taking it" after eight rounds of patience, nor a traceback."""
    from novamove.engine.journal import budgets, claims
    monkeypatch.setenv("NOVAMOVE_JOURNAL_PATIENCE", "0.2")
    j = Journal(journal_url)
    j.start_run(RUN, "drain", source="c1")
    _never_answers(j)
    t = time.monotonic()
    with pytest.raises(errors.Unreachable) as caught:
        if what == "claim":
            claims.claim(j, "host:c1", RUN)
        else:
            budgets.set_budget(j, "fake", max_in_flight=2, max_per_host=None)
    assert caught.value.exit_code == errors.EXIT_UNREACHABLE and "novamove recover" in str(caught.value)
    assert time.monotonic() - t < 1.5, "given up after one patience, not eight"


def test_a_take_over_committed_before_its_connection_was_lost_holds_the_run(journal_url):
    """recover (or a continuing run) takes a dead run over by compare-and-swap; its answer lost,
    the retried swap matches nothing: the run is held all the same, by this process."""
    dead = Journal(journal_url)
    dead.start_run(RUN, "drain", source="c1")
    dead._write("UPDATE runs SET process=?, machine=?, lease_until=? WHERE id=?",
                ("test-b2:4242:1", "b2", time.time() - 1, RUN))
    taker = Journal(journal_url)
    taker.holder = "taker-token"
    lost = _LostAfterCommit(taker)
    assert taker.take_over(RUN)
    assert lost.lost == 1
    taker.intent(RUN, "drain.move", "s1")              # held: its fenced writes pass
    with pytest.raises(Exception, match="taken over"):
        dead.intent(RUN, "drain.move", "s2")
