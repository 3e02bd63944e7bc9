"""TLS: the `openstack` CLI plugin and the Ansible modules against a throw-away two-compute
minicloud started with --tls (HTTPS everywhere, its own CA), with clients that are not told
about that CA unless the test says so.

- `openstack server move`: fails on the untrusted certificate (in OSC's own authentication,
  exactly as `openstack server list` does), works with `--os-cacert`, works with `--insecure`.
- Ansible modules with a cloud dict that names no CA: `ca_cert` (and alias `cacert`) work,
  `validate_certs: false` works, neither is a one-line SSL error.

Needs `novamove minicloud up --tls` (the minicloud branch). Ports: NOVAMOVE_MINICLOUD_BASE_PORT
+ 80 onwards (the session minicloud uses the first ones, the minicloud's own TLS test +70).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cloudtest import REPO
from conftest import MiniCloudHandle
from novamove.minicloud import Minicloud
from test_ansible_playbook import ansible_env, collections_path, run_playbook  # noqa: F401

pytestmark = pytest.mark.acceptance

PORT = int(os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT") or 17000) + 80
OPENSTACK = Path(sys.executable).with_name("openstack")


def _novamove(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "novamove", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=900, cwd=REPO)


@pytest.fixture(scope="module")
def tls_cloud(tmp_path_factory, minicloud):
    """(handle, CA path, clouds.yaml without the CA). `minicloud` (the session cloud) first, so
    two start-ups never overlap."""
    from novamove.minicloud import configs
    if "tls" not in getattr(configs, "OPTION_DEFAULTS", {}):
        pytest.skip("this novamove's minicloud has no --tls yet (it comes with the minicloud branch)")
    state = tmp_path_factory.mktemp("osc-tls") / "mc"
    env = {"NOVAMOVE_MINICLOUD_DIR": str(state)}
    t0 = time.monotonic()
    up = _novamove("minicloud", "up", "--computes", "2", "--base-port", str(PORT), "--tls", env=env)
    print(f"\n[osc-tls] minicloud up --tls (2 computes) took {time.monotonic() - t0:.1f}s",
          file=sys.stderr)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        manager = Minicloud(state)
        lay = manager.layout
        handle = MiniCloudHandle(manager, manager.env(),
                                 [lay.compute_host(i) for i in range(1, lay.computes + 1)])
        config = yaml.safe_load(Path(handle.env["OS_CLIENT_CONFIG_FILE"]).read_text())
        for entry in config["clouds"].values():
            entry.pop("cacert", None)
        no_ca = state.parent / "clouds-without-ca.yaml"
        no_ca.write_text(yaml.safe_dump(config))
        os.chmod(no_ca, 0o600)
        yield handle, str(lay.ca_cert), str(no_ca), config["clouds"]["minicloud"]
    finally:
        _novamove("minicloud", "down", env=env)


def test_openstack_plugin_needs_the_ca_and_works_with_cacert_or_insecure(tls_cloud, tmp_path):
    mc, ca, no_ca, _ = tls_cloud
    if not OPENSTACK.exists():
        pytest.skip("python-openstackclient is not installed next to this Python")
    source, target = mc.computes[0], mc.computes[1]
    [vm] = mc.boot(1, host=source, prefix="osc-tls")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(OS_CLIENT_CONFIG_FILE=no_ca, OS_CLOUD="minicloud",
               NOVAMOVE_JOURNAL=str(tmp_path / "journal.sqlite"))

    def osc(*args):
        return subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True,
                              timeout=600, cwd=REPO)

    try:
        migrations = {m.id for m in mc.conn().compute.migrations(instance_uuid=vm.id)}
        # OSC authenticates before it runs any command, so an untrusted certificate fails
        # there, exactly as for `openstack server list`: OSC's exit code and message.
        proc = osc("server", "move", vm.name, "--to", target)
        native = osc("server", "list")
        assert proc.returncode == native.returncode != 0 and proc.stdout == ""
        assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr
        assert mc.host_of(vm.id) == source
        assert {m.id for m in mc.conn().compute.migrations(instance_uuid=vm.id)} == migrations

        proc = osc("--os-cacert", ca, "server", "move", vm.name, "--to", target, "-f", "value",
                   "-c", "Compute Host")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == target and mc.host_of(vm.id) == target

        proc = osc("--insecure", "server", "move", vm.name, "--to", source, "-f", "value",
                   "-c", "Compute Host")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == source and mc.host_of(vm.id) == source
    finally:
        mc.delete([vm])


def test_ansible_ca_cert_and_validate_certs_false(tls_cloud, ansible_env, collections_path,  # noqa: F811
                                                  tmp_path):
    mc, ca, _, cloud = tls_cloud
    cases = {"ca_cert": {"ca_cert": ca}, "cacert": {"cacert": ca},
             "insecure": {"validate_certs": False}, "no_ca": {}}
    tasks = [{"novamove.openstack.compute_host_info": dict(cloud=cloud, api_timeout=20, **options),
              "register": name, "ignore_errors": True} for name, options in cases.items()]
    tasks.append({"ansible.builtin.copy": {
        "content": "{{ {" + ", ".join(f"'{n}': {n}" for n in cases) + "} | to_json }}",
        "dest": str(tmp_path / "tls.json")}})
    playbook = tmp_path / "tls.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = {k: v for k, v in ansible_env.items()
           if k not in ("OS_CACERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    env["OS_CLIENT_CONFIG_FILE"] = str(tmp_path / "no-clouds.yaml")   # only the dict connects
    proc = run_playbook(env, collections_path, playbook=str(playbook), inventory=False)
    assert proc.returncode == 0, proc.output
    out = json.loads((tmp_path / "tls.json").read_text())
    for name in ("ca_cert", "cacert", "insecure"):
        assert not out[name].get("failed"), (name, out[name].get("msg"))
        assert set(mc.computes) <= {h["host"] for h in out[name]["compute_hosts"]}
    assert out["no_ca"]["failed"] is True
    message = out["no_ca"]["msg"]
    assert ("certificate" in message.lower() or "ssl" in message.lower()) and "\n" not in message
    assert out["no_ca"]["exit_code"] in (5, 6)        # EXIT_AUTH / EXIT_UNREACHABLE
