"""The CLI's TLS options against a throw-away two-compute minicloud served over HTTPS with its
own CA (`minicloud up --tls`): a named cloud without `cacert` fails in one line, and works with
--os-cacert, with OS_CACERT on top of the named cloud, and with --insecure; a move works."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time

import pytest
import yaml

from novamove.minicloud import Minicloud

pytestmark = pytest.mark.acceptance

PORT = int(os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT") or 17000) + 40

def _has_tls() -> bool:
    from novamove.minicloud import configs
    return "tls" in getattr(configs, "OPTION_DEFAULTS", {}) or "tls" in inspect.signature(Minicloud.up).parameters


if not _has_tls():
    pytest.skip("this minicloud has no --tls", allow_module_level=True)


def _novamove(*args: str, env: dict, drop: tuple = ()) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    for key in drop:
        full.pop(key, None)
    return subprocess.run([sys.executable, "-m", "novamove", *args], capture_output=True, text=True, env=full,
                          timeout=600)


@pytest.fixture(scope="module")
def tls(tmp_path_factory, minicloud):
    """(Minicloud, env of a named cloud whose clouds.yaml has no cacert). `minicloud` first, so
    that two start-ups never overlap."""
    state = tmp_path_factory.mktemp("cli-tls") / "mc"
    env = {"NOVAMOVE_MINICLOUD_DIR": str(state)}
    t0 = time.monotonic()
    up = _novamove("minicloud", "up", "--computes", "2", "--base-port", str(PORT), "--tls", env=env)
    print(f"\n[cli-tls] minicloud up --tls (2 computes) took {time.monotonic() - t0:.1f}s", file=sys.stderr)
    cloud = Minicloud(state)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        lay = cloud.layout
        data = yaml.safe_load(lay.clouds_yaml.read_text())
        for c in data["clouds"].values():
            c.pop("cacert", None)
        bare = state.parent / "clouds-no-ca.yaml"
        bare.write_text(yaml.safe_dump(data))
        bare.chmod(0o600)
        yield cloud, {"OS_CLIENT_CONFIG_FILE": str(bare), "OS_CLOUD": "minicloud",
                      "NOVAMOVE_JOURNAL": str(state.parent / "journal.sqlite")}
    finally:
        _novamove("minicloud", "down", env=env)


def test_named_cloud_without_ca_fails_in_one_line(tls):
    _, env = tls
    out = _novamove("hosts", env=env, drop=("OS_CACERT",))
    assert out.returncode == 6, out.stderr
    assert out.stderr.count("\n") == 1 and "certificate" in out.stderr.lower() and "Traceback" not in out.stderr


def test_os_cacert_option_before_or_after_the_verb_and_variable_on_a_named_cloud(tls):
    cloud, env = tls
    ca = str(cloud.layout.ca_cert)
    for argv in (["--os-cacert", ca, "hosts", "-f", "value", "-c", "host"],
                 ["hosts", "-f", "value", "-c", "host", "--os-cacert", ca]):
        out = _novamove(*argv, env=env, drop=("OS_CACERT",))
        assert out.returncode == 0, out.stderr
        assert "compute1" in out.stdout.split()
    out = _novamove("hosts", "-f", "value", "-c", "host", env={**env, "OS_CACERT": ca})
    assert out.returncode == 0, out.stderr


def test_insecure(tls):
    _, env = tls
    out = _novamove("hosts", "--insecure", "-f", "json", env=env, drop=("OS_CACERT",))
    assert out.returncode == 0, out.stderr
    out = _novamove("hosts", "-f", "json", env={**env, "OS_INSECURE": "true"}, drop=("OS_CACERT",))
    assert out.returncode == 0, out.stderr


def test_a_move_over_tls_with_os_cacert(tls):
    cloud, env = tls
    ca = str(cloud.layout.ca_cert)
    conn = cloud.connection("minicloud")
    from novamove.cloud.provision import ensure_image
    server = conn.compute.create_server(name="tls-move", image_id=ensure_image(conn), networks="none",
                                        flavor_id=conn.compute.find_flavor("m1.nano", ignore_missing=False).id,
                                        availability_zone=f"nova:{cloud.layout.compute_host(1)}")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=180, interval=1)
    try:
        target = cloud.layout.compute_host(2)
        out = _novamove("migrate", server.id, "--to", target, "-q", "--os-cacert", ca, "-f", "value",
                        "-c", "dest_compute", env=env, drop=("OS_CACERT",))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == target == conn.compute.get_server(server.id).compute_host
    finally:
        conn.compute.delete_server(server)
