"""The journal on every backend (SQLite, MariaDB, PostgreSQL: the `journal_url` fixture of
conftest.py): its records, the holder's fencing token and lease, compare-and-swap take-overs,
migrations of old SQLite journals, and one-line errors for a bad journal."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from novamove import errors
from novamove.engine import recover as recovery
from novamove.engine.journal import Journal, leases, migrate
from novamove.engine.journal.store import Fenced, _is_conflict

from fakenova import FakeNova

ROOT = Path(__file__).resolve().parents[2]


def _as_other_machine(journal: Journal, run_id: str, lease_in: float) -> None:
    """The run was started on machine "b2" (another boot id) and its lease ends in `lease_in` s."""
    journal._write("UPDATE runs SET process=?, machine=?, holder=?, lease_until=? WHERE id=?",
                   ("test-b2:4242:1", "b2", "their-token", time.time() + lease_in, run_id))
    journal._held.discard(run_id)


def test_records_read_back_the_same_on_every_backend(journal_url):
    j = Journal(journal_url)
    seen = []
    j.observe(seen.append)
    j.start_run("run-a", "migrate", server_id="s1", server_name="vm1", source="c1", dest="c2", mode="live")
    ev = j.intent("run-a", "service.disable", "c3", service_id="x" * 10, reason="é ünïcode")
    j.done(ev, request_id="req-1")
    j.note("run-a", "scheduling", None, picked=["c2"])
    failed = j.intent("run-a", "server.migrate", "s1")
    j.failed(failed, error="boom")
    j.finish_run("run-a", "ok", summary="moved")
    j.start_run("run-b", "drain", source="c1")
    evs = j.events("run-a")
    assert [(e.kind, e.state) for e in evs] == [("service.disable", "done"), ("scheduling", "note"),
                                                ("server.migrate", "failed")]
    assert evs[0].data == {"service_id": "xxxxxxxxxx", "reason": "é ünïcode", "request_id": "req-1"}
    assert evs[0].ended_at and evs[1].ended_at is None
    assert [r["id"] for r in j.runs()] == ["run-b", "run-a"]          # newest first, same second
    assert j.get_run("run-a")["summary"] == "moved" and j.get_run("run-") is None   # ambiguous prefix
    assert [r["id"] for r in j.unfinished_runs()] == ["run-b"]
    assert j.last_move("s1")["id"] == "run-a" and j.request_ids("run-a") == ["req-1"]
    assert [r["kind"] for r in seen if r["record"] == "run"] == ["run.start", "run.finish", "run.start"]
    # every run's events of some kinds (on some targets), in the order written: one query
    j.intent("run-b", "service.disable", "c1")
    assert [(e.run_id, e.target) for e in j.events_of_kinds(["service.disable"])] == [("run-a", "c3"), ("run-b", "c1")]
    assert [e.run_id for e in j.events_of_kinds(["service.disable", "scheduling"], targets=["c1"])] == ["run-b"]
    assert [(r["event"].kind, r["event"].state) for r in seen if r["record"] == "event"][:2] == [
        ("service.disable", "intent"), ("service.disable", "done")]
    run = j.get_run("run-b")
    assert run["user_name"] and run["machine"] and run["command"] and run["lease_until"] > time.time()
    assert "holder" not in run and "version" not in run
    with pytest.raises(errors.NovamoveError):
        j.start_run("run-b", "drain")                       # a run id is taken once


def test_a_run_taken_over_can_no_longer_write_as_its_holder(journal_url):
    mine = Journal(journal_url)
    mine.start_run("r1", "migrate")
    ev = mine.intent("r1", "service.disable", "c1")
    theirs = Journal(journal_url)
    theirs.holder = "machine-b-token"
    assert not theirs.take_over("r1"), "its process lives here: not taken"
    # Seen from machine b: the run's lease expired (its process stopped renewing it).
    mine._write("UPDATE runs SET process=?, lease_until=? WHERE id=?", ("test-a:1:1", time.time() - 1, "r1"))
    assert theirs.take_over("r1")
    for write in (lambda: mine.note("r1", "x", None), lambda: mine.done(ev),
                  lambda: mine.finish_run("r1", "ok"), lambda: mine.update_run("r1", summary="s")):
        with pytest.raises(Fenced, match="taken over"):
            write()
    assert [e.state for e in theirs.events("r1")] == ["intent"]
    theirs.finish_run("r1", "recovered", summary="by b")
    assert theirs.get_run("r1")["status"] == "recovered"


def test_renewal_keeps_a_lease_and_finds_the_fence(journal_url):
    j = Journal(journal_url)
    j.start_run("r1", "drain")
    before = j.get_run("r1")["lease_until"]
    time.sleep(0.05)
    j.renew_leases()
    assert j.get_run("r1")["lease_until"] > before
    j._write("UPDATE runs SET holder=? WHERE id=?", ("someone-else", "r1"))
    j.renew_leases()                       # lost: no more writes for it
    with pytest.raises(Fenced):
        j.note("r1", "x", None)


def test_a_current_lease_elsewhere_is_waited_out_and_an_expired_one_taken_once(journal_url, monkeypatch):
    j = Journal(journal_url)
    j.start_run("r1", "migrate", server_name="vm1")
    _as_other_machine(j, "r1", lease_in=40)
    monkeypatch.setenv(leases.MACHINE_ENV, "b1")
    run = j.get_run("r1")
    assert leases.run_alive(run) and "its lease ends in" in leases.still_running(run)
    reports = recovery.recover(FakeNova(), j)
    assert "b2" in reports[0]["summary"] and "lease ends in 4" in reports[0]["summary"]
    assert j.get_run("r1")["status"] == "running"
    _as_other_machine(j, "r1", lease_in=-1)
    racers = [Journal(journal_url) for _ in range(4)]
    for i, r in enumerate(racers):
        r.holder = f"racer-{i}"
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda r=r: wins.append(r.take_over("r1"))) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True], "compare-and-swap: one winner"


OLD_TODAY = """
CREATE TABLE runs (id TEXT PRIMARY KEY, verb TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL, cloud TEXT, server_id TEXT, server_name TEXT, source TEXT, dest TEXT, mode TEXT,
    strategy TEXT, pid INTEGER, process TEXT, summary TEXT, error TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    at TEXT NOT NULL, kind TEXT NOT NULL, target TEXT, state TEXT NOT NULL, data TEXT, ended_at TEXT);
