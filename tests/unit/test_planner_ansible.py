"""The host_drain Ansible module, run in-process against the in-memory Nova."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("ansible")

from ansible_args import patch_module_args  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ansible_collections.novamove.openstack.plugins.modules import host_drain  # noqa: E402
from novamove import cloud as novamove_cloud  # noqa: E402
from novamove.engine.batch import drain as engine  # noqa: E402
from test_planner_drain import Clock, typical_cloud  # noqa: E402


@pytest.fixture
def nova(monkeypatch):
    fake = typical_cloud()
    fake.close = lambda: None
    # The module goes through novamove.api, which connects with novamove.cloud.connect.
    monkeypatch.setattr(novamove_cloud, "connect", lambda *a, **kw: fake)

    class FastRunner(engine.BatchRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "BatchRunner", FastRunner)
    return fake


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        host_drain.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


def test_check_mode_plans_and_changes_nothing(nova, tmp_path, capsys):
    failed, res = run({"host": "c1", "journal": str(tmp_path / "j"), "_ansible_check_mode": True}, capsys)
    assert not failed and res["changed"] and nova.migrations == []
    assert len(res["plan"]["steps"]) == 11 and nova.services["c1"].status == "enabled"


def test_drain_then_idempotent_then_undrain_move_back(nova, tmp_path, capsys):
    args = {"host": "c1", "journal": str(tmp_path / "j"), "reason": "kernel", "allow_unmovable": True}
    failed, res = run(args, capsys)
    assert not failed and res["changed"]
    assert res["summary"] == "drain c1: 10 moved, 1 skipped, 1 still on c1 (vm-err)"
    assert [(x["server_name"], x["accepted"]) for x in res["left"]] == [("vm-err", True)]
    failed, res = run(args, capsys)
    assert not failed and not res["changed"]
    failed, res = run(dict(args, state="undrained", move_back=True), capsys)
    assert not failed and res["changed"] and nova.services["c1"].status == "enabled"
    assert sum(r["result"] == "moved" for r in res["results"]) == 10


def test_a_failed_move_fails_the_task(nova, tmp_path, capsys):
    nova.fail_servers = {"v0"}
    failed, res = run({"host": "c1", "journal": str(tmp_path / "j")}, capsys)
    assert failed and "1 failed" in res["msg"]


def test_library_errors_are_one_line(nova, tmp_path, capsys):
    failed, res = run({"host": "nope", "journal": str(tmp_path / "j")}, capsys)
    assert failed and "no compute host 'nope'" in res["msg"] and res["exit_code"] == 3


def test_a_server_left_on_the_host_fails_the_task_unless_allowed(nova, tmp_path, capsys):
    failed, res = run({"host": "c1", "journal": str(tmp_path / "j")}, capsys)
    assert failed and res["exit_code"] == 8 and "1 still on c1 (vm-err)" in res["msg"]
    assert [x["server_name"] for x in res["left"]] == ["vm-err"]
