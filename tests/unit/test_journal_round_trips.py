"""What one journaled change costs the database (issue 19, CPU per move with a MariaDB journal):
an intent and its outcome are two statements (the outcome of an intent this process wrote for a
run it holds is not read back first), and a warm pooled connection is used without a ping; one
idle for longer is pinged, and a dead one replaced before the write, not failed and retried."""

from __future__ import annotations

import logging
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from novamove.engine.journal import Journal, store

RUN = "r-trips"


def _count(journal: Journal, monkeypatch) -> dict:
    """Statements about events, and pings of pooled connections, from now on."""
    seen = {"statements": [], "pings": 0, "ends": []}

    def statement(conn, cursor, text, parameters, context, executemany):
        if "events" in text.lower():
            seen["statements"].append(text.split()[0].upper())

    def counted(real):
        def ping(dbapi_connection):
            seen["pings"] += 1
            return real(dbapi_connection)
        return ping
    for engine in (journal.store.engine, journal.store.quick):      # (a server's autocommit pool)
        if engine is None:
            continue
        sa.event.listen(engine, "before_cursor_execute", statement)
        monkeypatch.setattr(engine.dialect, "do_ping", counted(engine.dialect.do_ping), raising=False)
    if journal.store.quick is not None:
        # The driver's own COMMIT and ROLLBACK (each a round trip with PyMySQL), whoever calls them.
        raw = journal.store.quick.raw_connection()
        driver = type(raw.driver_connection)
        raw.close()
        for name in ("commit", "rollback"):
            def ended(self, _real=getattr(driver, name), _name=name.upper()):
                seen["ends"].append(_name)
                return _real(self)
            monkeypatch.setattr(driver, name, ended)
    return seen


def test_a_change_is_two_statements_without_a_ping_on_a_warm_connection(journal_url, monkeypatch):
    j = Journal(journal_url)
    j.start_run(RUN, "drain", source="c1")
    with j.change(RUN, "drain.move", "s0", dest="c2"):     # the pool is warm
        pass
    seen = _count(j, monkeypatch)
    for i in range(10):
        with j.change(RUN, "drain.move", f"s{i}", dest="c2") as change:
            change.record(request_id=f"req-{i}")
    assert seen["statements"] == ["INSERT", "UPDATE"] * 10
    assert seen["pings"] == 0
    if j.store.quick is not None and store._SKIP_AUTOCOMMIT_ROLLBACK:
        assert seen["ends"] == [], "a server's autocommit: no COMMIT nor ROLLBACK round trip"
    moves = [e for e in j.events(RUN) if e.kind == "drain.move"]
    assert [(e.state, e.data.get("request_id"), e.data["dest"]) for e in moves[1:]] == [
        ("done", f"req-{i}", "c2") for i in range(10)]
    # An intent kept open (a move in flight), then facts merged, then its outcome: all known here.
    seen["statements"].clear()
    change = j.change(RUN, "drain.move", "s10", keep_open=True, dest="c3")
    with change:
        change.record(migration_id=7)
    j._merge(change.id, {"read_back": "accepted"})
    j.failed(change.id, error="stalled")
    assert seen["statements"] == ["INSERT", "UPDATE", "UPDATE", "UPDATE"]
    last = j.events(RUN)[-1]
    assert (last.state, last.data) == ("failed", {"dest": "c3", "migration_id": 7, "read_back": "accepted",
                                                  "error": "stalled"}) and last.ended_at


def test_an_outcome_of_another_process_s_intent_is_read_first(journal_url, monkeypatch):
    """Only what this process wrote for a run it holds is known without a read."""
    theirs = Journal(journal_url)
    theirs.start_run(RUN, "drain", source="c1")
    event_id = theirs.intent(RUN, "drain.move", "s1", dest="c2")
    mine = Journal(journal_url)
    seen = _count(mine, monkeypatch)
    mine.done(event_id, found="after a kill")
    assert seen["statements"] == ["SELECT", "UPDATE"]
    assert mine.events(RUN)[0].data == {"dest": "c2", "found": "after a kill"}


def _end_connections(journal_servers, backend: str, url: str) -> int:
    """End, from the server's side, every connection to `url`'s database (a restart, a fail-over)."""
    database = make_url(url).database
    info = journal_servers.server(backend)
    admin = sa.create_engine(info["admin_url"], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        if backend == "mariadb":
            ids = [r[0] for r in c.exec_driver_sql(
                f"SELECT id FROM information_schema.processlist WHERE db = '{database}'")]
            for i in ids:
                c.exec_driver_sql(f"KILL {i}")
        else:
            ids = [r[0] for r in c.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")]
    admin.dispose()
    return len(ids)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_an_idle_connection_is_pinged_and_a_dead_one_replaced_before_the_write(journal_servers, backend,
                                                                                monkeypatch, caplog):
    monkeypatch.setattr(store, "PING_AFTER_IDLE", 0.3)
    url = journal_servers.new_database(backend)
    j = Journal(url)
    j.start_run(RUN, "drain", source="c1")
    seen = _count(j, monkeypatch)
    assert _end_connections(journal_servers, backend, url) >= 1
    time.sleep(0.5)
    with caplog.at_level(logging.WARNING):
        j.intent(RUN, "drain.move", "s1")
    assert seen["pings"] >= 1 and seen["statements"] == ["INSERT"], "pinged, found dead, replaced: one try"
    # (another test's journal, its lease renewer still at work, may warn meanwhile: not this one)
    assert not [r for r in caplog.records if "does not answer" in r.getMessage() and j.store.display in r.getMessage()]
    assert [e.target for e in j.events(RUN)] == ["s1"]


def test_a_drain_and_its_undrain_read_their_host_s_runs_not_the_whole_journal(tmp_path, monkeypatch):
    """A shared journal holds every run of the team for months: a drain's start (earlier
    drains of its host, dead runs' tags) and an undrain (what the drain moved) ask the database
    for their host's runs, not for all of them (CPU at the start of every drain, growing with
    the journal)."""
    from novamove.engine.batch import drain as drainmod
    from novamove.engine.batch.undrain import undrain
    from novamove.engine.journal.schema import runs as runs_t
    from fakenova import FakeNova
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.01)
    j = Journal(tmp_path / "j.sqlite")
    with j.store.engine.begin() as c:                  # 500 runs of others, over
        c.execute(runs_t.insert(), [dict(id=f"other{i:04d}", verb=("drain", "migrate", "maintain")[i % 3],
                                         started_at="2026-01-01T00:00:00+00:00", started_ns=i, status="ok",
                                         source=f"h{i % 50}", version=0) for i in range(500)])
    read: list[int] = []
    real = j._read

    def counted(*a, **kw):
        rows = real(*a, **kw)
        read.append(len(rows))
        return rows
    monkeypatch.setattr(j, "_read", counted)
    nova = FakeNova()
    for i in range(3):
        nova.add(f"v{i}", "c1")
    report = drainmod.drain(nova, "c1", journal=j, mode="live", poll_interval=0.01)
    assert report.ok, report.summary
    back = undrain(nova, "c1", journal=j, move_back=True, poll_interval=0.01)
    assert back.ok and sum(1 for r in back.results if r.result == "moved") == 3, back.summary
    assert max(read) < 20, f"a read of {max(read)} runs: the whole journal"
