"""The minicloud's pure parts: option checking, config rendering, the saved layout, TLS material,
the HTTPS WSGI server (a real socket on loopback), one-component stop, and the pinned venv."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from novamove.minicloud import configs, procs, tls, venv
from novamove.minicloud.configs import Layout
from novamove.minicloud.manager import Minicloud, MinicloudError, UnknownComponent

RUNTIME = Path(configs.__file__).with_name("runtime")
SECRETS = {n: f"pw-{n}" for n in ("mysql", "rabbit", "admin", "member", *configs.SERVICE_USERS)}


def layout(tmp_path, **options) -> Layout:
    return Layout(tmp_path, 17000, 2, dict(SECRETS), options)


# -- options -------------------------------------------------------------------------------------
def test_check_options_types_and_unknown_names():
    assert configs.check_options({"tls": 1, "max_limit": 5}) == {"tls": True, "max_limit": 5}
    for bad in ({"max_limit": 0}, {"report_interval": 2.5}, {"token_expiration": True},
                {"max_limit": "x"}):
        with pytest.raises((ValueError, TypeError)):
            configs.check_options(bad)
    with pytest.raises(ValueError, match="unknown minicloud option 'paging'"):
        configs.check_options({"paging": 1})


def test_defaults_render_as_before(tmp_path):
    lay = layout(tmp_path)
    nova = configs.nova_conf(lay, tmp_path / "paste.ini")
    assert "report_interval = 5\n" in nova and "service_down_time = 20\n" in nova
    assert "max_limit = 1000\n" in nova and "cafile" not in nova
    assert "expiration = 3600\n" in configs.keystone_conf(lay)
    assert lay.auth_url == "http://127.0.0.1:17000/v3"
    assert "cacert" not in configs.clouds_yaml(lay)


def test_options_reach_their_service_options(tmp_path):
    lay = layout(tmp_path, max_limit=7, report_interval=2, service_down_time=8,
                 token_expiration=600, tls=True)
    nova = configs.nova_conf(lay, tmp_path / "paste.ini")
    assert "report_interval = 2\n" in nova and "service_down_time = 8\n" in nova
    assert "[api]\nauth_strategy = keystone\nmax_limit = 7\n" in nova
    assert "[token]\nprovider = fernet\nexpiration = 600\n" in configs.keystone_conf(lay)
    # every client section of nova trusts the CA, and so do the services' auth middleware
    for section in ("keystone_authtoken", "placement", "neutron", "service_user", "glance",
                    "keystone"):
        body = nova.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        assert f"cafile = {lay.ca_cert}" in body, section
    for conf in (configs.placement_conf(lay), configs.glance_conf(lay, tmp_path / "p.ini")):
        assert f"cafile = {lay.ca_cert}" in conf
    assert lay.auth_url == "https://127.0.0.1:17000/v3"
    assert f"www_authenticate_uri = https://127.0.0.1:17000/v3" in nova
    clouds = yaml.safe_load(configs.clouds_yaml(lay))["clouds"]
    assert {c["cacert"] for c in clouds.values()} == {str(lay.ca_cert)}


def test_options_are_saved_with_the_layout_and_loaded_back(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    lay = Layout(cloud.state, 17100, 2, dict(SECRETS), {"max_limit": 3, "tls": True})
    cloud._save_layout(lay, tmp_path / "venv")
    assert stat.S_IMODE(cloud._settings_path.stat().st_mode) == 0o600
    assert json.loads(cloud._settings_path.read_text())["options"] == {"max_limit": 3, "tls": True}
    assert cloud.options == {**configs.OPTION_DEFAULTS, "max_limit": 3, "tls": True}
    assert cloud.env()["OS_CACERT"] == str(cloud.layout.ca_cert)


def test_reconfigure_of_a_stopped_minicloud_only_saves(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    cloud._save_layout(Layout(cloud.state, 17100, 2, dict(SECRETS)), tmp_path / "venv")
    assert cloud.reconfigure(max_limit=4, token_expiration=None) == []
    assert cloud.options["max_limit"] == 4
    assert cloud.reconfigure(max_limit=4) == []                 # nothing changed
    with pytest.raises(MinicloudError, match="service_down_time .* must be longer"):
        cloud.reconfigure(report_interval=30)
    assert cloud.options["report_interval"] == 5                # refused: not saved


def test_component_names(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    cloud._save_layout(Layout(cloud.state, 17100, 2, dict(SECRETS)), tmp_path / "venv")
    assert cloud.components()[-2:] == ["nova-compute-compute1", "nova-compute-compute2"]
    assert cloud.component_name("compute2") == "nova-compute-compute2"
    assert cloud.component_name("keystone") == "keystone"
    with pytest.raises(UnknownComponent, match="no compute host 'compute9'"):
        cloud.compute_component("compute9")
    with pytest.raises(UnknownComponent, match="no component 'nova'"):
        cloud.component_name("nova")
    with pytest.raises(UnknownComponent):
        cloud.compute_component("nova-api")


def test_cli_unknown_host_exits_3_with_one_line(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    cloud._save_layout(Layout(cloud.state, 17100, 2, dict(SECRETS)), tmp_path / "venv")
    out = subprocess.run([sys.executable, "-m", "novamove", "minicloud", "stop-compute", "nope",
                          "--dir", str(cloud.state)], capture_output=True, text=True)
    assert out.returncode == 3
    assert out.stderr.startswith("novamove: error: no compute host 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1


# -- TLS -----------------------------------------------------------------------------------------
def test_tls_material_is_owner_only_and_chains(tmp_path):
    lay = layout(tmp_path, tls=True)
    assert tls.ensure(lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key)
    assert not tls.ensure(lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key)  # kept
    for path in (lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(lay.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(lay.server_cert.read_bytes())
    # what cryptography 40's verify_directly_issued_by does, spelled out for the floor (3.1)
    assert server.issuer == ca.subject
    ca.public_key().verify(server.signature, server.tbs_certificate_bytes,
                           ec.ECDSA(server.signature_hash_algorithm))
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wsgi_serves_the_first_app_this_release_has(monkeypatch, tmp_path):
    """Today's `<service>.wsgi.api` modules first, then the 2024.1 factory they replaced; a
    module that exists but fails to import is an error, not a reason to try the next."""
    spec = importlib.util.spec_from_file_location("novamove_wsgi", RUNTIME / "novamove_wsgi.py")
    wsgi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wsgi)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    target, attr, app = wsgi.load("novamove_no_such.wsgi.api:application,json:dumps")
    assert (target, attr, app) == ("json:dumps", "dumps", json.dumps)
    (tmp_path / "novamove_broken_app.py").write_text("import novamove_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="novamove_missing_dependency"):
        wsgi.load("novamove_broken_app:application,json:dumps")


@pytest.fixture
def https_app(tmp_path, monkeypatch):
    """novamove_wsgi's server with TLS, serving a tiny WSGI app on a free loopback port."""
    lay = layout(tmp_path, tls=True)
    tls.ensure(lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key)
    spec = importlib.util.spec_from_file_location("novamove_wsgi", RUNTIME / "novamove_wsgi.py")
    wsgi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wsgi)
    monkeypatch.setenv("NOVAMOVE_TLS_CERT", str(lay.server_cert))
    monkeypatch.setenv("NOVAMOVE_TLS_KEY", str(lay.server_key))

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.url_scheme"].encode()]

    port = _free_port()
    server = wsgi.make_server("127.0.0.1", port, app, server_class=wsgi.ThreadingWSGIServer,
                              handler_class=wsgi.QuietHandler)
    server.ssl_context = wsgi.tls_context()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield lay, port
    server.shutdown()
    server.server_close()


