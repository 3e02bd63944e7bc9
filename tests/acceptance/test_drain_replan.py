"""A drain plans a destination that Nova then refuses, on the minicloud (a real Nova on loopback):
the server is planned again elsewhere and never sent to the refused host a second time.

How Nova is made to refuse, with nothing mocked: the server's flavor carries a
ComputeCapabilitiesFilter extra spec (`capabilities:hypervisor_hostname` `s!= <the planner's first
choice>`), one of Nova's default scheduler filters that novamove's planner does not model (it
predicts traits, server groups, zones, capacity: docs/drain.md "Pre-flight"), so it picks the host
with the most free RAM; Nova's scheduler answers NoValidHost for it (a live migration at >= 2.34
is refused after the request: migration "error", the fault on the instance action).
engine/batch/drain.py must then avoid that host for this server when it plans again.
"""

from __future__ import annotations

import json
import uuid

import pytest

from novamove.engine.batch.common import EV_MOVE
from novamove.engine.journal import Journal

pytestmark = pytest.mark.acceptance

SOURCE = "compute1"
REFUSED, OTHER = "compute3", "compute2"      # the planner's first choice (Nova refuses it); the other one


@pytest.fixture
def picky_flavor(minicloud):
    """A flavor like m1.nano that Nova's ComputeCapabilitiesFilter keeps off REFUSED's node."""
    conn = minicloud.conn()
    tag = uuid.uuid4().hex[:8]
    nano = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    [node] = [r["hypervisor_hostname"] for r in json.loads(minicloud.cli("hosts", "-f", "json", check=True).stdout)
              if r["host"] == REFUSED]
    flavor = conn.compute.create_flavor(name=f"replan-{tag}", ram=nano.ram, vcpus=nano.vcpus,
                                        disk=nano.disk, is_public=True)
    try:
        conn.compute.create_flavor_extra_specs(flavor, {"capabilities:hypervisor_hostname": f"s!= {node}"})
        yield flavor
    finally:
        conn.compute.delete_flavor(flavor, ignore_missing=True)


def test_a_destination_nova_refused_is_avoided_when_the_drain_plans_again(minicloud, servers, picky_flavor,
                                                                          tmp_path):
    conn = minicloud.conn()
    flavor = picky_flavor
    hosts = {r["host"]: r for r in json.loads(minicloud.cli("hosts", "-f", "json", check=True).stdout)}
    # The planner sends a server where the most RAM is free: make that REFUSED, by a clear margin
    # (a filler on OTHER if need be), so no allocation coming or going meanwhile changes it.
    free = {h: row["memory_mb"] - row["memory_mb_used"] for h, row in hosts.items()}
    short = free[OTHER] - free[REFUSED] + 1024
    if short > 0:
        size = min((f for f in conn.compute.flavors() if f.ram >= short), key=lambda f: f.ram)
        servers(1, host=OTHER, flavor=size.name, prefix="replan-filler")
    [vm] = servers(1, host=SOURCE, flavor=flavor.name, prefix="replan")
    journal = tmp_path / "journal.sqlite"
    env = {"NOVAMOVE_JOURNAL": str(journal)}

    try:
        out = minicloud.cli("drain", SOURCE, "-f", "json", env=env)
    finally:
        undrain = minicloud.cli("undrain", SOURCE, "-q", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert undrain.returncode == 0, undrain.stdout + undrain.stderr
    report = json.loads(out.stdout)
    [result] = [r for r in report["results"] if r["server_id"] == vm.id]
    assert result["result"] == "moved" and result["dest_compute"] == OTHER, result
    assert minicloud.host_of(vm.id) == OTHER
    # The refusal was Nova's (its words in the event lines), then a second plan.
    assert "No valid host" in out.stderr, out.stderr
    assert "planning them again" in out.stderr, out.stderr

    # novamove sent the server to the refused host once, then to the other one once.
    moves = [e for e in Journal(journal).events(report["run_id"])
             if e.kind == EV_MOVE and e.target == vm.id]
    assert [(e.data["dest"], e.state) for e in moves] == [(REFUSED, "failed"), (OTHER, "done")], \
        [(e.data, e.state) for e in moves]
    # Nova's side: two live migrations of the server, under the request ids novamove journaled;
    # the refused one never ran (error, no destination chosen), the other completed; nothing
    # ever reached the refused host.
    migrations = sorted(conn.compute.migrations(instance_uuid=vm.id), key=lambda m: m.id)
    assert [m.status for m in migrations] == ["error", "completed"], \
        [(m.status, m.dest_compute) for m in migrations]
    assert migrations[1].dest_compute == OTHER
    assert sum(m.dest_compute == REFUSED for m in migrations) <= 1
    assert not any(m.dest_compute == REFUSED and m.status != "error" for m in migrations)
    actions = [a for a in conn.compute.server_actions(vm.id) if a.action == "live-migration"]
    assert sorted(a.request_id for a in actions) == sorted(e.data["request_id"] for e in moves)
