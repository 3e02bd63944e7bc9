"""The event stream (--events): one line per journal state change, matching the journal."""

from __future__ import annotations

import json
import logging
import sqlite3

import jsonschema
import pytest
from click.testing import CliRunner

from novamove import api
from novamove.cli import main
from novamove.engine.campaign import run_campaign
from novamove.engine.journal import Journal
from novamove.observe import stream
from test_campaign import fast, fleet_with_servers, opts  # noqa: F401 -- fast: autouse fixture
from test_planner_cli import nova  # noqa: F401 -- fixture


def collect():
    lines: list[dict] = []

    def observer(record):
        lines.append(json.loads(json.dumps(stream.line(record), default=str)))
    return lines, observer


def assert_matches_journal(journal: Journal, lines: list[dict]) -> None:
    """Event for event: the stream names every journal event of the runs it saw (same ids,
    same kinds, same targets) and its last state per id is the journal's."""
    validator = jsonschema.Draft202012Validator(stream.schema(), format_checker=jsonschema.FormatChecker())
    for x in lines:
        validator.validate(x)
    runs = sorted({x["run_id"] for x in lines})
    assert runs
    for run_id in runs:
        journal_events = journal.events(run_id)
        seen = [x for x in lines if x["record"] == "event" and x["run_id"] == run_id]
        assert stream.last_states(seen) == {e.id: e.state for e in journal_events}
        last = {x["event_id"]: x for x in seen}
        assert {i: (x["kind"], x["target"]) for i, x in last.items()} == \
            {e.id: (e.kind, e.target) for e in journal_events}
        run_lines = [x for x in lines if x["record"] == "run" and x["run_id"] == run_id]
        assert run_lines[0]["kind"] == "run.start"
        assert run_lines[-1]["status"] == journal.get_run(run_id)["status"]


def test_campaign_stream_matches_journal_event_for_event(tmp_path):
    lines, observer = collect()
    journal = Journal(tmp_path / "j.sqlite", observers=[observer])
    f = fleet_with_servers()
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts(hook=None, gate=None))
    assert rep.ok, rep.summary
    assert_matches_journal(journal, lines)
    assert rep.run_id in {x["run_id"] for x in lines}
    assert len({x["run_id"] for x in lines}) > 1            # the campaign's drains are runs too
    moves = [x for x in lines if x["kind"] == "drain.move" and x["state"] == "done"]
    assert moves and all(x["ended_at"] for x in moves)
    # every line: the state changed (no line for facts merged into an unchanged state)
    pairs = [(x["event_id"], x["state"]) for x in lines if x["record"] == "event"]
    assert len(pairs) == len(set(pairs))


def test_facts_without_a_state_change_send_nothing(tmp_path):
    lines, observer = collect()
    journal = Journal(tmp_path / "j.sqlite", observers=[observer])
    journal.start_run("r1", "drain")
    ev = journal.intent("r1", "drain.move", "s1")
    journal._merge(ev, {"read_back": "accepted"})
    journal._mark(ev, "intent", {"more": 1})
    journal.failed(ev, error="x")
    journal._mark(ev, "intent", {"read_back": "accepted"})   # a provisional failure reopened
    journal.done(ev)
    journal.done(ev, late=True)
    journal.finish_run("r1", "ok")
    assert [(x["kind"], x.get("state")) for x in lines] == [
        ("run.start", None), ("drain.move", "intent"), ("drain.move", "failed"), ("drain.move", "intent"),
        ("drain.move", "done"), ("run.finish", None)]
    assert_matches_journal(journal, lines)
    assert lines[3]["ended_at"] is None and lines[4]["ended_at"]


def test_a_failing_observer_is_dropped_and_the_run_stands(tmp_path, caplog):
    lines, observer = collect()

    def broken(record):
        raise OSError("disk full")
    journal = Journal(tmp_path / "j.sqlite", observers=[broken, observer])
    with caplog.at_level(logging.WARNING, logger="novamove.engine.journal"):
        journal.start_run("r1", "drain")
        with journal.change("r1", "drain.disable", "c1"):
            pass
        journal.finish_run("r1", "ok")
    assert "disk full" in caplog.text and caplog.text.count("dropped") == 1
    assert journal.observers == [observer]
    assert journal.get_run("r1")["status"] == "ok" and journal.events("r1")[0].state == "done"
    assert len(lines) == 4