def test_wsgi_server_speaks_https_with_our_ca(https_app):
    lay, port = https_app
    ctx = ssl.create_default_context(cafile=str(lay.ca_cert))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx, timeout=5) as r:
        assert r.read() == b"https"             # the app sees https (links it builds)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=5)
    # A refused handshake does not stop the server: the next good client is served.
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx, timeout=5) as r:
        assert r.status == 200


def test_a_stalled_tls_client_does_not_block_others(https_app):
    lay, port = https_app
    stalled = socket.create_connection(("127.0.0.1", port))   # connects, never says hello
    try:
        ctx = ssl.create_default_context(cafile=str(lay.ca_cert))
        t0 = time.monotonic()
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx, timeout=5) as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 3
    finally:
        stalled.close()


# -- processes -----------------------------------------------------------------------------------
def test_stop_one_ends_the_whole_group_and_spares_others(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "log"
    sh = ["sh", "-c", "sleep 300 & sleep 300"]
    procs.start("a", sh, {}, run, logs, tmp_path)
    procs.start("b", sh, {}, run, logs, tmp_path)
    try:
        alive = procs.running(run, tmp_path)
        assert set(alive) == {"a", "b"}
        session_a = procs.session_of(alive["a"])
        assert procs.stop_one(run, tmp_path, "a", grace=5)
        assert set(procs.running(run, tmp_path)) == {"b"}
        assert not (run / "a.pid").exists()
        left = [p for p in procs.leftover(tmp_path, {session_a})
                if procs.session_of(p) == session_a]
        assert left == []
        assert not procs.stop_one(run, tmp_path, "a")          # not running: False
        assert procs.stop_one(run, tmp_path, "b", kill=True)
        assert procs.running(run, tmp_path) == {}
    finally:
        procs.stop_all(run, tmp_path, [])


# -- the pinned venv -----------------------------------------------------------------------------
NOVA_OF_RELEASE = {"2025.2": "34.0.0", "2024.1": "29.4.0"}


@pytest.mark.parametrize("release", sorted(venv.RELEASES))
def test_constraints_pin_every_requirement_and_enter_the_venv_hash(release):
    requirements, constraints = venv.RELEASES[release]
    pinned = {}
    for line in constraints.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pinned[name.lower().replace("_", "-")] = version
    for line in requirements.read_text().splitlines():
        if line and not line.startswith("#"):
            name = line.split("=")[0].split(">")[0].split("<")[0].strip().lower()
            assert name in pinned, name
            if "==" in line:                     # the release's own services: as required
                assert pinned[name] == line.split("==")[1].strip(), name
    assert pinned["nova"] == NOVA_OF_RELEASE[release]
    assert len(pinned) > 100                     # the whole stack, not just the top level
    assert constraints.read_bytes() in venv.pins(release)
    # the package ships the files (pyproject's package-data "*.txt")
    assert requirements.parent == constraints.parent == Path(venv.__file__).parent


def test_each_release_has_its_own_venv_and_the_default_keeps_its_path(monkeypatch, tmp_path):
    monkeypatch.delenv("NOVAMOVE_OS_VENV", raising=False)
    monkeypatch.delenv("NOVAMOVE_OS_RELEASE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert venv.chosen_release() == venv.DEFAULT_RELEASE == "2025.2"
    assert venv.default_path() == venv.default_path("2025.2")
    assert venv.default_path("2024.1") != venv.default_path("2025.2")
    # the default's pins are requirements.txt + constraints.txt, as before releases existed
    assert venv.pins() == (venv.REQUIREMENTS.read_bytes() + b"\n# constraints\n"
                           + venv.CONSTRAINTS.read_bytes())
    monkeypatch.setenv("NOVAMOVE_OS_RELEASE", "2024.1")
    assert venv.chosen_release() == "2024.1" and venv.chosen_release("2025.2") == "2025.2"
    with pytest.raises(venv.UnknownRelease, match="unknown OpenStack release '1999.1'.*2024.1"):
        venv.chosen_release("1999.1")


def test_a_venv_built_for_other_pins_is_refused_not_reinstalled(tmp_path, monkeypatch):
    built = tmp_path / "os-venv"
    built.mkdir()
    (built / ".novamove-ready").write_bytes(venv.pins("2025.2"))
    monkeypatch.setattr(venv, "_build", lambda *a: pytest.fail("must not install"))
    assert venv.ensure(built, release="2025.2") == built
    with pytest.raises(venv.VenvMismatch, match="not built from the pins of release 2024.1"):
        venv.ensure(built, release="2024.1")
    assert (built / ".novamove-ready").read_bytes() == venv.pins("2025.2")


def test_up_refuses_an_unknown_release_before_any_change(tmp_path, monkeypatch):
    import novamove.minicloud.manager as mgr
    reached = []
    monkeypatch.setattr(mgr, "check_system_packages", lambda: reached.append("packages"))
    with pytest.raises(ValueError, match="unknown OpenStack release"):
        Minicloud(tmp_path / "mc", log=lambda m: None).up(release="1999.1")
    assert reached == [] and not (tmp_path / "mc").exists()


def test_the_release_is_kept_in_the_state_directory(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    assert cloud.saved_release() is None
    lay = Layout(cloud.state, 17000, 2, SECRETS, {})
    cloud._save_layout(lay, tmp_path / "venv", "2024.1")
    assert cloud.saved_release() == "2024.1"
    cloud._save_layout(lay, tmp_path / "venv")              # reconfigure keeps it
    assert cloud.saved_release() == "2024.1"
    data = json.loads(cloud._settings_path.read_text())
    del data["release"]                                     # a directory from before releases
    cloud._settings_path.write_text(json.dumps(data))
    assert cloud.saved_release() == venv.DEFAULT_RELEASE


def test_up_never_uses_or_deletes_a_directory_it_did_not_make(tmp_path, monkeypatch):
    import novamove.minicloud.manager as mgr
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_text("precious")
    reached = []
    monkeypatch.setattr(mgr, "check_system_packages", lambda: reached.append("packages"))
    with pytest.raises(MinicloudError, match="not made by `novamove minicloud up`: refusing"):
        Minicloud(mine, log=lambda m: None).up(computes=2, clean=True)
    assert (mine / "holiday.jpg").read_text() == "precious" and reached == []
    # an earlier minicloud's directory (its marker) is one it may clear
    ours = tmp_path / "mc"
    ours.mkdir()
    (ours / mgr.STATE_MARKER).touch()
    (ours / "old.log").write_text("x")
    cloud = Minicloud(ours, log=lambda m: None)
    assert cloud._made_here()
    cloud._refuse_foreign_dir()                     # no refusal
    empty = tmp_path / "empty"
    empty.mkdir()
    Minicloud(empty, log=lambda m: None)._refuse_foreign_dir()


def test_a_failed_mariadb_install_leaves_no_data_directory_and_uses_its_own_tmpdir(tmp_path, monkeypatch):
    """A half-made data directory would pass for an installed one at the next `up` (which
    installs only when mysql/mysql is missing); and the install's temporary files are kept out
    of /tmp, where other miniclouds and test databases work."""
    from novamove.minicloud import manager
    lay = layout(tmp_path)
    calls = []

    def failing_install(self, name, argv, stdin=None, **env):
        calls.append(argv)
        (tmp_path / "mysql" / "mysql").mkdir(parents=True)      # what a failed install leaves
        raise manager._ComponentFailed(name, "mariadb-install-db ... exited 1")
    monkeypatch.setattr(manager._Starter, "_run", failing_install)
    starter = manager._Starter(lay, tmp_path / "venv", lambda m: None)
    with pytest.raises(manager._ComponentFailed):
        starter._start_mariadb()
    assert not (tmp_path / "mysql").exists()
    assert f"--tmpdir={tmp_path / 'mysql-tmp'}" in calls[0]
