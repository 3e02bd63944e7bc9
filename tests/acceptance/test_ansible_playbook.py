"""The novamove.openstack collection end to end: build it, install the tarball, run
`ansible-playbook novamove.openstack.migrate` against the minicloud.

Each test boots its own server so that the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.acceptance

REPO = Path(__file__).resolve().parents[2]
COLLECTION_SRC = REPO / "ansible_collections" / "novamove" / "openstack"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e '.[test]')")
    return str(path)


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory) -> Path:
    """Build the collection with ansible-galaxy and install the tarball, as a user would."""
    out = tmp_path_factory.mktemp("ansible")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", str(COLLECTION_SRC),
                    "--output-path", str(out / "dist")], check=True, capture_output=True, text=True)
    [tarball] = (out / "dist").glob("novamove-openstack-*.tar.gz")
    subprocess.run([tool("ansible-galaxy"), "collection", "install", str(tarball),
                    "-p", str(out / "collections")], check=True, capture_output=True, text=True)
    installed = out / "collections" / "ansible_collections" / "novamove" / "openstack"
    assert (installed / "plugins" / "modules" / "instance_migrate.py").exists()
    assert (installed / "playbooks" / "migrate.yml").exists()
    return out / "collections"


@pytest.fixture
def ansible_env(collections_path, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        NOVAMOVE_JOURNAL=str(tmp_path / "journal.sqlite"),
    )
    return env


def run_playbook(env: dict, collections_path: Path, *extra: str, playbook: str = "novamove.openstack.migrate",
                 inventory: bool = True) -> subprocess.CompletedProcess:
    """ansible-playbook with the collection's example inventory (localhost, this Python)."""
    cmd = [tool("ansible-playbook"), playbook]
    if inventory:
        hosts = collections_path / "ansible_collections/novamove/openstack/playbooks/inventory/hosts.yml"
        cmd += ["-i", str(hosts)]
    proc = subprocess.run(cmd + list(extra), env=env, capture_output=True, text=True, timeout=900)
    proc.output = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    return proc


def recap(proc) -> dict:
    m = RECAP.search(proc.stdout)
    assert m, f"no PLAY RECAP in:\n{proc.output}"
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups())))


def failure(proc) -> dict:
    """The result dict of the first failed task (default callback: `FAILED! => {...}`)."""
    for line in proc.stdout.splitlines():
        if "FAILED! =>" in line:
            return json.loads(line.split("FAILED! =>", 1)[1])
    raise AssertionError(f"no failed task in:\n{proc.output}")


# ---- the minicloud, checked through the conftest's admin connection, not the collection ----

def migration_ids(minicloud, server_id: str) -> set:
    return {m.id for m in minicloud.conn().compute.migrations(instance_uuid=server_id)}


@pytest.fixture
def server(minicloud, servers):
    """One fresh ACTIVE server on the first compute (the `servers` fixture deletes it)."""
    [created] = servers(1, host=minicloud.computes[0], prefix="ansible")
    return created


def test_playbook_moves_the_instance_then_reports_no_change(minicloud, server, ansible_env, collections_path):
    env = dict(ansible_env, **minicloud.env)
    target = minicloud.computes[1]
    assert minicloud.host_of(server.id) != target

    first = run_playbook(env, collections_path, "-e", f"cloud={minicloud.cloud}",
                         "-e", f"instance={server.name}", "-e", f"desthype={target}",
                         "-e", "migreason=ansible acceptance test")
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert minicloud.host_of(server.id) == target
    assert f"{server.name} was migrated from {minicloud.computes[0]} to {target} and has a status of ACTIVE" \
        in first.stdout

    second = run_playbook(env, collections_path, "-e", f"cloud={minicloud.cloud}",
                          "-e", f"instance={server.name}", "-e", f"desthype={target}")
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0
    assert minicloud.host_of(server.id) == target


def test_check_mode_changes_nothing(minicloud, server, ansible_env, collections_path):
    env = dict(ansible_env, **minicloud.env)
    source, target = minicloud.computes[0], minicloud.computes[2]
    services_before = minicloud.services()
    migrations_before = migration_ids(minicloud, server.id)

    proc = run_playbook(env, collections_path, "--check", "-e", f"cloud={minicloud.cloud}",
                        "-e", f"instance={server.name}", "-e", f"desthype={target}")
    assert proc.returncode == 0, proc.output
    assert recap(proc)["changed"] == 1   # it would change
    assert f"{server.name} would be migrated from {source} to {target}" in proc.stdout
    assert minicloud.host_of(server.id) == source
    assert migration_ids(minicloud, server.id) == migrations_before
    assert minicloud.services() == services_before


