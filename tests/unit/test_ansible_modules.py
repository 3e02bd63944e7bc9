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

from ansible_args import patch_module_args  # noqa: E402

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
from novamove import api, errors, report  # noqa: E402
from novamove.engine.single.result import MoveResult  # noqa: E402

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
    return MoveResult(**fields)


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


def spec(**fields):
    return api.ConnectionSpec(**fields)


# ------------------------------------------------------------------ the connection options

# Every openstack.cloud connection option: (type, aliases, no_log), as openstack.cloud has them.
OPENSTACK_CLOUD_OPTIONS = {
    "cloud": ("raw", [], False),
    "auth": ("dict", [], True),
    "auth_type": ("str", [], False),
    "region_name": ("str", [], False),
    "interface": ("str", ["endpoint_type"], False),
    "validate_certs": ("bool", ["verify"], False),
    "ca_cert": ("str", ["cacert"], False),
    "client_cert": ("str", ["cert"], False),
    "client_key": ("str", ["key"], True),
    "api_timeout": ("int", [], False),
    "sdk_log_path": ("str", [], False),
    "sdk_log_level": ("str", [], False),
}


def test_the_connection_options_are_openstack_cloud_s():
    argspec = novamove_module.CONNECTION_ARGUMENT_SPEC
    assert set(argspec) == set(OPENSTACK_CLOUD_OPTIONS)
    for name, (kind, aliases, no_log) in OPENSTACK_CLOUD_OPTIONS.items():
        option = argspec[name]
        assert option.get("type", "str") == kind, name
        assert option.get("aliases", []) == aliases, name
        assert bool(option.get("no_log")) is no_log, name
    assert argspec["interface"]["choices"] == ["admin", "internal", "public"]
    assert argspec["sdk_log_level"] == dict(type="str", default="INFO", choices=["INFO", "DEBUG"])


def test_the_doc_fragment_documents_the_same_options():
    import yaml
    from ansible_collections.novamove.openstack.plugins.doc_fragments.connection import ModuleDocFragment

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    argspec = novamove_module.CONNECTION_ARGUMENT_SPEC
    assert set(documented) == set(argspec)
    for name, option in argspec.items():
        doc = documented[name]
        assert doc["type"] == option.get("type", "str"), name
        assert doc.get("aliases", []) == option.get("aliases", []), name
        assert doc.get("choices") == option.get("choices"), name
        assert doc.get("default") == option.get("default"), name


def test_every_option_maps_to_the_connection_spec():
    params = {"cloud": "mycloud", "auth": {"username": "u", "password": "p"}, "auth_type": "password",
              "region_name": "RegionTwo", "interface": "internal", "validate_certs": False,
              "ca_cert": "/etc/ca.pem", "client_cert": "/etc/c.pem", "client_key": "/etc/c.key",
              "api_timeout": 30, "sdk_log_path": "/tmp/sdk.log", "sdk_log_level": "DEBUG",
              "server": "web1"}
    assert novamove_module.connection_spec(params) == spec(
        cloud="mycloud", auth={"username": "u", "password": "p"}, auth_type="password",
        region_name="RegionTwo", interface="internal", verify=False, cacert="/etc/ca.pem",
        cert="/etc/c.pem", key="/etc/c.key", api_timeout=30)
    # every connection option but the logging ones lands in the spec
    assert set(novamove_module.SPEC_FIELDS) == set(novamove_module.CONNECTION_OPTIONS) - {
        "cloud", "sdk_log_path", "sdk_log_level"}


def test_unset_options_leave_it_to_clouds_yaml():
    params = dict.fromkeys(novamove_module.CONNECTION_OPTIONS)
    assert novamove_module.connection_spec(params) == spec()


def test_a_dict_cloud_is_the_whole_config():
    config = {"auth": {"auth_url": "http://keystone:5000/v3", "username": "admin",
                       "password": "s3cr3t-pw", "project_name": "admin"},
              "region_name": "RegionOne", "interface": "internal"}
    made = novamove_module.connection_spec({"cloud": config, "api_timeout": 20})
    assert made == spec(cloud=config, api_timeout=20)
    assert "s3cr3t-pw" not in repr(made)


def test_a_cloud_that_is_neither_name_nor_dict_is_a_one_line_usage_error(capsys):
    failed, result = run_module(compute_host_info, {"cloud": ["a", "b"]}, capsys)
    assert failed and result["exit_code"] == errors.EXIT_USAGE
    assert result["msg"] == "cloud must be the name of a clouds.yaml entry or a cloud config dict, not list"


