"""A drain plans a destination that Nova then refuses, on the minicloud (a real Nova on loopback):
the server is planned again elsewhere and never sent to the refused host a second time.

How Nova is made to refuse, with nothing mocked: the server's flavor requires a custom trait
(`trait:CUSTOM_...=required`, a placement pre-filter of Nova's scheduler), which the source and
one other compute have and the planner's first choice does not. novamove's planner looks at
capacity, server groups and zones, not traits, so it picks the host with the most free RAM;
Nova's scheduler answers NoValidHost for it (a live migration at >= 2.34 is refused after the
request: migration "error", the fault on the instance action). engine/batch/drain.py must then avoid
that host for this server when it plans again.
"""

from __future__ import annotations

import json
import uuid

import pytest

from novamove.engine.batch.common import EV_MOVE
from novamove.engine.journal import Journal

pytestmark = pytest.mark.acceptance

SOURCE = "compute1"
REFUSED, OTHER = "compute3", "compute2"      # the planner's first choice (no trait); the other one


def _placement(conn, method: str, url: str, **kwargs):
    return conn.placement.request(url, method, microversion="1.6", raise_exc=False, **kwargs)


def _provider(conn, node: str) -> str:
    body = _placement(conn, "GET", "/resource_providers", params={"name": node}).json()
    [rp] = body["resource_providers"]
    return rp["uuid"]


def _change_traits(conn, rp: str, add: str | None = None, remove: str | None = None) -> None:
    """Add or remove one trait of a resource provider (the computes update theirs too: retry on
    a generation conflict)."""
    for _ in range(20):
        body = _placement(conn, "GET", f"/resource_providers/{rp}/traits").json()
        traits = set(body["traits"])
        if add:
            traits.add(add)
        if remove:
            traits.discard(remove)
        answer = _placement(conn, "PUT", f"/resource_providers/{rp}/traits",
                            json={"traits": sorted(traits),
                                  "resource_provider_generation": body["resource_provider_generation"]})
        if answer.status_code == 200:
            return
        assert answer.status_code == 409, answer.text
    raise AssertionError(f"could not change the traits of {rp}")


@pytest.fixture
def trait_flavor(minicloud):
    """A flavor like m1.nano that requires a new custom trait; yields (flavor, trait, providers
    that got the trait); the trait is taken off them and deleted afterwards."""
    conn = minicloud.conn()
    tag = uuid.uuid4().hex[:8].upper()
    trait = f"CUSTOM_NOVAMOVE_REPLAN_{tag}"
    nano = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    answer = _placement(conn, "PUT", f"/traits/{trait}")
    assert answer.status_code in (201, 204), answer.text
    flavor = conn.compute.create_flavor(name=f"replan-{tag.lower()}", ram=nano.ram, vcpus=nano.vcpus,
                                        disk=nano.disk, is_public=True)
    given: list[str] = []
    try:
        conn.compute.create_flavor_extra_specs(flavor, {f"trait:{trait}": "required"})
        yield flavor, trait, given
    finally:
        conn.compute.delete_flavor(flavor, ignore_missing=True)
        for rp in given:
            _change_traits(conn, rp, remove=trait)
        _placement(conn, "DELETE", f"/traits/{trait}")


def test_a_destination_nova_refused_is_avoided_when_the_drain_plans_again(minicloud, servers, trait_flavor,
                                                                          tmp_path):
    conn = minicloud.conn()
    flavor, trait, given = trait_flavor
    hosts = {r["host"]: r for r in json.loads(minicloud.cli("hosts", "-f", "json", check=True).stdout)}
    rp = {host: _provider(conn, row["hypervisor_hostname"]) for host, row in hosts.items()}
    # The planner sends a server where the most RAM is free: make that REFUSED, by a clear margin
    # (a filler on OTHER if need be), so no allocation coming or going meanwhile changes it.
    free = {h: row["memory_mb"] - row["memory_mb_used"] for h, row in hosts.items()}
    short = free[OTHER] - free[REFUSED] + 1024
    if short > 0:
        size = min((f for f in conn.compute.flavors() if f.ram >= short), key=lambda f: f.ram)
        servers(1, host=OTHER, flavor=size.name, prefix="replan-filler")
    _change_traits(conn, rp[SOURCE], add=trait)
    given.append(rp[SOURCE])
    _change_traits(conn, rp[OTHER], add=trait)
    given.append(rp[OTHER])
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
