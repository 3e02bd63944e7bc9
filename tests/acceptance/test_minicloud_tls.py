"""A throw-away one-compute minicloud started with --tls and other options of `up`: HTTPS with its
own CA for every API, clients with and without the CA, options kept across down/up, and a switch
back to plain HTTP with reconfigure()."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openstack
import pytest
import yaml

from novamove.minicloud import Minicloud, procs

pytestmark = pytest.mark.acceptance


# `make test` runs the cheap checks of the minicloud itself; the slow ones (a second start-up,
# TLS switched off and on, the control plane restarted, a failed start) run with
# NOVAMOVE_MINICLOUD_ACCEPTANCE=all: `make acceptance-minicloud` (docs/testing.md).
def full(test):
    """The test exists only under NOVAMOVE_MINICLOUD_ACCEPTANCE=all: a skipped test fails CI
    (CI=true, tests/conftest.py), so it is not defined at all otherwise."""
    return test if os.environ.get("NOVAMOVE_MINICLOUD_ACCEPTANCE") == "all" else None

PORT = int(os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT") or 17000) + 70


def _novamove(*args: str, env: dict, drop: tuple = ()) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    for key in drop:
        full.pop(key, None)
    return subprocess.run([sys.executable, "-m", "novamove", *args], capture_output=True,
                          text=True, env=full, timeout=600)


@pytest.fixture(scope="module")
def tls_cloud(tmp_path_factory, minicloud):
    # `minicloud` (the session cloud) first, so that two start-ups never overlap.
    state = tmp_path_factory.mktemp("tls") / "mc"
    env = {"NOVAMOVE_MINICLOUD_DIR": str(state)}
    t0 = time.monotonic()
    up = _novamove("minicloud", "up", "--computes", "1", "--base-port", str(PORT), "--tls",
                   "--max-limit", "2", "--report-interval", "2", "--service-down-time", "8",
                   "--token-expiration", "900", env=env)
    took = time.monotonic() - t0
    print(f"\n[tls] minicloud up --tls (1 compute) took {took:.1f}s", file=sys.stderr)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield Minicloud(state, log=lambda m: print(f"[tls] {m}", file=sys.stderr)), env, up
    finally:
        _novamove("minicloud", "down", env=env)
        assert procs.running(state / "run", state) == {}


@full
def test_tls_material_catalog_and_exports(tls_cloud):
    cloud, env, up = tls_cloud
    lay = cloud.layout
    for path in (lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert f"export OS_CACERT={lay.ca_cert}" in up.stdout
    assert "OS_CACERT" in _novamove("minicloud", "env", env=env).stdout
    clouds = yaml.safe_load(lay.clouds_yaml.read_text())["clouds"]
    assert clouds["minicloud"]["cacert"] == str(lay.ca_cert)
    assert clouds["minicloud"]["auth"]["auth_url"].startswith("https://127.0.0.1:")
    urls = {e.url for e in cloud.connection().identity.endpoints()}
    assert len(urls) == 5 and all(u.startswith("https://127.0.0.1:") for u in urls), urls
    # Every API port speaks TLS and only TLS.
    ctx = ssl.create_default_context(cafile=str(lay.ca_cert))
    for port in (lay.keystone_port, lay.placement_port, lay.nova_port, lay.glance_port,
                 lay.network_port):
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx,
                                        timeout=10) as r:
                code = r.status
        except urllib.error.HTTPError as e:      # keystone's version list is a 300
            code = e.code
        assert code < 500, (port, code)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()


@full
def test_sdk_with_the_ca_works_without_it_fails_and_verify_false_works(tls_cloud):
    cloud, _, _ = tls_cloud
    lay = cloud.layout
    common = dict(auth_url=lay.auth_url, username="admin", password=lay.secrets["admin"],
                  project_name="admin", user_domain_name="Default",
                  project_domain_name="Default", region_name="RegionOne",
                  load_yaml_config=False, load_envvars=False)
    with_ca = openstack.connect(cacert=str(lay.ca_cert), **common)
    assert [s.host for s in with_ca.compute.services() if s.binary == "nova-compute"] == \
        ["compute1"]
    without = openstack.connect(**common)
    with pytest.raises(Exception) as err:
        list(without.compute.services())
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
    insecure = openstack.connect(verify=False, **common)
    assert len(list(insecure.compute.services())) >= 3


@full
def test_novamove_hosts_with_os_cacert_and_with_clouds_yaml_cacert(tls_cloud, tmp_path):
    cloud, env, _ = tls_cloud
    lay = cloud.layout
    # clouds.yaml's cacert
    out = _novamove("hosts", env={**cloud.env(), "OS_CLOUD": "minicloud"}, drop=("OS_CACERT",))
    assert out.returncode == 0, out.stderr
    assert "compute1" in out.stdout
    # The same cloud without cacert in clouds.yaml: OS_CACERT decides.
    data = yaml.safe_load(lay.clouds_yaml.read_text())
    for c in data["clouds"].values():
        c.pop("cacert", None)
    bare = tmp_path / "clouds.yaml"
    bare.write_text(yaml.safe_dump(data))
    env_vars = {"OS_AUTH_URL": lay.auth_url, "OS_USERNAME": "admin",
                "OS_PASSWORD": lay.secrets["admin"], "OS_PROJECT_NAME": "admin",
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_REGION_NAME": "RegionOne", "OS_IDENTITY_API_VERSION": "3",
                "OS_CLIENT_CONFIG_FILE": str(bare)}
    out = _novamove("hosts", env={**env_vars, "OS_CACERT": str(lay.ca_cert)}, drop=("OS_CLOUD",))
    assert out.returncode == 0, out.stderr
    assert "compute1" in out.stdout
    out = _novamove("hosts", env=env_vars, drop=("OS_CLOUD", "OS_CACERT"))
    assert out.returncode == 6, out.stderr                # EXIT_UNREACHABLE
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "not trusted" in out.stderr and "--os-cacert" in out.stderr, out.stderr   # names the fix


@full
def test_options_are_written_and_kept_across_down_and_up(tls_cloud):
    cloud, env, _ = tls_cloud
    lay = cloud.layout
    nova = (lay.etc / "nova" / "nova.conf").read_text()
    for line in ("max_limit = 2", "report_interval = 2", "service_down_time = 8",
                 f"cafile = {lay.ca_cert}"):
        assert line in nova, line
    assert "expiration = 900" in (lay.etc / "keystone" / "keystone.conf").read_text()
    assert _novamove("minicloud", "down", env=env).returncode == 0
    t0 = time.monotonic()
    again = _novamove("minicloud", "up", env=env)             # no options given
    print(f"\n[tls] second up --tls took {time.monotonic() - t0:.1f}s", file=sys.stderr)
    assert again.returncode == 0, again.stderr[-3000:]
    assert cloud.options == {"tls": True, "max_limit": 2, "report_interval": 2,
                             "service_down_time": 8, "token_expiration": 900}
    page = cloud.connection().compute.get("/flavors").json()
    assert len(page["flavors"]) == 2                           # max_limit still 2
    assert cloud.layout.auth_url.startswith("https://")


@full
def test_reconfigure_tls_off_and_on_again(tls_cloud):
    cloud, env, _ = tls_cloud
    t0 = time.monotonic()
    restarted = cloud.reconfigure(tls=False)
    print(f"\n[tls] reconfigure(tls=False) took {time.monotonic() - t0:.1f}s", file=sys.stderr)
    assert "keystone" in restarted and "nova-compute-compute1" in restarted
    assert "mariadb" not in restarted and "rabbitmq" not in restarted
    urls = {e.url for e in cloud.connection().identity.endpoints()}
    assert all(u.startswith("http://127.0.0.1:") for u in urls), urls
    assert "OS_CACERT" not in cloud.env()
    out = _novamove("hosts", env={**cloud.env(), "OS_CLOUD": "minicloud"}, drop=("OS_CACERT",))
    assert out.returncode == 0 and "compute1" in out.stdout, out.stderr
    cloud.reconfigure(tls=True)
    urls = {e.url for e in cloud.connection().identity.endpoints()}
    assert all(u.startswith("https://127.0.0.1:") for u in urls), urls
    services = {s.binary: s.state for s in cloud.connection().compute.services()}
    assert services == {"nova-compute": "up", "nova-conductor": "up", "nova-scheduler": "up"}
