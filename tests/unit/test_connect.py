"""novamove.cloud.connect and ConnectionSpec: OS_* variables on top of a named cloud (as
python-openstackclient does), the 60 s default timeout, and the compute microversion ceiling.
No request is made: openstacksdk only reads its configuration here."""

from __future__ import annotations

import pytest

from novamove import api, errors
from novamove.cloud import connect
from novamove.cloud.spec import ConnectionSpec

AUTH = ('{auth_url: "http://127.0.0.1:9/v3", username: u, password: s3cr3t-pw, project_name: p, '
        'user_domain_name: Default, project_domain_name: Default}')


@pytest.fixture
def clouds(tmp_path, monkeypatch):
    path = tmp_path / "clouds.yaml"
    path.write_text(f"""clouds:
  plain:
    auth: {AUTH}
    regions: [R1, R2]
  pinned:
    auth: {AUTH}
    compute_api_version: "2.60"
    api_timeout: 5
  newest:
    auth: {AUTH}
    compute_api_version: "2"
""")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    for var in ("OS_CLOUD", "OS_REGION_NAME", "OS_INTERFACE", "OS_CACERT", "OS_CERT", "OS_KEY", "OS_INSECURE",
                "OS_API_TIMEOUT", "OS_COMPUTE_API_VERSION", "NOVAMOVE_MAX_MICROVERSION", "OS_AUTH_URL"):
        monkeypatch.delenv(var, raising=False)
    return path


def test_os_variables_count_on_top_of_a_named_cloud(clouds, monkeypatch):
    monkeypatch.setenv("OS_INTERFACE", "internal")
    monkeypatch.setenv("OS_CACERT", "/etc/ssl/our-ca.pem")
    monkeypatch.setenv("OS_REGION_NAME", "R2")
    c = connect("plain")
    assert c.conn.config.get_interface() == "internal"
    assert c.conn.config.get_region_name() == "R2"
    assert c.conn.session.verify == "/etc/ssl/our-ca.pem"


def test_explicit_options_win_over_the_variables(clouds, monkeypatch):
    monkeypatch.setenv("OS_INTERFACE", "internal")
    c = connect(ConnectionSpec(cloud="plain", interface="admin", verify=False))
    assert c.conn.config.get_interface() == "admin"
    assert c.conn.session.verify is False


def test_os_insecure_and_client_certificates(clouds, monkeypatch):
    monkeypatch.setenv("OS_INSECURE", "true")
    monkeypatch.setenv("OS_CERT", "/tmp/client.pem")
    monkeypatch.setenv("OS_KEY", "/tmp/client.key")
    c = connect("plain")
    assert c.conn.session.verify is False
    assert c.conn.session.cert == ("/tmp/client.pem", "/tmp/client.key")


def test_environ_can_be_turned_off(clouds, monkeypatch):
    monkeypatch.setenv("OS_INTERFACE", "internal")
    c = connect("plain", environ={})
    assert c.conn.config.get_interface() == "public" and c.conn.config.get_region_name() == "R1"


def test_default_api_timeout_is_60_seconds_unless_configured(clouds, monkeypatch):
    assert connect("plain").conn.session.timeout == 60
    assert connect("pinned").conn.session.timeout == 5
    assert connect("plain", api_timeout=12).conn.session.timeout == 12
    monkeypatch.setenv("OS_API_TIMEOUT", "7")
    assert connect("plain").conn.session.timeout == 7


def test_clouds_yaml_compute_api_version_is_a_ceiling(clouds, monkeypatch):
    assert connect("pinned")._cap == (2, 60)
    assert connect("newest")._cap is None                 # "2": any 2.x
    assert connect("pinned", compute_api_version="2.53")._cap == (2, 53)
    assert connect("pinned", compute_api_version="latest")._cap is None
    monkeypatch.setenv("OS_COMPUTE_API_VERSION", "2.40")
    assert connect("pinned")._cap == (2, 40)


@pytest.mark.parametrize("value", ["latest", "2.95", "LATEST"])
def test_deprecated_max_microversion_still_works(clouds, monkeypatch, value):
    monkeypatch.setenv("NOVAMOVE_MAX_MICROVERSION", value)
    cap = connect("plain")._cap
    assert cap == (None if value.lower() == "latest" else (2, 95))


def test_a_bare_major_version_means_no_ceiling(clouds, monkeypatch):
    monkeypatch.setenv("OS_COMPUTE_API_VERSION", "2")       # what many openrc files set
    assert connect("pinned")._cap is None


@pytest.mark.parametrize("value", ["3", "2.x", "two", "2.1.1", ""])
def test_a_malformed_compute_api_version_is_a_usage_error(clouds, value):
    if value == "":
        assert connect("plain", compute_api_version=None)._cap is None
        return
    with pytest.raises(errors.UsageError) as exc:
        connect("plain", compute_api_version=value)
    assert "2.NN" in str(exc.value) and "\n" not in str(exc.value)


def test_malformed_variables_are_usage_errors(clouds, monkeypatch):
    monkeypatch.setenv("NOVAMOVE_MAX_MICROVERSION", "latest-ish")
    with pytest.raises(errors.UsageError, match="NOVAMOVE_MAX_MICROVERSION"):
        connect("plain")
    monkeypatch.delenv("NOVAMOVE_MAX_MICROVERSION")
    monkeypatch.setenv("OS_API_TIMEOUT", "soon")
    with pytest.raises(errors.UsageError, match="OS_API_TIMEOUT"):
        connect("plain")
    with pytest.raises(errors.UsageError, match="interface"):
        connect("plain", interface="private", environ={})


