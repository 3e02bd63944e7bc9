"""CPU and wall time of one journaled change (its intent, then done), in this process, against a
baseline measured in the same run: the same statements through the bare database driver.

    .venv/bin/python bench/journal_cost.py [-n CHANGES] [--url URL ...] [--servers]

SQLite always (a file in a temporary directory); `--url` adds a MariaDB/PostgreSQL journal
(an empty database of its own), `--servers` starts the unit tests' loopback MariaDB and
PostgreSQL (tests/unit/journal_servers.py) and measures both.

The baseline writes what the journal writes for a change held by its run: the fenced intent
(INSERT .. SELECT .. WHERE holder = token), a read of the event, the fenced UPDATE to done,
each committed on its own (autocommit). On SQLite it opens a connection per statement, as the
raw-sqlite3 journal before the shared journal did (d113643), and runs with SQLite's defaults
(rollback journal, synchronous=FULL); the journal's own pragmas are printed beside it.
CPU is process_time (this process only: a server's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from novamove.engine.journal import Journal  # noqa: E402

RUN = "bench"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def journal_loop(journal: Journal, n: int) -> Callable[[int], None]:
    journal.start_run(RUN, "drain", source="c1")

    def one(i: int) -> None:
        with journal.change(RUN, "drain.move", f"server-{i}", source="c1", dest="c2") as change:
            change.record(request_id=f"req-{i}")
    return one


INTENT = ("INSERT INTO events (run_id, at, kind, target, state, data) SELECT {p}, {p}, {p}, {p}, {p}, {p} "
          "FROM runs WHERE runs.id = {p} AND runs.holder = {p}")
READ = "SELECT id, run_id, state, data, ended_at FROM events WHERE id = {p}"
DONE = ("UPDATE events SET state = {p}, data = {p}, ended_at = {p} WHERE events.id = {p} AND EXISTS "
        "(SELECT 1 FROM runs WHERE runs.id = {p} AND runs.holder = {p})")


def sqlite_baseline(path: Path) -> Callable[[int], None]:
    """The raw-sqlite3 journal's way: a connection per statement, autocommit, SQLite defaults."""
    journal = Journal(path)            # only to create the schema and the run row
    journal.start_run(RUN, "drain", source="c1")
    holder = journal.holder
    intent, read, done = (s.format(p="?") for s in (INTENT, READ, DONE))

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(str(path), timeout=30, isolation_level=None)

    def one(i: int) -> None:
        data = json.dumps({"source": "c1", "dest": "c2"})
        with closing(connect()) as db:
            event_id = db.execute(intent, (RUN, _now(), "drain.move", f"server-{i}", "intent", data,
                                           RUN, holder)).lastrowid
        with closing(connect()) as db:
            row = db.execute(read, (event_id,)).fetchone()
        merged = json.loads(row[3]); merged["request_id"] = f"req-{i}"
        with closing(connect()) as db:
            db.execute(done, ("done", json.dumps(merged), _now(), event_id, RUN, holder))
    return one


def server_baseline(journal: Journal) -> Callable[[int], None]:
    """The same statements through the bare driver on one connection (pymysql / psycopg)."""
    journal.start_run(RUN + "-raw", "drain", source="c1")
    holder, run = journal.holder, RUN + "-raw"
    pg = journal.store.dialect == "postgresql"
    intent, read, done = (s.format(p="%s") for s in (INTENT, READ, DONE))
    if pg:
        intent += " RETURNING id"
    raw = journal.store.engine.raw_connection().dbapi_connection
    if pg:
        raw.autocommit = True
    else:
        raw.autocommit(True)

    def one(i: int) -> None:
        data = json.dumps({"source": "c1", "dest": "c2"})
        cur = raw.cursor()
        cur.execute(intent, (run, _now(), "drain.move", f"server-{i}", "intent", data, run, holder))
        event_id = cur.fetchone()[0] if pg else cur.lastrowid
        cur.execute(read, (event_id,))
        row = cur.fetchone()
        merged = json.loads(row[3]); merged["request_id"] = f"req-{i}"
        cur.execute(done, ("done", json.dumps(merged), _now(), event_id, run, holder))
        cur.close()
    return one


def measure(one: Callable[[int], None], n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per change over n changes (after 10 not counted: imports, caches)."""
    for i in range(10):
        one(-1 - i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        one(i)
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def compare(mine: Callable[[int], None], base: Callable[[int], None], n: int, rounds: int) -> tuple:
    """Journal and baseline in turn, `rounds` times (a busy machine slows both alike): the
    median round of each, (CPU, wall, base CPU, base wall)."""
    ours, theirs = [], []
    for r in range(rounds):
        theirs.append(measure(lambda i: base(r * 100000 + i), n))
        ours.append(measure(lambda i: mine(r * 100000 + i), n))
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    return med(ours, 0), med(ours, 1), med(theirs, 0), med(theirs, 1)


def pragmas(journal: Journal) -> str:
    with journal.store.engine.connect() as c:
        mode = c.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = c.exec_driver_sql("PRAGMA synchronous").scalar()
    return f"journal_mode={mode} synchronous={ {0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA'}.get(sync, sync)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="changes per measurement (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, in turn (median shown)")
    parser.add_argument("--url", action="append", default=[], help="a MariaDB/PostgreSQL journal URL (empty DB)")
    parser.add_argument("--servers", action="store_true", help="start the unit tests' MariaDB and PostgreSQL")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        servers = None
        urls = list(args.url)
        if args.servers:
            from journal_servers import Servers
            servers = Servers(Path(tmp) / "servers")
            servers.enter()
            urls += [servers.new_database("mariadb"), servers.new_database("postgresql")]
        try:
            journal = Journal(Path(tmp) / "j.sqlite")
            got = compare(journal_loop(journal, args.n), sqlite_baseline(Path(tmp) / "raw.sqlite"),
                          args.n, args.rounds)
            rows.append((f"sqlite ({pragmas(journal)})", *got))
            for url in urls:
                journal = Journal(url)
                got = compare(journal_loop(journal, args.n), server_baseline(journal), args.n, args.rounds)
                rows.append((journal.store.dialect, *got))
        finally:
            if servers is not None:
                servers.leave()
    print(f"{args.n} changes (intent + done) x {args.rounds} rounds each (median round); ms per change; baseline = the same statements, bare driver")
    print(f"{'backend':<52} {'CPU':>6} {'wall':>7} {'base CPU':>9} {'base wall':>10} {'CPU x':>6} {'wall x':>7}")
    for name, cpu, wall, bcpu, bwall in rows:
        print(f"{name:<52} {cpu:>6.2f} {wall:>7.2f} {bcpu:>9.2f} {bwall:>10.2f} {cpu / bcpu:>6.2f} {wall / bwall:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
