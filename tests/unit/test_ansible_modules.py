"""The Ansible modules of novamove.openstack, run in-process against a fake library.

What is checked here is the modules' own job: options in, library call out, result and errors
back in Ansible's shape. The real end-to-end run is tests/acceptance/test_ansible_playbook.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("ansible")

from ansible.module_utils.testing import patch_module_args  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    # ansible_collections/ is a namespace package rooted at the repository.
    sys.path.insert(0, str(REPO))

from ansible_collections.novamove.openstack.plugins.module_utils import novamove_module  # noqa: E402
from ansible_collections.novamove.openstack.plugins.modules import (  # noqa: E402
    compute_host_info,
    instance_migrate,
    migration_info,
)
from novamove import errors  # noqa: E402

BEFORE = {"host": "compute1", "hypervisor_hostname": "compute1.fake.local", "status": "ACTIVE",
          "power_state": "RUNNING", "flavor": "m1.tiny"}
AFTER = dict(BEFORE, host="compute2", hypervisor_hostname="compute2.fake.local")


def move_result(**overrides):
    fields = dict(ok=True, changed=True, check_mode=False, server_id="uuid-1", server_name="web1",
                  summary="web1 was migrated from compute1 to compute2 and has a status of ACTIVE",
                  before=BEFORE, after=AFTER, source="compute1", dest="compute2", mode="live",
                  strategy="native", run_id="run-1", migration_id="7", migration_status="completed",
                  error=None, exit_code=0)
    fields.update(overrides)
    return SimpleNamespace(**fields)


class FakeApi:
    """Records calls; returns or raises what the test says."""

    def __init__(self, result=None, raises=None):
        self.result, self.raises, self.calls = result, raises, []

    def _answer(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))
        if self.raises:
            raise self.raises
        return self.result

    def migrate(self, *args, **kwargs):
        return self._answer("migrate", args, kwargs)

    def compute_hosts(self, **kwargs):
        return self._answer("compute_hosts", (), kwargs)

    def migrations(self, **kwargs):
        return self._answer("migrations", (), kwargs)


def run_module(module, args, capsys):
    """Run a module's main() like Ansible does; return (failed?, result dict)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    return exited.value.code != 0, result


@pytest.fixture
def fake(monkeypatch):
    def install(module, api):
        monkeypatch.setattr(module, "novamove_api", api)
        return api
    return install


def test_connection_options_become_library_keywords():
    kwargs = novamove_module.connection_kwargs(
        {"cloud": "mycloud", "auth": None, "region_name": "RegionTwo", "interface": "internal",
         "validate_certs": False, "server": "web1"})
    assert kwargs == {"cloud": "mycloud", "auth": None, "region_name": "RegionTwo",
                      "interface": "internal", "validate_certs": False}


def test_instance_migrate_calls_the_library_and_reports_the_summary(fake, capsys):
    api = fake(instance_migrate, FakeApi(move_result()))
    failed, result = run_module(instance_migrate, {
        "cloud": "mycloud", "server": "web1", "host": "compute2", "reason": "rack 12",
        "mode": "live", "strategy": "native", "endpoint_type": "admin"}, capsys)
    assert not failed and result["changed"] is True
    assert result["summary"] == "web1 was migrated from compute1 to compute2 and has a status of ACTIVE"
    assert result["before"]["host"] == "compute1" and result["after"]["host"] == "compute2"
    [(name, args, kwargs)] = api.calls
    assert name == "migrate" and args == ("web1", "compute2")
    assert kwargs == dict(cloud="mycloud", auth=None, region_name=None, interface="admin",
                          validate_certs=None, mode="live", strategy="native", reason="rack 12",
                          confirm=True, wait=True, timeout=600, on_timeout="abort",
                          journal_path=None, check_mode=False)


def test_instance_migrate_already_there_is_not_a_change(fake, capsys):
    fake(instance_migrate, FakeApi(move_result(changed=False, after=BEFORE, dest="compute1")))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "compute1"}, capsys)
    assert not failed and result["changed"] is False


def test_instance_migrate_check_mode_only_asks_for_the_pre_checks(fake, capsys):
    api = fake(instance_migrate, FakeApi(move_result(
        check_mode=True, after=BEFORE, run_id=None, migration_id=None,
        summary="web1 would be migrated from compute1 to compute2 (live, native)")))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "compute2",
                                                   "_ansible_check_mode": True,
                                                   "_ansible_diff": True}, capsys)
    assert not failed and result["changed"] is True
    assert api.calls[0][2]["check_mode"] is True
    assert result["diff"] == {"before": {"host": "compute1"}, "after": {"host": "compute2"}}


def test_library_errors_fail_with_the_cli_one_line_message(fake, capsys):
    fake(instance_migrate, FakeApi(raises=errors.NotFound("no compute host named 'nope' (known: compute1, compute2)")))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "nope"}, capsys)
    assert failed and result["failed"] is True
    assert result["msg"] == "no compute host named 'nope' (known: compute1, compute2)"
    assert result["exit_code"] == errors.EXIT_NOT_FOUND and result["error"] == "NotFound"


def test_a_move_that_did_not_land_fails_with_its_error_and_the_facts(fake, capsys):
    fake(instance_migrate, FakeApi(move_result(
        ok=False, after=BEFORE, error="live migration of web1 failed: rolled back to compute1",
        exit_code=errors.EXIT_FAILED)))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "compute2"}, capsys)
    assert failed and result["msg"] == "live migration of web1 failed: rolled back to compute1"
    assert result["after"]["host"] == "compute1" and result["exit_code"] == errors.EXIT_FAILED


def test_auth_is_passed_through_and_never_echoed(fake, capsys):
    api = fake(migration_info, FakeApi([]))
    auth = {"auth_url": "http://keystone", "username": "admin", "password": "s3cr3t-pw"}
    failed, result = run_module(migration_info, {"auth": auth}, capsys)
    assert not failed and api.calls[0][2]["auth"] == auth
    assert "s3cr3t-pw" not in json.dumps(result)


def test_compute_host_info_filters_by_either_host_name(fake, capsys):
    hosts = [{"name": "compute1", "hypervisor_hostname": "compute1.fake.local"},
             {"name": "compute2", "hypervisor_hostname": "compute2.fake.local"}]
    fake(compute_host_info, FakeApi(hosts))
    failed, result = run_module(compute_host_info, {"name": "compute2.fake.local"}, capsys)
    assert not failed and result["changed"] is False
    assert [h["name"] for h in result["compute_hosts"]] == ["compute2"]
    failed, result = run_module(compute_host_info, {}, capsys)
    assert len(result["compute_hosts"]) == 2


def test_migration_info_passes_the_filters(fake, capsys):
    api = fake(migration_info, FakeApi([{"id": "7", "type": "live-migration"}]))
    failed, result = run_module(migration_info, {"server": "web1", "host": "compute1",
                                                 "status": "completed", "type": "live-migration"}, capsys)
    assert not failed and result["migrations"] == [{"id": "7", "type": "live-migration"}]
    assert api.calls[0][2] == dict(server="web1", host="compute1", status="completed",
                                   migration_type="live-migration", cloud=None, auth=None,
                                   region_name=None, interface=None, validate_certs=None)


def test_missing_library_is_reported_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(novamove_module, "HAS_NOVAMOVE", False)
    monkeypatch.setattr(novamove_module, "NOVAMOVE_IMPORT_ERROR", "ImportError: No module named 'novamove'")
    failed, result = run_module(compute_host_info, {}, capsys)
    assert failed and "novamove" in result["msg"] and "required" in result["msg"].lower()
