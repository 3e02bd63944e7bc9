"""A campaign started on machine A and resumed on machine B (`maintain --resume`, issue 19):
the run keeps who started it (user@machine, command line without secrets) and records who took
it over and when, on every backend (the `journal_url` fixture); `history` and `campaign status`
show both. Also the migration that added the take-over's columns, from the previous head."""

from __future__ import annotations

import json
import sys

import pytest
import sqlalchemy as sa

from novamove import api
from novamove.cli import run as cli_run
from novamove.engine import campaign as camp
from novamove.engine.batch import drain as drainmod
from novamove.engine.campaign import Options, run_campaign
from novamove.engine.journal import Journal, leases, migrate
from novamove.engine.journal.store import open_store

from fakenova import FakeNova

START = ["novamove", "maintain", "c3", "c2", "--hook", "./patch.sh", "--os-password", "s3cret"]
RESUME = ["novamove", "maintain", "--resume"]


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(camp.common, "POLL", 0.01)
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.01)


def _cli(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exc:
        cli_run(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    return out.out


def _on_machine(monkeypatch, machine: str, argv: list[str]) -> None:
    monkeypatch.setenv(leases.MACHINE_ENV, machine)
    monkeypatch.setattr(sys, "argv", argv)


def test_a_campaign_resumed_on_b_keeps_who_started_it_on_a(journal_url, tmp_path, monkeypatch, capsys):
    f = FakeNova()
    f.add("b0", "c2")
    f.add("d0", "c3")
    flag = tmp_path / "broken"
    flag.write_text("x")
    options = Options(hook=f'test "$NOVAMOVE_HOST" != c2 || test ! -e {flag}', max_hosts=1, poll_interval=0.01,
                      gate_timeout=5, gate="heartbeat", order="given")
    _on_machine(monkeypatch, "bastion-a", START)
    rep = run_campaign(f, Journal(journal_url), ["c3", "c2"], options=options)
    assert not rep.ok                                   # c2's hook failed: left for --resume
    flag.unlink()
    _on_machine(monkeypatch, "bastion-b", RESUME + [rep.run_id])
    journal = Journal(journal_url)
    rep2 = run_campaign(f, journal, resume=rep.run_id)
    assert rep2.ok, rep2.summary

    me = leases.user_name()
    run = journal.get_run(rep.run_id)
    assert (run["user_name"], run["machine"]) == (me, "bastion-a"), "who started it stays"
    assert run["command"] == "novamove maintain c3 c2 --hook ./patch.sh --os-password ***"
    assert (run["taken_over_user"], run["taken_over_machine"]) == (me, "bastion-b")
    assert run["taken_over_command"] == f"novamove maintain --resume {rep.run_id}" and run["taken_over_at"]
    assert run["taken_over_at"] >= run["started_at"]
    # Its holder is B's process: here on B its pid means something, and messages name B.
    assert leases.on_this_machine(run) and leases.holder_text(run).startswith(f"{me}@bastion-b ")

    monkeypatch.setenv("NOVAMOVE_JOURNAL", journal_url)   # (a URL with its password: not on argv)
    history = json.loads(_cli(capsys, "history", "-f", "json"))
    assert [(h["machine"], h["taken_over_machine"]) for h in history if h["id"] == rep.run_id] == [
        ("bastion-a", "bastion-b")]
    assert "s3cret" not in json.dumps(history)
    out = _cli(capsys, "history", "-f", "value", "-c", "id", "-c", "machine", "-c", "taken_over_machine",
               "-c", "taken_over_at")
    assert [rep.run_id, "bastion-a", "bastion-b", run["taken_over_at"]] in [line.split() for line in out.splitlines()]

    [status] = api.campaign_status(rep.run_id)
    assert status["started_by"] == f"{me}@bastion-a" and status["taken_over_by"] == f"{me}@bastion-b"
    assert status["taken_over_at"] == run["taken_over_at"] and "***" in status["command"]
    header = _cli(capsys, "campaign", "status", rep.run_id).splitlines()[0]
    assert f"by {me}@bastion-a; taken over by {me}@bastion-b at {run['taken_over_at']}" in header
    listing = _cli(capsys, "campaign", "status", "-f", "json")
    assert json.loads(listing)[0]["started_by"] == f"{me}@bastion-a"
    table = _cli(capsys, "campaign", "status")
    assert f"{me}@bastion-a" in table and f"{me}@bastion-b" in table


def test_a_campaign_never_taken_over_shows_only_who_started_it(journal_url, monkeypatch):
    _on_machine(monkeypatch, "bastion-a", START)
    journal = Journal(journal_url)
    journal.start_run("m1", "maintain")
    journal.finish_run("m1", "ok")
    [status] = camp.status(journal, "m1")
    assert status["started_by"].endswith("@bastion-a") and status["taken_over_by"] is None
    assert journal.get_run("m1")["taken_over_at"] is None


def test_the_take_over_migration_upgrades_a_journal_at_the_previous_head(journal_url):
    """A journal at nm0005 (its runs written before the take-over columns) is upgraded in
    place by opening it: its runs read back, the new columns empty, and a resume fills them."""
    store = open_store(journal_url)
    migrate.upgrade(store, "nm0005")
    assert migrate.current(store) == "nm0005"
    with store.engine.begin() as c:
        c.execute(sa.text("INSERT INTO runs (id, verb, started_at, status, user_name, machine, command, version) "
                          "VALUES ('old1', 'maintain', '2026-01-01T00:00:00+00:00', 'failed', 'alice', "
                          "'bastion-a', 'novamove maintain c1', 0)"))
        columns = {col["name"] for col in sa.inspect(c).get_columns("runs")}
    assert "taken_over_machine" not in columns
    store.engine.dispose()
    journal = Journal(journal_url)
    assert migrate.current(journal.store) == migrate.HEAD == "nm0006"
    run = journal.get_run("old1")
    assert (run["machine"], run["command"], run["taken_over_machine"], run["taken_over_at"]) == (
        "bastion-a", "novamove maintain c1", None, None)
    journal.resume_run("old1")
    run = journal.get_run("old1")
    assert run["machine"] == "bastion-a" and run["taken_over_machine"] == leases.machine_name()
