"""`novamove drain/undrain/plan drain/apply` through click, against the in-memory Nova."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from novamove import api
from novamove.cli import main
from fakenova import FakeNova
from test_planner_drain import Clock, typical_cloud


@pytest.fixture
def nova(monkeypatch):
    fake = typical_cloud()
    fake.close = lambda: None
    # The CLI goes through novamove.api, which connects through novamove.cloud.connect.
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **k: fake)
    # Instant polling on a fake clock: the in-memory Nova moves one step per listing.
    import novamove.engine.batch.drain as engine

    class FastRunner(engine.BatchRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "BatchRunner", FastRunner)
    return fake


def run(tmp_path, *args):
    return CliRunner().invoke(main, ["--journal", str(tmp_path / "j.sqlite"), *args], catch_exceptions=False)


def test_dry_run_table_shows_plan_and_checks_and_changes_nothing(nova, tmp_path):
    out = run(tmp_path, "drain", "c1", "--dry-run")
    assert out.exit_code == 0, out.output
    assert "drain plan for c1" in out.output and "pre-checks" in out.output
    assert "skipped" in out.output and "ERROR" in out.output
    assert nova.migrations == [] and nova.services["c1"].status == "enabled"


def test_drain_json_then_undrain_move_back(nova, tmp_path):
    # vm-err (ERROR) cannot move: --allow-unmovable accepts it staying (else exit 8).
    out = run(tmp_path, "drain", "c1", "--max-parallel", "2", "--poll-interval", "0.2", "-q", "-f", "json",
              "--allow-unmovable")
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert rep["summary"].startswith("drain c1: 10 moved, 1 skipped") and rep["ok"]
    out = run(tmp_path, "undrain", "c1", "--move-back", "-q", "-f", "yaml", "--poll-interval", "0.2")
    assert out.exit_code == 0, out.output
    assert "moved" in out.output and nova.services["c1"].status == "enabled"


def test_plan_to_file_then_apply(nova, tmp_path):
    path = tmp_path / "plan.json"
    out = run(tmp_path, "plan", "drain", "c1", "-o", str(path))
    assert out.exit_code == 0 and "plan written" in out.output
    assert json.loads(path.read_text())["format"] == "novamove-plan/1"
    assert nova.migrations == []
    out = run(tmp_path, "apply", str(path), "-q", "--poll-interval", "0.2", "--allow-unmovable")
    assert out.exit_code == 0, out.output
    assert "10 moved" in out.output


def test_failed_move_exits_1(nova, tmp_path):
    nova.fail_servers = {"v0"}
    out = run(tmp_path, "drain", "c1", "-q", "--poll-interval", "0.2")
    assert out.exit_code == 1 and "failed" in out.output


def console(monkeypatch, capsys, *args):
    """`novamove ARGS` through the console entry point (cli.run), as a user runs it: its exit
    code and its stderr, with the one-line error mapping applied."""
    import sys
    from novamove import cli
    monkeypatch.setattr(sys, "argv", ["novamove", *args])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    return exited.value.code, capsys.readouterr().err


def test_apply_of_a_bad_file_is_a_usage_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.json").write_text("{}")
    code, err = console(monkeypatch, capsys, "--journal", str(tmp_path / "j.sqlite"), "apply",
                        str(tmp_path / "bad.json"))
    assert code == 2 and "not a novamove plan" in err and err.strip().count("\n") == 0, err


def test_undrain_of_a_foreign_disabled_host_fails_with_4(nova, tmp_path, monkeypatch, capsys):
    import dataclasses
    nova.services["c2"] = dataclasses.replace(nova.services["c2"], status="disabled", disabled_reason="RMA")
    code, err = console(monkeypatch, capsys, "--journal", str(tmp_path / "j.sqlite"), "undrain", "c2")
    assert code == 4 and "someone else" in err and err.strip().count("\n") == 0, err