CREATE INDEX events_run ON events(run_id);
"""
OLD_BEFORE_PROCESS = """
CREATE TABLE runs (id TEXT PRIMARY KEY, verb TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL, cloud TEXT, server_id TEXT, server_name TEXT, source TEXT, dest TEXT, mode TEXT,
    strategy TEXT, pid INTEGER, summary TEXT, error TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    at TEXT NOT NULL, kind TEXT NOT NULL, target TEXT, state TEXT NOT NULL, data TEXT);
CREATE INDEX events_run ON events(run_id);
"""


@pytest.mark.parametrize("schema", [OLD_TODAY, OLD_BEFORE_PROCESS], ids=["main", "before-process"])
def test_an_old_sqlite_journal_is_upgraded_in_place_and_recover_reads_its_runs(tmp_path, schema):
    from novamove.engine.tags import tagged_reason
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(schema)
    db.executescript("""
        INSERT INTO runs (id, verb, started_at, status, pid, server_name, source, dest)
            VALUES ('deadbeef0001', 'migrate', '2026-01-01T00:00:00+00:00', 'running', 4194999, 'vm1', 'c1', 'c2');
        INSERT INTO runs (id, verb, started_at, status) VALUES ('old2', 'drain', '2026-01-01T00:00:00+00:00', 'ok');
        INSERT INTO events (run_id, at, kind, target, state, data) VALUES ('deadbeef0001',
            '2026-01-01T00:00:00+00:00', 'service.disable', 'c1', 'done', '{"service_id": "svc-c1"}');
    """)
    db.commit()
    db.close()
    journal = Journal(path)
    assert migrate.current(journal.store) == migrate.HEAD
    assert [r["id"] for r in journal.runs()] == ["old2", "deadbeef0001"]   # same second: insertion order
    cloud = FakeNova()
    cloud.disable_service(cloud.services["c1"], tagged_reason("deadbeef0001", None))
    reports = recovery.recover(cloud, journal)
    assert reports[0]["services_enabled"] == ["c1"] and cloud.services["c1"].enabled
    assert journal.get_run("deadbeef0001")["status"] == "recovered"
    Journal(path)                         # opened again: at HEAD, nothing to do


def test_head_is_the_last_migration():
    from alembic.script import ScriptDirectory
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == migrate.HEAD


def test_the_migrations_build_the_schema_the_journal_writes(journal_url):
    from novamove.engine.journal.schema import metadata
    j = Journal(journal_url)
    inspector = sa.inspect(j.store.engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}


def test_write_conflicts_are_retried_other_errors_are_one_line(journal_url, monkeypatch):
    j = Journal(journal_url)
    calls = []

    class Deadlock(Exception):
        args = (1213, "Deadlock found when trying to get lock")
    conflict = sa.exc.OperationalError("UPDATE", {}, Deadlock())
    assert _is_conflict(conflict)

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise conflict
        return "ok"
    assert j.store.run(flaky, "test") == "ok" and len(calls) == 3


class _Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(monkeypatch, capsys):
    """`novamove ARGS` in this process (as the console script runs it), with `env` set."""
    from novamove.cli import run

    def call(args, env=None):
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            m.delenv("NOVAMOVE_JOURNAL_PASSWORD_FILE", raising=False)
            capsys.readouterr()
            try:
                run(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
            out = capsys.readouterr()
        return _Ran(code, out.out, out.err)
    return call


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_bad_journal_urls_are_one_line_with_a_documented_code_and_no_password(journal_servers, backend, cli):
    from journal_servers import url
    good = journal_servers.new_database(backend)
    info = journal_servers.server(backend)
    wrong = url(info, good.rsplit("/", 1)[1], password="Wr0ngPassw0rd")
    cases = [
        (dict(NOVAMOVE_JOURNAL=wrong), errors.EXIT_AUTH, "refused the user or password"),
        (dict(NOVAMOVE_JOURNAL=good.replace(str(info["port"]), "1")), errors.EXIT_UNREACHABLE, "does not answer"),
        (dict(NOVAMOVE_JOURNAL=journal_servers.foreign_database(backend)), errors.EXIT_PRECONDITION,
         "not a novamove journal"),
        (dict(NOVAMOVE_JOURNAL=good.replace("+", "+nosuchdriver", 1)), errors.EXIT_USAGE, "unknown database driver"),
        (dict(NOVAMOVE_JOURNAL=good.rsplit("/", 1)[0] + "/nmj_no_such_db"), errors.EXIT_NOT_FOUND, "no such database"),
    ]
    for env, code, words in cases:
        r = cli(["history"], env)
        assert (r.returncode, r.stdout) == (code, ""), r.stderr
        assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
        assert info["password"] not in r.stderr and "Wr0ngPassw0rd" not in r.stderr
    r = cli(["--journal", good, "history"])
    assert r.returncode == errors.EXIT_USAGE and "NOVAMOVE_JOURNAL" in r.stderr and info["password"] not in r.stderr


def test_the_password_comes_from_the_environment_or_a_file_never_argv(journal_servers, tmp_path, cli):
    good = journal_servers.new_database("mariadb")
    password = journal_servers.server("mariadb")["password"]
    bare = good.replace(f":{password}@", "@")
    pwfile = tmp_path / "pw"
    pwfile.write_text(password + "\n")
    r = cli(["--journal", bare, "--journal-password-file", str(pwfile), "history"])
    assert r.returncode == 0, r.stderr
    r = cli(["history", "-f", "json"], dict(NOVAMOVE_JOURNAL=good))
    assert r.returncode == 0, r.stderr
    j = Journal(good)
    j.start_run("r1", "migrate")
    assert password not in str(j.runs()) and password not in j.path


def test_the_command_line_is_kept_without_its_secrets():
    line = leases.command_line(["/usr/bin/novamove", "--os-password", "pw1", "--journal",
                                "mysql+pymysql://u:pw2@db/j", "--token=pw3", "--journal-password-file", "/f",
                                "drain", "c1"])
    assert "pw1" not in line and "pw2" not in line and "pw3" not in line
    assert line.startswith("novamove ") and "drain c1" in line and "/f" in line


WRITER = textwrap.dedent("""
    import sys, time
    from novamove.engine.journal import Journal
    from novamove.engine.journal.store import Fenced
    j = Journal(sys.argv[1])
    j.start_run("paused", "migrate", server_name="vm1", source="c1", dest="c2")
    print("started", flush=True)
    try:
        while True:
            j.note("paused", "tick", None)
            time.sleep(0.1)
    except Fenced as exc:
        print("fenced:", exc, flush=True)
        sys.exit(4)
