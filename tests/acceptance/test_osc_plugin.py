"""The `openstack` CLI plugin end to end: the real `openstack` command (python-openstackclient)
with novamove installed, against the minicloud. Outcomes are checked with openstacksdk through
the conftest's admin connection, never through the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudtest import REPO, wait_until

pytestmark = pytest.mark.acceptance

OPENSTACK = Path(sys.executable).with_name("openstack")


@pytest.fixture
def osc(minicloud, tmp_path):
    """Run `openstack ARGS` as an operator would (OS_CLOUD=minicloud); a CompletedProcess."""
    if not OPENSTACK.exists():
        pytest.skip("python-openstackclient is not installed next to this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(minicloud.env, OS_CLOUD=minicloud.cloud,
               NOVAMOVE_JOURNAL=str(tmp_path / "journal.sqlite"))

    def run(*args: str, timeout: float = 600, env_update: dict | None = None,
            env_drop: tuple = ()) -> subprocess.CompletedProcess:
        full = {k: v for k, v in {**env, **(env_update or {})}.items() if k not in env_drop}
        return subprocess.run([str(OPENSTACK), *args], env=full, capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    return run


def migration_ids(minicloud, server_id: str) -> set:
    return {m.id for m in minicloud.conn().compute.migrations(instance_uuid=server_id)}


def test_server_move_lands_on_the_named_host(minicloud, servers, osc):
    source, target = minicloud.computes[0], minicloud.computes[1]
    [vm] = servers(1, host=source, prefix="osc-move")
    proc = osc("server", "move", vm.name, "--to", target, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["Server UUID"] == vm.id and shown["Source Compute"] == source
    assert shown["Dest Compute"] == target and shown["Compute Host"] == target
    assert shown["Type"] == "live-migration" and shown["Result"] == "moved"
    assert minicloud.host_of(vm.id) == target
    assert minicloud.server(vm.id).status == "ACTIVE"
    # -c and -f value, as with any openstack command; a cold move of a SHUTOFF server
    minicloud.conn().compute.stop_server(vm.id)
    minicloud.conn().compute.wait_for_server(minicloud.server(vm.id), status="SHUTOFF", wait=120)
    proc = osc("server", "move", vm.id, "--to", source, "-f", "value", "-c", "Compute Host",
               "-c", "Type", "-c", "Status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [source, "SHUTOFF", "migration"]
    assert minicloud.host_of(vm.id) == source


def test_migration_wait_follows_a_no_wait_move(minicloud, servers, osc):
    source, target = minicloud.computes[1], minicloud.computes[2]
    [vm] = servers(1, host=source, prefix="osc-wait")
    minicloud.set_fakevirt(live_migration_seconds=4)
    started = osc("server", "move", vm.name, "--to", target, "--no-wait", "-f", "json")
    assert started.returncode == 0, started.stderr
    shown = json.loads(started.stdout)
    assert shown["Result"] == "in progress" and shown["Migration Status"] != "completed"
    assert minicloud.server(vm.id).status == "MIGRATING"

    waited = osc("server", "migration", "wait", vm.name, "--timeout", "120", "-f", "json")
    assert waited.returncode == 0, waited.stderr
    shown = json.loads(waited.stdout)
    assert shown["Result"] == "moved" and shown["Compute Host"] == target
    assert shown["Migration Status"] == "completed"
    assert minicloud.host_of(vm.id) == target and minicloud.server(vm.id).status == "ACTIVE"


def test_drain_empties_the_host_and_undrain_puts_it_back(minicloud, servers, osc):
    host = minicloud.computes[2]
    mine = servers(2, host=host, prefix="osc-drain")
    before = minicloud.services()
    try:
        proc = osc("compute", "host", "drain", host, "--reason", "osc acceptance", "-f", "json")
        assert proc.returncode == 0, proc.stderr
        rows = {r["Server UUID"]: r for r in json.loads(proc.stdout)}
        for vm in mine:
            assert rows[vm.id]["Result"] == "moved" and rows[vm.id]["Source Compute"] == host
            assert minicloud.host_of(vm.id) == rows[vm.id]["Dest Compute"] != host
        status, _state, reason, _forced = minicloud.services()[host]
        assert status == "disabled" and reason.startswith("novamove:") and "osc acceptance" in reason
        assert f"drain {host}: " in proc.stderr       # the summary, on stderr (stdout is JSON)

        proc = osc("compute", "host", "undrain", host, "--move-back", "-f", "json")
        assert proc.returncode == 0, proc.stderr
        assert minicloud.services()[host] == before[host]
        assert {r["Server UUID"] for r in json.loads(proc.stdout) if r["Result"] == "moved"} >= \
            {vm.id for vm in mine}
        assert all(minicloud.host_of(vm.id) == host for vm in mine)
    finally:
        status, _state, reason, _forced = minicloud.services()[host]
        if status == "disabled" and (reason or "").startswith("novamove:"):
            service = next(s for s in minicloud.conn().compute.services(binary="nova-compute")
                           if s.host == host)
            minicloud.conn().compute.enable_service(service)


def test_a_bad_host_is_one_line_and_a_non_zero_exit_with_nothing_changed(minicloud, servers, osc):
    source = minicloud.computes[0]
    [vm] = servers(1, host=source, prefix="osc-bad")
    services = minicloud.services()
    migrations = migration_ids(minicloud, vm.id)
    for args in (("server", "move", vm.name, "--to", "no-such-host"),
                 ("compute", "host", "drain", "no-such-host"),
                 ("compute", "host", "undrain", "no-such-host")):
        proc = osc(*args)
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)   # EXIT_NOT_FOUND
        assert proc.stdout == ""
        [line] = proc.stderr.strip().splitlines()
        assert "no-such-host" in line and "Traceback" not in line
    assert minicloud.host_of(vm.id) == source
    assert migration_ids(minicloud, vm.id) == migrations
    assert minicloud.services() == services


def test_a_move_that_does_not_land_exits_non_zero_with_the_one_line_error(minicloud, servers, osc):
    source, target = minicloud.computes[1], minicloud.computes[0]
    [vm] = servers(1, host=source, prefix="osc-fail")
    minicloud.set_fakevirt(live_migration_rollback=1)
    proc = osc("server", "move", vm.name, "--to", target, "-f", "json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)               # EXIT_FAILED
    shown = json.loads(proc.stdout)
    assert shown["Result"] == "failed" and shown["Compute Host"] == source
    [line] = proc.stderr.strip().splitlines()
    assert vm.name in line and "Traceback" not in line
    wait_until(lambda: minicloud.server(vm.id).status == "ACTIVE", timeout=60, what="ACTIVE again")
    assert minicloud.host_of(vm.id) == source