def test_bad_host_fails_the_play_with_the_cli_message_and_changes_nothing(
        minicloud, server, ansible_env, collections_path):
    env = dict(ansible_env, **minicloud.env)
    source = minicloud.computes[0]
    services_before = minicloud.services()

    proc = run_playbook(env, collections_path, "-e", f"cloud={minicloud.cloud}",
                        "-e", f"instance={server.name}", "-e", "desthype=no-such-host")
    assert proc.returncode != 0
    assert recap(proc)["failed"] == 1
    result = failure(proc)

    # The CLI's message for the same mistake, word for word.
    cli = minicloud.cli("migrate", server.name, "--to", "no-such-host",
                        env={"NOVAMOVE_JOURNAL": env["NOVAMOVE_JOURNAL"]})
    assert cli.returncode != 0
    cli_message = cli.stderr.strip().splitlines()[-1].removeprefix("novamove: error: ")
    assert result["msg"] == cli_message
    assert "no-such-host" in result["msg"] and "\n" not in result["msg"]
    assert result["exit_code"] == cli.returncode

    assert minicloud.host_of(server.id) == source
    assert minicloud.services() == services_before


def test_info_modules_report_hosts_and_migrations(minicloud, server, ansible_env, collections_path, tmp_path):
    env = dict(ansible_env, **minicloud.env)
    target = minicloud.computes[1]
    playbook = tmp_path / "info.yml"
    playbook.write_text(f"""---
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/novamove.openstack.openstack:
      cloud: {minicloud.cloud}
  tasks:
    - novamove.openstack.instance_migrate:
        server: {server.id}
        host: {target}
    - novamove.openstack.compute_host_info:
      register: hosts
    - novamove.openstack.migration_info:
        server: {server.name}
      register: migrations
    - ansible.builtin.copy:
        content: "{{{{ {{'hosts': hosts.compute_hosts, 'migrations': migrations.migrations}} | to_json }}}}"
        dest: {tmp_path / "info.json"}
""")
    proc = run_playbook(env, collections_path, playbook=str(playbook), inventory=False)
    assert proc.returncode == 0, proc.output
    info = json.loads((tmp_path / "info.json").read_text())
    hosts = {h["host"]: h for h in info["hosts"]}
    assert set(minicloud.computes) <= set(hosts)
    for name in minicloud.computes:
        assert hosts[name]["hypervisor_hostname"].split(".")[0] == name
        assert hosts[name]["status"] in ("enabled", "disabled") and hosts[name]["state"] in ("up", "down")
    assert hosts[target]["vcpus_used"] >= 1
    assert any(m["server_id"] == server.id and m["dest_compute"] == target for m in info["migrations"])


def test_role_rejects_missing_variables_before_touching_the_cloud(ansible_env, collections_path):
    # No cloud needed: the argument spec and the assert stop the play first.
    proc = run_playbook(ansible_env, collections_path)
    assert proc.returncode != 0
    assert "set instance (the server to move)" in proc.output

    proc = run_playbook(ansible_env, collections_path, "-e", "instance=web1", "-e", "desthype=c2",
                        "-e", "instance_migrate_mode=sideways")
    assert proc.returncode != 0
    assert "instance_migrate_mode" in proc.output and "sideways" in proc.output


def test_host_drain_module_drains_and_undrains_with_move_back(minicloud, servers, ansible_env,
                                                              collections_path, tmp_path):
    env = dict(ansible_env, **minicloud.env)
    host = minicloud.computes[2]
    mine = servers(2, host=host, prefix="ansdrain")
    services_before = minicloud.services()
    playbook = tmp_path / "drain.yml"
    playbook.write_text(f"""---
- hosts: localhost
  gather_facts: false
  tasks:
    - novamove.openstack.host_drain:
        cloud: {minicloud.cloud}
        host: {host}
        state: "{{{{ drain_state }}}}"
        reason: ansible acceptance
        move_back: true
        max_parallel: 2
      register: drain
    - ansible.builtin.copy:
        content: "{{{{ drain | to_json }}}}"
        dest: "{tmp_path}/{{{{ drain_state }}}}.json"
      check_mode: false
""")

    def play(state: str, *extra: str) -> dict:
        proc = run_playbook(env, collections_path, "-e", f"drain_state={state}", *extra,
                            playbook=str(playbook), inventory=False)
        assert proc.returncode == 0, proc.output
        return json.loads((tmp_path / f"{state}.json").read_text())

    try:
        planned = play("drained", "--check")
        assert {r["server_id"] for r in planned["results"]} >= {s.id for s in mine}
        assert all(r["result"] in ("planned", "skipped") for r in planned["results"])
        assert minicloud.services() == services_before
        assert all(minicloud.host_of(s.id) == host for s in mine)

        drained = play("drained")
        assert drained["changed"]
        status, _state, reason, _forced = minicloud.services()[host]
        assert status == "disabled" and reason.startswith("novamove:") and "ansible acceptance" in reason
        assert all(minicloud.host_of(s.id) != host for s in mine)

        undrained = play("undrained")
        assert undrained["changed"]
        assert all(minicloud.host_of(s.id) == host for s in mine)
        assert minicloud.services() == services_before
    finally:
        status, _state, reason, _forced = minicloud.services()[host]
        if status == "disabled" and (reason or "").startswith("novamove:"):
            service = next(s for s in minicloud.conn().compute.services(binary="nova-compute")
                           if s.host == host)
            minicloud.conn().compute.enable_service(service)