def test_unknown_cloud_is_an_auth_error(clouds):
    with pytest.raises(errors.AuthError, match="nope"):
        connect("nope")


def test_a_whole_cloud_dict_gets_no_overlay(monkeypatch):
    monkeypatch.setenv("OS_INTERFACE", "internal")
    spec = ConnectionSpec(cloud={"auth": {"auth_url": "http://x/v3"}})
    assert spec.with_environment().interface is None
    assert ConnectionSpec(cloud="x").with_environment().interface == "internal"


def test_spec_repr_hides_secrets():
    spec = ConnectionSpec.build({"auth": {"password": "s3cr3t-pw"}}, auth={"password": "s3cr3t-pw"})
    assert "s3cr3t" not in repr(spec)


def test_api_calls_pass_the_spec_to_connect(monkeypatch):
    """Every api verb connects through novamove.cloud.connect with the caller's spec."""
    seen = []

    class Stop(Exception):
        pass

    def fake_connect(spec, **kw):
        seen.append(spec)
        raise Stop
    monkeypatch.setattr(api.cloud_adapter, "connect", fake_connect)
    spec = ConnectionSpec(cloud="x", interface="internal")
    calls = [lambda: api.migrate("vm", "h", cloud=spec), lambda: api.wait("vm", cloud=spec),
             lambda: api.compute_hosts(cloud=spec), lambda: api.migrations(cloud=spec),
             lambda: api.abort("vm", cloud=spec), lambda: api.drain("h", cloud=spec),
             lambda: api.undrain("h", cloud=spec), lambda: api.plan_drain("h", cloud=spec),
             lambda: api.migrate("vm", "h", cloud=spec, region_name="R9")]
    for call in calls:
        with pytest.raises(Stop):
            call()
    assert all(s.cloud == "x" and s.interface == "internal" for s in seen)
    assert seen[-1].region_name == "R9"


def test_an_untrusted_tls_certificate_says_so_in_one_line():
    from novamove.cloud.adapter import _connect_reason
    text = ("SSL exception connecting to https://api:5000/v3/auth/tokens: HTTPSConnectionPool(host='api', "
            "port=5000): Max retries exceeded with url: /v3/auth/tokens (Caused by SSLError("
            "SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "self-signed certificate in certificate chain (_ssl.c:1006)')))")
    reason = _connect_reason(Exception(text))
    assert reason.startswith("SSL exception connecting to https://api:5000/v3/auth/tokens (TLS certificate")
    assert "--os-cacert" in reason and "--insecure" in reason and "\n" not in reason


def test_an_sdk_connection_is_wrapped_as_is_with_only_the_ceiling_ours(monkeypatch):
    """The OSC plugin hands over OSC's own connection: no second configuration read, no OS_*
    overlay; compute_api_version is checked and used as the ceiling."""
    class Session:
        def request(self, *a, **k):
            return None

    class Conn:
        session = Session()
    monkeypatch.setenv("OS_COMPUTE_API_VERSION", "2.10")      # OSC already read it, if it counts
    conn = Conn()
    cloud = connect(ConnectionSpec(sdk_connection=conn, compute_api_version="2.60"))
    assert cloud.conn is conn and cloud._cap == (2, 60)
    assert connect(ConnectionSpec(sdk_connection=Conn()))._cap is None
    with pytest.raises(errors.UsageError):
        connect(ConnectionSpec(sdk_connection=Conn(), compute_api_version="2.x"))
    assert "<connection>" in repr(ConnectionSpec(sdk_connection=conn))


def test_the_environments_proxy_settings_are_read_once_per_endpoint(clouds, monkeypatch):
    """requests scans os.environ for *_proxy twice per request (half a request's CPU in a
    drain's polls): connect keeps the answer per endpoint; proxies, no_proxy and the CA bundle
    of the environment still apply."""
    import requests.sessions
    seen = []
    real = requests.sessions.get_environ_proxies

    def counted(url, no_proxy=None):
        seen.append(url)
        return real(url, no_proxy=no_proxy)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "nova.internal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    http = connect("plain").conn.session.session
    out = {}
    for i in range(3):
        for host in ("nova.example", "nova.internal"):
            given = {}
            out[host] = http.merge_environment_settings(f"https://{host}/v2.1/servers/s{i}", given, None, None, None)
            assert given == out[host]["proxies"]                 # the caller's dict filled, as requests does
    assert out["nova.example"]["proxies"]["https"] == "http://proxy.example:3128"
    assert "https" not in out["nova.internal"]["proxies"]        # NO_PROXY still bypasses
    assert out["nova.example"]["verify"] == "/etc/ssl/bundle.pem"
    assert len(seen) == 2                                        # once per endpoint, not per request
    out["nova.example"]["proxies"]["https"] = "changed"          # an answer is the caller's to change
    assert http.merge_environment_settings("https://nova.example/", {}, None, None, None)["proxies"]["https"] == \
        "http://proxy.example:3128"
    assert http.merge_environment_settings("https://nova.example/", {}, None, False, None)["verify"] is False
