"""The cloud_rebalance Ansible module, in-process over the real library against the fake Nova:
check mode returns the plan and its figures and changes nothing; a run moves and reads back;
bad options fail with one line before anything is read."""

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

from ansible_collections.novamove.openstack.plugins.modules import cloud_rebalance  # noqa: E402
from tests.unit.test_rebalance_verb import unbalanced  # noqa: E402
from tests.unit.test_planner_drain import Clock  # noqa: E402


@pytest.fixture
def nova(monkeypatch, tmp_path):
    from novamove import api
    from novamove.engine.batch import rebalance as engine
    fake = unbalanced()
    fake.close = lambda: None
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **kw: fake)
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))
    monkeypatch.delenv("NOVAMOVE_FAULT", raising=False)

    class FastRunner(engine.BatchRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "BatchRunner", FastRunner)
    return fake


def run(args, capsys):
    with patch_module_args({"cloud": "mycloud", **args}), pytest.raises(SystemExit) as exited:
        cloud_rebalance.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


def test_check_mode_is_the_plan_with_its_figures_and_changes_nothing(nova, capsys):
    failed, res = run({"_ansible_check_mode": True}, capsys)
    assert not failed and res["changed"] is True and res["run_id"] is None and res["read_back"] is None
    assert res["before"]["max_usage"] == 87.5 and res["predicted"]["max_usage"] < 87.5
    assert res["plan"]["kind"] == "rebalance" and res["results"] and nova.migrations == []


def test_spread_moves_reads_back_then_a_second_run_changes_nothing(nova, capsys):
    failed, res = run({}, capsys)
    assert not failed and res["changed"] and res["read_back"]["max_usage"] <= res["predicted"]["max_usage"]
    assert all(r["result"] == "moved" for r in res["results"])
    failed, res = run({}, capsys)
    assert not failed and not res["changed"] and res["results"] == []


@pytest.mark.parametrize("args, says", [({"max_moves": 0}, "--max-moves must be"),
                                        ({"min_gain": -1.0}, "--min-gain must be"),
                                        ({"hosts": ["c9", "c1"]}, "no compute host 'c9'")])
def test_bad_options_fail_with_one_line_and_change_nothing(nova, capsys, args, says):
    failed, res = run(args, capsys)
    assert failed and says in res["msg"] and "\n" not in res["msg"] and nova.migrations == []