""")


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_paused_holder_is_left_alone_while_its_lease_holds_then_fenced(journal_servers, backend, monkeypatch):
    """Two writers, one run: a process stopped (SIGSTOP) past its lease is taken over from
    another machine; woken up, it writes nothing more as the holder. (Database servers only:
    an SQLite journal is one machine's, and a process stopped inside a write holds its lock.)"""
    journal_url = journal_servers.new_database(backend)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOVAMOVE_JOURNAL_LEASE="3", NOVAMOVE_TEST_MACHINE="a1")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, journal_url], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        monkeypatch.setenv(leases.MACHINE_ENV, "b1")
        j = Journal(journal_url)
        j.holder = "machine-b"
        os.kill(proc.pid, signal.SIGSTOP)
        assert not j.take_over("paused"), "paused, its lease still holds: left alone"
        assert "lease ends in" in recovery.recover(FakeNova(), j)[0]["summary"]
        deadline = time.monotonic() + 10
        while leases.run_alive(j.get_run("paused")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert j.take_over("paused")
        ticks = len(j.events("paused"))
        os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 4 and "taken over by" in out
        assert len(j.events("paused")) == ticks, "not one write after the take-over"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ansible_refuses_an_inline_password_and_masks_one_from_the_environment(monkeypatch, capsys, tmp_path):
    pytest.importorskip("ansible")
    import json
    from ansible_args import patch_module_args
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ansible_collections.novamove.openstack.plugins.modules import instance_migrate

    def run(args):
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            instance_migrate.main()
        return exited.value.code, capsys.readouterr().out

    code, out = run({"server": "vm1", "host": "c2", "journal": "mysql+pymysql://u:S3cretPw@db/j"})
    result = json.loads(out)
    assert code != 0 and result["exit_code"] == 2 and "NOVAMOVE_JOURNAL" in result["msg"]
    assert "S3cretPw" not in out
    monkeypatch.setenv("NOVAMOVE_JOURNAL", "mysql+pymysql://u:S3cretPw@127.0.0.1:1/j")
    code, out = run({"server": "vm1", "host": "c2", "cloud": "nosuchcloud"})
    assert code != 0 and "S3cretPw" not in out


def test_a_hook_never_sees_the_journal_password():
    from novamove.engine.commands import command_env
    env = command_env({}, {"NOVAMOVE_JOURNAL": "postgresql+psycopg://u:pw9@db/j", "PATH": "/bin"})
    assert "NOVAMOVE_JOURNAL" not in env and env["PATH"] == "/bin"
    env = command_env({}, {"NOVAMOVE_JOURNAL": "postgresql+psycopg://u@db/j", "NOVAMOVE_JOURNAL_PASSWORD_FILE": "/f"})
    assert env == {"NOVAMOVE_JOURNAL": "postgresql+psycopg://u@db/j", "NOVAMOVE_JOURNAL_PASSWORD_FILE": "/f"}


def test_a_claim_is_taken_once_and_from_a_dead_run_only(journal_url):
    from novamove.engine.journal import claims
    j = Journal(journal_url)
    j.start_run("d1", "drain", source="c1")
    assert claims.claim(j, "host:c1", "d1") is None and claims.claim(j, "host:c1", "d1") is None
    j.start_run("d2", "drain", source="c1")
    assert claims.claim(j, "host:c1", "d2")["id"] == "d1", "d1 lives: its claim holds"
    j.finish_run("d1", "failed")
    assert claims.claim(j, "host:c1", "d2") is None and claims.holder(j, "host:c1") == "d2"
    claims.release(j, "host:c1", "d1")                      # not d1's any more: nothing happens
    assert claims.holder(j, "host:c1") == "d2"
    claims.release(j, "host:c1", "d2")
    assert claims.holder(j, "host:c1") is None
