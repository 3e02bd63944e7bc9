"""`novamove hosts` shows the service-host / hypervisor-hostname mapping and real usage."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.acceptance


def test_hosts_lists_mapping_status_and_usage(minicloud, servers):
    host = minicloud.computes[0]
    before = {r["host"]: r for r in json.loads(minicloud.cli("hosts", "-f", "json", check=True).stdout)}
    servers(1, host=host, flavor="m1.small")      # 1 vCPU, 512 MB, 5 GB
    out = minicloud.cli("hosts", "-f", "json", check=True)
    rows = {r["host"]: r for r in json.loads(out.stdout)}
    assert sorted(rows) == sorted(minicloud.computes)
    assert rows[host]["hypervisor_hostname"] == f"{host}.fake.local"
    assert rows[host]["status"] == "enabled" and rows[host]["state"] == "up"
    assert rows[host]["memory_mb_used"] == before[host]["memory_mb_used"] + 512
    assert rows[host]["vcpus_used"] == before[host]["vcpus_used"] + 1
    table = minicloud.cli("hosts", check=True).stdout
    assert f"{host}.fake.local" in table       # not truncated when piped


def test_hosts_without_credentials_is_one_line_error(minicloud, tmp_path):
    empty = tmp_path / "clouds.yaml"
    empty.write_text("clouds: {}\n")
    out = minicloud.cli("hosts", cloud=None, env={"OS_CLIENT_CONFIG_FILE": str(empty)})
    assert out.returncode == 5, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("novamove: error:")
