"""The minicloud is a real Nova: computes register, servers boot, targeted moves land, policy holds."""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exc

from cloudtest import wait_until

pytestmark = pytest.mark.acceptance


def test_computes_registered_and_up(minicloud):
    services = minicloud.services()
    assert sorted(services) == sorted(minicloud.computes)
    assert all(v[0] == "enabled" and v[1] == "up" for v in services.values()), services
    hypervisors = {h.name for h in minicloud.conn().compute.hypervisors()}
    # Service host and hypervisor hostname differ, as FQDN vs short name do in real clouds.
    assert hypervisors == {f"{h}.fake.local" for h in minicloud.computes}


def test_admin_boots_servers_on_chosen_fake_hosts(minicloud, servers):
    booted = [servers(1, host=h)[0] for h in minicloud.computes[:2]]
    for server, host in zip(booted, minicloud.computes[:2]):
        assert server.status == "ACTIVE"
        assert server.compute_host == host
        assert server.hypervisor_hostname == f"{host}.fake.local"


def test_cold_migration_to_named_host_at_2_56_then_confirm(minicloud, servers):
    src, dst = minicloud.computes[0], minicloud.computes[1]
    server = servers(1, host=src)[0]
    compute = minicloud.conn().compute
    compute.default_microversion = "2.56"
    try:
        compute.migrate_server(server, host=dst)
    finally:
        compute.default_microversion = None
    s = compute.wait_for_server(server, status="VERIFY_RESIZE", wait=120, interval=1)
    assert s.compute_host == dst
    assert server.id in minicloud.guests(dst)
    compute.confirm_server_resize(server)
    s = compute.wait_for_server(server, status="ACTIVE", wait=60, interval=1)
    assert s.compute_host == dst
    # the fake hypervisors' guest books follow Nova: the confirm removed the source's guest
    assert minicloud.guests(dst)[server.id] == "running" and server.id not in minicloud.guests(src)


def test_live_migration_to_named_host(minicloud, servers):
    src, dst = minicloud.computes[1], minicloud.computes[2]
    server = servers(1, host=src)[0]
    compute = minicloud.conn().compute
    compute.live_migrate_server(server, host=dst, block_migration="auto")
    wait_until(lambda: minicloud.server(server.id).compute_host == dst
               and minicloud.server(server.id).status == "ACTIVE",
               timeout=90, what="live migration to land")
    assert minicloud.guests(dst)[server.id] == "running" and server.id not in minicloud.guests(src)


def test_member_gets_403_on_migrate(minicloud, servers):
    member = minicloud.member_conn()
    server = servers(1, conn=member)[0]
    with pytest.raises(sdk_exc.ForbiddenException):
        member.compute.migrate_server(server)
    with pytest.raises(sdk_exc.ForbiddenException):
        member.compute.live_migrate_server(server, host=None, block_migration="auto")
    assert minicloud.server(server.id).status == "ACTIVE"


def test_status_and_env_commands(minicloud):
    status = minicloud.cli("minicloud", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for host in minicloud.computes:
        assert f"service {host}" in status.stdout
    assert f"service_down_time={minicloud.service_down_time}" in status.stdout.splitlines()[-1]
    env = minicloud.cli("minicloud", "env")
    assert "export OS_CLIENT_CONFIG_FILE=" in env.stdout
    assert "password" not in env.stdout.lower()