def test_secrets_are_no_log_and_never_echoed(fake, capsys):
    api_ = fake(migration_info, FakeApi([]))
    auth = {"auth_url": "http://keystone", "username": "admin", "password": "s3cr3t-pw"}
    failed, result = run_module(migration_info, {"auth": auth, "client_key": "/etc/pki/s3cr3t-key.pem",
                                                 "_ansible_verbosity": 4}, capsys)
    assert not failed and api_.calls[0][2]["cloud"].auth == auth
    assert api_.calls[0][2]["cloud"].key == "/etc/pki/s3cr3t-key.pem"
    text = json.dumps(result)
    assert "s3cr3t-pw" not in text and "s3cr3t-key" not in text


def test_secrets_inside_a_dict_cloud_are_hidden_too(fake, capsys):
    api_ = fake(migration_info, FakeApi([{"id": "1", "note": "token tok-s3cr3t seen"}]))
    cloud = {"auth": {"auth_url": "http://keystone", "username": "admin", "password": "s3cr3t-pw",
                      "application_credential_secret": "ac-s3cr3t"},
             "auth_type": "password", "token": "tok-s3cr3t"}
    failed, result = run_module(migration_info, {"cloud": cloud, "_ansible_verbosity": 4}, capsys)
    assert not failed and api_.calls[0][2]["cloud"].cloud == cloud
    text = json.dumps(result)
    for secret in ("s3cr3t-pw", "ac-s3cr3t", "tok-s3cr3t"):
        assert secret not in text
    assert "admin" in text               # names are not secrets: only secret keys are hidden


def test_sdk_logging_goes_to_the_file_at_the_level(tmp_path, monkeypatch):
    import logging
    path = tmp_path / "sdk.log"
    for name in novamove_module.SDK_LOGGERS:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "level", logger.level)
    assert novamove_module.configure_sdk_logging({"sdk_log_path": None}) is None
    handler = novamove_module.configure_sdk_logging({"sdk_log_path": str(path), "sdk_log_level": "INFO"})
    try:
        logging.getLogger("openstack.compute").debug("hidden at INFO")
        logging.getLogger("keystoneauth.session").info("REQ: curl -g -i GET http://nova")
        handler.flush()
        text = path.read_text()
        assert "REQ: curl" in text and "hidden at INFO" not in text
        assert (path.stat().st_mode & 0o777) == 0o600
    finally:
        for name in novamove_module.SDK_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        handler.close()
    handler = novamove_module.configure_sdk_logging({"sdk_log_path": str(path), "sdk_log_level": "DEBUG"})
    try:
        logging.getLogger("openstack.compute").debug("shown at DEBUG")
        handler.flush()
        assert "shown at DEBUG" in path.read_text()
    finally:
        for name in novamove_module.SDK_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        handler.close()


def test_modules_call_only_the_library_front_door():
    """The collection imports novamove.api and novamove.errors, never the engine or the cloud
    adapter (so every front connects and behaves the same)."""
    import ast
    plugins = REPO / "ansible_collections/novamove/openstack/plugins"
    for path in plugins.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("novamove") and not name.startswith("novamove.openstack"):
                    assert name in ("novamove", "novamove.api", "novamove.report", "novamove.errors",
                                    "novamove.errors.NovamoveError"), f"{path.name} imports {name}"


def test_instance_migrate_calls_the_library_and_reports_the_summary(fake, capsys):
    api = fake(instance_migrate, FakeApi(move_result()))
    failed, result = run_module(instance_migrate, {
        "cloud": "mycloud", "server": "web1", "host": "compute2", "reason": "rack 12",
        "mode": "live", "strategy": "native", "endpoint_type": "admin"}, capsys)
    assert not failed and result["changed"] is True
    assert result["summary"] == "web1 was migrated from compute1 to compute2 and has a status of ACTIVE"
    assert result["before"]["compute_host"] == "compute1" and result["after"]["compute_host"] == "compute2"
    assert result["source_compute"] == "compute1" and result["dest_compute"] == "compute2"
    [(name, args, kwargs)] = api.calls
    assert name == "migrate" and args == ("web1", "compute2")
    assert kwargs == dict(cloud=spec(cloud="mycloud", interface="admin"), mode="live",
                          strategy="native", reason="rack 12", confirm=True, wait=True, timeout=600,
                          on_timeout="abort", journal_path=None, check_mode=False, on_stall="force-complete")


def test_instance_migrate_without_a_host_lets_the_scheduler_choose(fake, capsys):
    api = fake(instance_migrate, FakeApi(move_result(strategy="scheduler", dest="compute3",
                                                     after={**BEFORE, "host": "compute3"})))
    failed, result = run_module(instance_migrate, {"server": "web1"}, capsys)
    assert not failed and result["changed"] is True, result
    [(name, args, _)] = api.calls
    assert name == "migrate" and args == ("web1", None)
    assert result["strategy"] == "scheduler" and result["dest_compute"] == "compute3"


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
    assert result["after"]["compute_host"] == "compute1" and result["exit_code"] == errors.EXIT_FAILED


