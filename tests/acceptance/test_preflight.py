"""Pre-flight on the minicloud (a real Nova on loopback): a refusal Nova would give is predicted
before any request, with Nova's reason, and leaves nothing behind.

The one cheap test here runs in `make test`. The fixture of >= 10 refusal causes (traits, server
groups, a pinned zone, PCPU, vTPM, memory encryption, ...) built with the fake driver's
per-compute inventory and traits runs only with NOVAMOVE_PREFLIGHT_ACCEPTANCE=1 (`make
acceptance-preflight`; tests/acceptance/preflight_fixture.py), so it is not even defined
without it (a skipped test fails CI).
"""

from __future__ import annotations

import os
import uuid

import pytest

pytestmark = pytest.mark.acceptance

SOURCE, TARGET = "compute1", "compute2"


def placement(conn, method: str, url: str, **kwargs):
    return conn.placement.request(url, method, microversion="1.6", raise_exc=False, **kwargs)


def provider(conn, node: str) -> str:
    [rp] = placement(conn, "GET", "/resource_providers", params={"name": node}).json()["resource_providers"]
    return rp["uuid"]


def change_traits(conn, rp: str, add: str | None = None, remove: str | None = None) -> None:
    """Add or remove one trait of a resource provider (the computes update theirs too: retry on
    a generation conflict)."""
    for _ in range(20):
        body = placement(conn, "GET", f"/resource_providers/{rp}/traits").json()
        traits = set(body["traits"])
        if add:
            traits.add(add)
        if remove:
            traits.discard(remove)
        answer = placement(conn, "PUT", f"/resource_providers/{rp}/traits",
                           json={"traits": sorted(traits),
                                 "resource_provider_generation": body["resource_provider_generation"]})
        if answer.status_code == 200:
            return
        assert answer.status_code == 409, answer.text
    raise AssertionError(f"could not change the traits of {rp}")


def node_of(minicloud, host: str) -> str:
    import json
    rows = json.loads(minicloud.cli("hosts", "-f", "json", check=True).stdout)
    return next(r["hypervisor_hostname"] for r in rows if r["host"] == host)


def test_a_required_trait_missing_on_the_named_target_is_exit_4_with_novas_reason_and_no_migration(
        minicloud, servers):
    conn = minicloud.conn()
    tag = uuid.uuid4().hex[:8].upper()
    trait = f"CUSTOM_NOVAMOVE_PREFLIGHT_{tag}"
    nano = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    assert placement(conn, "PUT", f"/traits/{trait}").status_code in (201, 204)
    flavor = conn.compute.create_flavor(name=f"preflight-{tag.lower()}", ram=nano.ram, vcpus=nano.vcpus,
                                        disk=nano.disk, is_public=True)
    rp = provider(conn, node_of(minicloud, SOURCE))
    try:
        conn.compute.create_flavor_extra_specs(flavor, {f"trait:{trait}": "required"})
        change_traits(conn, rp, add=trait)       # only the source has it: the server boots there
        [vm] = servers(1, host=SOURCE, flavor=flavor.name, prefix="preflight")

        out = minicloud.cli("migrate", vm.id, "--to", TARGET)
    finally:
        conn.compute.delete_flavor(flavor, ignore_missing=True)
        change_traits(conn, rp, remove=trait)
        placement(conn, "DELETE", f"/traits/{trait}")

    assert out.returncode == 4, out.stdout + out.stderr
    assert (f"Nova would refuse to move {vm.name} to {TARGET}: No valid host was found: {TARGET} lacks "
            f"the trait {trait} that {vm.name} requires (flavor {flavor.name}: trait:{trait}=required)"
            in out.stderr), out.stderr
    # Nothing was asked of Nova: no migration record, the server where it was.
    assert list(conn.compute.migrations(instance_uuid=vm.id)) == []
    server = minicloud.server(vm.id)
    assert (server.compute_host, server.status) == (SOURCE, "ACTIVE")


if os.environ.get("NOVAMOVE_PREFLIGHT_ACCEPTANCE") == "1":
    from preflight_fixture import test_preflight_fixture_refuses_before_any_request  # noqa: F401
