"""The cloud_budget Ansible module, run in-process over the real library: set, idempotent set,
check mode, query, clear, and bad limits failing with exit code 2 before anything is written."""

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

from ansible_collections.novamove.openstack.plugins.modules import cloud_budget  # noqa: E402


@pytest.fixture(autouse=True)
def journal(monkeypatch, tmp_path):
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))


def run(args, capsys):
    with patch_module_args({"cloud": "mycloud", **args}), pytest.raises(SystemExit) as exited:
        cloud_budget.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


def test_set_is_idempotent_check_mode_changes_nothing_and_absent_clears(capsys):
    failed, res = run({"max_in_flight": 8, "max_per_host": 2, "_ansible_check_mode": True}, capsys)
    assert not failed and res["changed"] and res["budget"]["max_in_flight"] is None
    failed, res = run({"max_in_flight": 8, "max_per_host": 2}, capsys)
    assert not failed and res["changed"] and res["budget"]["cloud"] == "mycloud"
    assert (res["budget"]["max_in_flight"], res["budget"]["max_per_host"]) == (8, 2)
    failed, res = run({"max_in_flight": 8, "max_per_host": 2}, capsys)
    assert not failed and not res["changed"]
    failed, res = run({"state": "query"}, capsys)
    assert not res["changed"] and res["budget"]["max_per_host"] == 2
    failed, res = run({"state": "absent"}, capsys)
    assert not failed and res["changed"] and res["budget"]["max_in_flight"] is None
    failed, res = run({"state": "absent"}, capsys)
    assert not res["changed"]


@pytest.mark.parametrize("bad", [{"max_in_flight": 0}, {"max_per_host": -2}, {}])
def test_bad_limits_fail_with_exit_code_2_and_change_nothing(capsys, bad):
    failed, res = run(bad, capsys)
    assert failed and res["exit_code"] == 2 and res["error"] == "UsageError" and "\n" not in res["msg"]
    failed, res = run({"state": "query"}, capsys)
    assert res["budget"]["max_in_flight"] is None and res["budget"]["max_per_host"] is None


def test_documentation_matches_the_argument_spec():
    import yaml
    doc = yaml.safe_load(cloud_budget.DOCUMENTATION)
    assert set(doc["options"]) == set(cloud_budget.CloudBudgetModule.argument_spec)
    assert yaml.safe_load(cloud_budget.EXAMPLES) and yaml.safe_load(cloud_budget.RETURN)
