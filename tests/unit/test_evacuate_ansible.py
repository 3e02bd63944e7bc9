"""The host_evacuate Ansible module, run in-process against the in-memory Nova of test_evacuate."""

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

from ansible_collections.novamove.openstack.plugins.modules import host_evacuate  # noqa: E402
from novamove.engine.evacuate import flow as engine  # noqa: E402  (where the flow finds its runner)
from test_evacuate import EVACUABLE, Clock, failed_host_cloud  # noqa: E402


@pytest.fixture
def nova(monkeypatch):
    import novamove.cloud
    fake = failed_host_cloud()
    fake.close = lambda: None
    monkeypatch.setattr(novamove.cloud, "connect", lambda *a, **kw: fake)

    class FastRunner(engine.EvacuationRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "EvacuationRunner", FastRunner)
    return fake


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        host_evacuate.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


def test_check_mode_plans_and_changes_nothing(nova, tmp_path, capsys):
    failed, res = run({"host": "c3", "journal": str(tmp_path / "j"), "fenced": True, "_ansible_check_mode": True},
                      capsys)
    assert not failed and res["changed"] and nova.records == []
    assert sum(r["result"] == "planned" for r in res["results"]) == len(EVACUABLE)
    assert not nova.services["c3"].forced_down and res["plan"]["steps"]


def test_evacuate_reports_what_stays_down_and_fails_the_task(nova, tmp_path, capsys):
    failed, res = run({"host": "c3", "journal": str(tmp_path / "j"), "fenced": True, "max_parallel": 3}, capsys)
    # PAUSED and busy servers cannot be evacuated: the task says so and fails
    assert failed and res["changed"] and res["exit_code"] == 8
    assert res["summary"].startswith("evacuate c3: 8 evacuated, 1 skipped, 2 not-evacuated")
    assert all(nova.servers[s].host != "c3" for s in EVACUABLE)


def test_refusal_is_a_one_line_failure_and_changes_nothing(nova, tmp_path, capsys):
    nova.services["c3"] = nova.services["c3"].__class__(id="svc-c3", host="c3", zone="nova")   # up again
    failed, res = run({"host": "c3", "journal": str(tmp_path / "j")}, capsys)
    assert failed and "not fenced" in res["msg"] and res["exit_code"] == 4
    assert nova.records == []


def test_fence_cmd_and_fenced_are_exclusive(nova, tmp_path, capsys):
    failed, res = run({"host": "c3", "fenced": True, "fence_cmd": "true"}, capsys)
    assert failed and "mutually exclusive" in res["msg"]