def test_compute_host_info_filters_by_either_host_name(fake, capsys):
    hosts = [{"name": "compute1", "hypervisor_hostname": "compute1.fake.local"},
             {"name": "compute2", "hypervisor_hostname": "compute2.fake.local"}]
    fake(compute_host_info, FakeApi(hosts))
    failed, result = run_module(compute_host_info, {"name": "compute2.fake.local"}, capsys)
    assert not failed and result["changed"] is False
    assert [h["host"] for h in result["compute_hosts"]] == ["compute2"]
    failed, result = run_module(compute_host_info, {}, capsys)
    assert len(result["compute_hosts"]) == 2


def test_migration_info_passes_the_filters(fake, capsys):
    api = fake(migration_info, FakeApi([{"id": "7", "type": "live-migration", "source": "compute1",
                                         "dest": "compute2"}]))
    failed, result = run_module(migration_info, {"server": "web1", "host": "compute1",
                                                 "status": "completed", "type": "live-migration"}, capsys)
    assert not failed and result["migrations"] == [{"id": "7", "migration_type": "live-migration",
                                                    "source_compute": "compute1", "dest_compute": "compute2"}]
    assert api.calls[0][2] == dict(server="web1", host="compute1", status="completed",
                                   migration_type="live-migration", cloud=spec())


def test_missing_library_is_reported_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(novamove_module, "HAS_NOVAMOVE", False)
    monkeypatch.setattr(novamove_module, "NOVAMOVE_IMPORT_ERROR", "ImportError: No module named 'novamove'")
    failed, result = run_module(compute_host_info, {}, capsys)
    assert failed and "novamove" in result["msg"] and "required" in result["msg"].lower()


def test_the_invocation_logged_on_the_managed_node_hides_dict_cloud_secrets(fake, capsys, monkeypatch):
    from ansible.module_utils.basic import AnsibleModule

    logged = []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    fake(migration_info, FakeApi([]))
    cloud = {"auth": {"auth_url": "http://keystone", "username": "admin", "password": "s3cr3t-pw"}}
    failed, _ = run_module(migration_info, {"cloud": cloud}, capsys)
    assert not failed and logged and "auth_url" in logged[0]
    assert "s3cr3t-pw" not in " ".join(logged)


# ------------------------------------------------------------------ one schema: the CLI's

def test_instance_migrate_returns_the_cli_document_keys(fake, capsys):
    move = move_result(request_ids=["req-1", "req-2"])
    fake(instance_migrate, FakeApi(move))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "compute2"}, capsys)
    doc = report.move_document(move)
    assert not failed
    assert {k: result[k] for k in instance_migrate.RESULT_FIELDS} == json.loads(json.dumps(
        {k: doc[k] for k in instance_migrate.RESULT_FIELDS}))
    assert result["source_node"] == "compute1.fake.local" and result["dest_node"] == "compute2.fake.local"
    assert result["request_ids"] == ["req-1", "req-2"]
    assert not {"source", "dest"} & set(result) and "host" not in result["before"]


def test_a_failed_move_names_the_last_request_id(fake, capsys):
    fake(instance_migrate, FakeApi(move_result(
        ok=False, after=BEFORE, error="live migration of web1 failed: rolled back to compute1",
        exit_code=errors.EXIT_FAILED, request_ids=["req-a", "req-b"])))
    failed, result = run_module(instance_migrate, {"server": "web1", "host": "compute2"}, capsys)
    assert failed and result["msg"] == ("live migration of web1 failed: rolled back to compute1 "
                                        "(request ID req-b)")
    assert result["request_ids"] == ["req-a", "req-b"] and result["dest_node"] is None


def _documented(module, key):
    import yaml
    return yaml.safe_load(module.RETURN)[key]


def test_return_docs_name_what_the_modules_return():
    """Every key a module returns is in its RETURN documentation (and the novamove names are gone)."""
    import yaml
    doc = yaml.safe_load(instance_migrate.RETURN)
    assert set(instance_migrate.RESULT_FIELDS) <= set(doc)
    assert set(doc["before"]["contains"]) == set(report.MOVE_TABLE_FACTS)
    assert not {"source", "dest"} & set(doc)
    hosts = _documented(compute_host_info, "compute_hosts")["contains"]
    assert set(hosts) == set(report.HOST_COLUMNS)
    migrations = _documented(migration_info, "migrations")["contains"]
    assert set(migrations) == set(report.MIGRATION_COLUMNS)
    from ansible_collections.novamove.openstack.plugins.modules import host_drain, host_evacuate
    steps = _documented(host_drain, "results")["contains"]
    assert set(steps) == set(report.STEP_COLUMNS)
    left = _documented(host_drain, "left")["sample"][0]
    assert set(left) == set(report.LEFT_COLUMNS)
    assert set(_documented(host_evacuate, "results")["contains"]) <= set(report.STEP_COLUMNS)
