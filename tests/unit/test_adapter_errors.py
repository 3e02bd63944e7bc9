"""Connection-level failures become one-line Unreachable errors (exit 6) that name the fix."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ksa
from openstack import exceptions as sdk

from novamove import errors
from novamove.cloud.adapter import Cloud

from test_doctor_reads import Response  # a Nova answer: status, JSON body

SSL_TEXT = ("SSL exception connecting to https://api.example:5000/v3/auth/tokens: HTTPSConnectionPool("
            "host='api.example', port=5000): Max retries exceeded with url: /v3/auth/tokens (Caused by "
            "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
            "failed: self-signed certificate in certificate chain (_ssl.c:1006)')))")


class Config:
    def get_interface(self):
        return "admin"

    def get_region_name(self):
        return "R1"


class Conn:
    config = Config()
    session = type("S", (), {"request": lambda *a, **k: None})()


def _raise(exc):
    def call():
        raise exc
    return call


def test_an_untrusted_certificate_names_the_fix():
    with pytest.raises(errors.Unreachable) as info:
        Cloud(Conn())._guard(_raise(ksa.SSLError(SSL_TEXT)), "compute API")
    text = str(info.value)
    assert text.startswith("the TLS certificate of https://api.example:5000 is not trusted "
                           "(self-signed certificate in certificate chain)")
    assert "--os-cacert" in text and "OS_CACERT" in text and "cacert" in text and "insecure" in text
    assert "\n" not in text and info.value.exit_code == errors.EXIT_UNREACHABLE


def test_other_tls_failures_stay_connection_errors():
    with pytest.raises(errors.Unreachable, match="cannot reach the cloud API"):
        Cloud(Conn())._guard(_raise(ksa.SSLError("SSL exception connecting to https://x: EOF occurred")), "x")


@pytest.mark.parametrize("exc", [
    ksa.EndpointNotFound("admin endpoint for compute service in R1 region not found"),
    sdk.ServiceDisabledException("Service 'compute' is disabled because its configuration could not be "
                                 "loaded. The service is not present in the service catalog: admin "
                                 "endpoint for compute service in R1 region not found"),
])
def test_no_endpoint_for_the_interface_is_unreachable(exc):
    with pytest.raises(errors.Unreachable) as info:
        Cloud(Conn())._guard(_raise(exc), "compute API")
    text = str(info.value)
    assert text.startswith("no compute endpoint for interface 'admin' in region R1 was found in the "
                           "service catalog (admin endpoint for compute service in R1 region not found)")
    assert "OS_INTERFACE" in text and info.value.exit_code == errors.EXIT_UNREACHABLE


def test_a_service_disabled_in_the_configuration_is_still_a_configuration_error():
    exc = sdk.ServiceDisabledException("Service 'compute' is disabled because its configuration could "
                                       "not be loaded. has_compute is false")
    with pytest.raises(errors.AuthError, match="cloud configuration"):
        Cloud(Conn())._guard(_raise(exc), "compute API")


@pytest.mark.parametrize("mv_uptime", [True, False])
def test_an_uptime_read_nova_could_not_ask_the_restarting_compute_is_no_uptime(monkeypatch, mv_uptime):
    """A gate reads the uptime of a compute its hook restarts: Nova's RPC to it times out and the
    API answers 500 (MessagingTimeout). That is "no uptime now" (the gate reads again), not an
    error that stops the campaign (seen in a CI run)."""
    fault = {"computeFault": {"code": 500, "message": "Unexpected API Error. <class "
                              "'oslo_messaging.exceptions.MessagingTimeout'>"}}
    conn = Conn()
    conn.compute = type("P", (), {"request": lambda self, url, method, **kw: Response(500, fault)})()
    cloud = Cloud(conn)
    cloud._hypervisor_ids["compute1"] = "hyp-1"
    monkeypatch.setattr(cloud, "supports", lambda mv: mv_uptime)
    monkeypatch.setattr(cloud, "_pick", lambda *mvs: None)
    assert cloud.hypervisor_uptime("compute1") is None
    conn.compute = type("P", (), {"request": lambda self, url, method, **kw: Response(403, {})})()
    with pytest.raises(errors.Forbidden):
        cloud.hypervisor_uptime("compute1")
