"""The collection's openstack.cloud connection options against the minicloud: `cloud` as a
dict (no clouds.yaml, no OS_* variables), `api_timeout`, `sdk_log_path`/`sdk_log_level`, and the
secrets of that dict kept out of Ansible's output and the SDK log.
"""

from __future__ import annotations

import json

import pytest
import yaml

from test_ansible_playbook import ansible_env, collections_path, recap, run_playbook  # noqa: F401

pytestmark = pytest.mark.acceptance


def cloud_dict(minicloud) -> dict:
    """The minicloud's clouds.yaml entry, inline."""
    with open(minicloud.env["OS_CLIENT_CONFIG_FILE"]) as f:
        return yaml.safe_load(f)["clouds"][minicloud.cloud]


def test_dict_cloud_with_api_timeout_and_sdk_log(minicloud, servers, ansible_env, collections_path,  # noqa: F811
                                                 tmp_path):
    cloud = cloud_dict(minicloud)
    password = cloud["auth"]["password"]
    source, target = minicloud.computes[0], minicloud.computes[2]
    [vm] = servers(1, host=source, prefix="ansdict")
    sdk_log = tmp_path / "sdk.log"
    playbook = tmp_path / "dict.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"novamove.openstack.compute_host_info": {
                "cloud": cloud, "api_timeout": 30, "sdk_log_path": str(sdk_log),
                "sdk_log_level": "DEBUG"},
             "register": "hosts"},
            {"novamove.openstack.instance_migrate": {
                "cloud": cloud, "api_timeout": 30, "server": vm.id, "host": target},
             "register": "moved"},
            {"ansible.builtin.copy": {
                "content": "{{ {'hosts': hosts.compute_hosts, 'moved': moved} | to_json }}",
                "dest": str(tmp_path / "out.json")}},
        ]}]))
    env = {k: v for k, v in ansible_env.items() if k not in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD")}
    env["OS_CLIENT_CONFIG_FILE"] = str(tmp_path / "no-clouds.yaml")   # only the dict can connect
    proc = run_playbook(env, collections_path, "-vvv", playbook=str(playbook), inventory=False)
    assert proc.returncode == 0, proc.output
    assert recap(proc)["changed"] == 2          # the move and the copy
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(minicloud.computes) <= {h["host"] for h in out["hosts"]}
    assert out["moved"]["dest_compute"] == target and out["moved"]["changed"] is True
    assert minicloud.host_of(vm.id) == target

    # The SDK log at DEBUG has the HTTP requests; no password anywhere.
    text = sdk_log.read_text()
    assert "REQ: curl" in text and "/os-hypervisors" in text
    assert (sdk_log.stat().st_mode & 0o777) == 0o600
    assert password not in text
    assert password not in proc.output          # -vvv shows each module's invocation


def test_a_dict_cloud_with_a_wrong_password_fails_in_one_line_without_the_secret(
        minicloud, ansible_env, collections_path, tmp_path):  # noqa: F811
    cloud = cloud_dict(minicloud)
    cloud["auth"]["password"] = "not-the-password-4e1f"
    playbook = tmp_path / "bad.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"novamove.openstack.compute_host_info": {"cloud": cloud, "api_timeout": 10},
             "register": "bad", "ignore_errors": True},
            {"ansible.builtin.copy": {"content": "{{ bad | to_json }}", "dest": str(tmp_path / "bad.json")}},
        ]}]))
    proc = run_playbook(ansible_env, collections_path, "-vvv", playbook=str(playbook), inventory=False)
    assert proc.returncode == 0, proc.output
    result = json.loads((tmp_path / "bad.json").read_text())
    assert result["failed"] is True and result["exit_code"] == 5       # EXIT_AUTH
    assert result["msg"] and "\n" not in result["msg"]
    assert "not-the-password-4e1f" not in proc.output
    assert "not-the-password-4e1f" not in json.dumps(result)