def test_old_journal_gains_ended_at_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, verb TEXT NOT NULL, started_at TEXT NOT NULL,
            finished_at TEXT, status TEXT NOT NULL, cloud TEXT, server_id TEXT, server_name TEXT,
            source TEXT, dest TEXT, mode TEXT, strategy TEXT, pid INTEGER, summary TEXT, error TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at TEXT NOT NULL,
            kind TEXT NOT NULL, target TEXT, state TEXT NOT NULL, data TEXT);
        INSERT INTO runs (id, verb, started_at, status) VALUES ('old', 'drain', '2026-01-01T00:00:00+00:00', 'ok');
        INSERT INTO events (run_id, at, kind, target, state, data)
            VALUES ('old', '2026-01-01T00:00:00+00:00', 'drain.move', 's1', 'done', '{}');
    """)
    db.commit()
    db.close()
    journal = Journal(path)
    assert journal.events("old")[0].ended_at is None          # unknown for old changes
    journal.start_run("new", "drain")
    ev = journal.intent("new", "drain.move", "s2")
    journal.done(ev)
    assert journal.events("new")[0].ended_at


def test_cli_events_to_stdout_moves_everything_else_to_stderr(nova, tmp_path):  # noqa: F811
    journal_file = tmp_path / "j.sqlite"
    result = CliRunner().invoke(
        main, ["--journal", str(journal_file), "drain", "c1", "--poll-interval", "0.2", "-f", "json",
               "--allow-unmovable", "--events", "-"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]     # nothing but the stream
    assert '"summary"' in result.stderr                               # the -f json report
    assert_matches_journal(Journal(journal_file), lines)


def test_cli_events_to_file(nova, tmp_path):  # noqa: F811
    journal_file, events_file = tmp_path / "j.sqlite", tmp_path / "ev.jsonl"
    result = CliRunner().invoke(
        main, ["--journal", str(journal_file), "drain", "c1", "--poll-interval", "0.2", "-q",
               "--allow-unmovable", "--events", str(events_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert_matches_journal(Journal(journal_file), stream.read(str(events_file)))


def test_api_takes_observers(nova, tmp_path):  # noqa: F811
    lines, observer = collect()
    rep = api.drain("c1", journal_path=str(tmp_path / "j.sqlite"), observers=[observer], poll_interval=0.2,
                    allow_unmovable=True)
    assert rep.ok
    assert_matches_journal(Journal(tmp_path / "j.sqlite"), lines)


def test_evacuation_stream_matches_journal(tmp_path):
    from novamove.engine.evacuate import evacuate
    from test_evacuate import failed_host_cloud, fast as evac_fast
    lines, observer = collect()
    journal = Journal(tmp_path / "j.sqlite", observers=[observer])
    evacuate(failed_host_cloud(), "c3", journal=journal, fenced=True, max_parallel=3, **evac_fast())
    assert_matches_journal(journal, lines)
    assert any(x["kind"] == "evacuate.server" and x["state"] == "done" for x in lines)


def test_isolate_move_stream_matches_journal(tmp_path, monkeypatch):
    from novamove.engine.single import mover
    from test_migrate_engine import FakeCloud
    monkeypatch.setattr("time.sleep", lambda s: None)
    lines, observer = collect()
    journal = Journal(tmp_path / "j.sqlite", observers=[observer])
    cloud = FakeCloud()
    cloud.boot("vm1")
    result = mover.move(cloud, journal, "vm1", "compute3", strategy="isolate", poll_interval=0)
    assert result.ok, result.summary
    assert_matches_journal(journal, lines)
    kinds = {x["kind"] for x in lines}
    assert {"service.disable", "service.enable", "server.migrate"} <= kinds
