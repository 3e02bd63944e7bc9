"""The campaign's Ansible modules (host_maintain, compute_service_wait) against a fake library,
in the style of test_ansible_modules.py; and the rolling_maintenance playbook's shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("ansible")

from ansible_args import patch_module_args  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ansible_collections.novamove.openstack.plugins.modules import (  # noqa: E402
    compute_service_wait,
    host_maintain,
)
from novamove import errors  # noqa: E402

COLLECTION = REPO / "ansible_collections/novamove/openstack"


def report(ok=True, exit_code=0, changed=True, summary="maintain: 2/2 host(s) done, 3 server(s) moved"):
    data = {"ok": ok, "exit_code": exit_code, "changed": changed, "summary": summary, "run_id": "run-1",
            "results": [{"host": "c1", "outcome": "done"}, {"host": "c2", "outcome": "done" if ok else "failed"}],
            "plan": {"hosts": ["c1", "c2"], "stages": []}}
    return SimpleNamespace(to_dict=lambda: data)


class FakeApi:
    def __init__(self, result=None, raises=None):
        self.result, self.raises, self.calls = result, raises, []

    def _answer(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))
        if self.raises:
            raise self.raises
        return self.result

    def maintain(self, *args, **kwargs):
        return self._answer("maintain", args, kwargs)

    def compute_service_up(self, *args, **kwargs):
        return self._answer("compute_service_up", args, kwargs)


def run_module(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


@pytest.fixture
def fake(monkeypatch):
    def install(module, api):
        monkeypatch.setattr(module, "novamove_api", api)
        return api
    return install


def test_host_maintain_passes_options_to_the_library(fake, capsys):
    api = fake(host_maintain, FakeApi(report()))
    failed, result = run_module(host_maintain, {"cloud": "mycloud", "hosts": ["c1", "c2"], "hook": "true",
                                                "max_hosts": 2, "move_back": True}, capsys)
    assert not failed and result["changed"] is True and result["run_id"] == "run-1"
    assert result["summary"].startswith("maintain: 2/2")
    [(name, args, kwargs)] = api.calls
    assert name == "maintain" and args == (["c1", "c2"],)
    assert kwargs["hook"] == "true" and kwargs["max_hosts"] == 2 and kwargs["move_back"] is True
    assert kwargs["dry_run"] is False and getattr(kwargs["cloud"], "cloud", kwargs["cloud"]) == "mycloud" and kwargs["all_hosts"] is False
    assert kwargs["step_timeout"] == 1800


def test_host_maintain_check_mode_is_the_dry_run(fake, capsys):
    api = fake(host_maintain, FakeApi(report(changed=False)))
    failed, result = run_module(host_maintain, {"hosts": ["c1"], "_ansible_check_mode": True}, capsys)
    assert not failed and api.calls[0][2]["dry_run"] is True and result["changed"] is True


def test_host_maintain_failed_host_fails_the_task_with_the_facts(fake, capsys):
    fake(host_maintain, FakeApi(report(ok=False, exit_code=1, summary="maintain: 1/2 host(s) done, 1 failed")))
    failed, result = run_module(host_maintain, {"hosts": ["c1", "c2"]}, capsys)
    assert failed and result["msg"] == "maintain: 1/2 host(s) done, 1 failed" and result["exit_code"] == 1
    assert result["results"][1]["outcome"] == "failed"


def test_host_maintain_incomplete_allowed(fake, capsys):
    fake(host_maintain, FakeApi(report(ok=False, exit_code=8)))
    failed, _ = run_module(host_maintain, {"hosts": ["c1"]}, capsys)
    assert failed
    failed, _ = run_module(host_maintain, {"hosts": ["c1"], "allow_incomplete": True}, capsys)
    assert not failed


def test_host_maintain_refusal_is_the_cli_one_line_message(fake, capsys):
    fake(host_maintain, FakeApi(raises=errors.NoCapacity("campaign refused (N+K), nothing changed: stage 1 ...")))
    failed, result = run_module(host_maintain, {"hosts": ["c1"]}, capsys)
    assert failed and result["msg"].startswith("campaign refused (N+K)")
    assert result["exit_code"] == errors.EXIT_PRECONDITION


def test_host_maintain_resume_excludes_hosts(fake, capsys):
    fake(host_maintain, FakeApi(report()))
    failed, result = run_module(host_maintain, {"hosts": ["c1"], "resume": "run-1"}, capsys)
    assert failed and "mutually exclusive" in result["msg"]


def test_compute_service_wait_reads_only(fake, capsys):
    api = fake(compute_service_wait, FakeApi({"host": "c1", "up": True, "state": "up", "status": "disabled",
                                              "updated_at": "2026-01-01T00:00:09", "waited": 3.0}))
    failed, result = run_module(compute_service_wait, {"host": "c1", "since": "2026-01-01T00:00:00",
                                                       "timeout": 60}, capsys)
    assert not failed and result["changed"] is False and result["updated_at"] == "2026-01-01T00:00:09"
    assert api.calls[0][1] == ("c1",) and api.calls[0][2]["since"] == "2026-01-01T00:00:00"
    assert api.calls[0][2]["timeout"] == 60


def test_compute_service_wait_timeout_fails_with_exit_code(fake, capsys):
    fake(compute_service_wait, FakeApi(raises=errors.Timeout("nova-compute on c1 is not up after 60 s")))
    failed, result = run_module(compute_service_wait, {"host": "c1"}, capsys)
    assert failed and result["exit_code"] == errors.EXIT_TIMEOUT


def test_rolling_maintenance_playbook_shape():
    import yaml
    [play] = yaml.safe_load((COLLECTION / "playbooks/rolling_maintenance.yml").read_text())
    assert "serial" in play and play["max_fail_percentage"] == 0
    names = [next(k for k in t if k.startswith(("novamove.", "ansible."))) for t in play["tasks"]]
    assert names == ["novamove.openstack.host_drain", "ansible.builtin.set_fact", "ansible.builtin.include_tasks",
                     "novamove.openstack.compute_service_wait", "novamove.openstack.host_drain"]
    delegated = [t.get("delegate_to") for t in play["tasks"]]
    assert delegated[0] and delegated[3] and delegated[4] and not delegated[2]
    assert play["tasks"][4]["novamove.openstack.host_drain"]["state"] == "undrained"
    assert (COLLECTION / "playbooks/tasks/reboot.yml").exists()
    runtime = yaml.safe_load((COLLECTION / "meta/runtime.yml").read_text())
    assert {"host_maintain", "compute_service_wait"} <= set(runtime["action_groups"]["openstack"])
