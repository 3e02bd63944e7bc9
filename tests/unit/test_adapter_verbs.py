"""The adapter's moving verbs go through openstacksdk's compute proxy, but with the body and the
microversion novamove chooses (never above the ceiling), one request each, errors mapped."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlparse

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from requests.adapters import BaseAdapter

import openstack.connection

from novamove import errors
from novamove.cloud.adapter import Cloud
from novamove.model import Service

NOVA = "http://nova.test/v2.1"
UUID = "6f0c5c1e-0000-4000-8000-000000000001"


class Nova(BaseAdapter):
    def __init__(self, max_version="2.95", fail=None):
        super().__init__()
        self.max_version = max_version
        self.fail = fail or {}
        self.calls = []
        self.queries = []

    def close(self):
        pass

    def send(self, request, **kwargs):
        path = urlparse(request.url).path[len("/v2.1"):].rstrip("/")
        if path == "":
            return self._answer(request, 200, {"version": {
                "id": "v2.1", "status": "CURRENT", "version": self.max_version, "min_version": "2.1",
                "links": [{"rel": "self", "href": f"{NOVA}/"}]}})
        body = json.loads(request.body) if request.body else None
        self.calls.append((request.method, path, body, request.headers.get("OpenStack-API-Version")))
        self.queries.append(dict(parse_qsl(urlparse(request.url).query)))
        if (request.method, path) in self.fail:
            status, answer = self.fail[(request.method, path)]
            return self._answer(request, status, answer)
        if path.startswith("/os-services/") and request.method == "PUT":
            return self._answer(request, 200, {"service": {"id": UUID, "host": "c1", "binary": "nova-compute",
                                                           "status": (body or {}).get("status", "disabled"),
                                                           "disabled_reason": (body or {}).get("disabled_reason"),
                                                           "forced_down": (body or {}).get("forced_down", False),
                                                           "state": "up", "zone": "nova"}})
        return self._answer(request, 202, None)

    def _answer(self, request, status, body):
        response = requests.Response()
        response.status_code = status
        response.url = request.url
        response.request = request
        response.headers["x-openstack-request-id"] = f"req-{len(self.calls):04d}"
        if body is not None:
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(body).encode()
        else:
            response._content = b""
        return response

    @property
    def mutations(self):
        return [c for c in self.calls if c[0] != "GET"]


def cloud_on(nova, **kwargs):
    http = requests.Session()
    http.mount("http://", nova)
    session = ks_session.Session(session=http, auth=token_endpoint.Token(NOVA, "token"))
    return Cloud(openstack.connection.Connection(session=session, compute_endpoint_override=NOVA), **kwargs)


SERVICE = Service(id=UUID, host="c1", binary="nova-compute", zone="nova", status="enabled", state="up",
                  disabled_reason=None, forced_down=False, updated_at=None)
LEGACY = Service(id="7", host="c1", binary="nova-compute", zone="nova", status="enabled", state="up",
                 disabled_reason=None, forced_down=False, updated_at=None)


@pytest.mark.parametrize("cap, verb, expected", [
    (None, lambda c: c.migrate_server("s1", host="c2"),
     ("POST", "/servers/s1/action", {"migrate": {"host": "c2"}}, "compute 2.56")),
    (None, lambda c: c.migrate_server("s1"), ("POST", "/servers/s1/action", {"migrate": None}, "compute 2.56")),
    ("2.40", lambda c: c.migrate_server("s1"), ("POST", "/servers/s1/action", {"migrate": None}, "compute 2.1")),
    # 2.34: Nova answers before it schedules (a stopped scheduler does not hold the request).
    (None, lambda c: c.live_migrate_server("s1", host="c2"),
     ("POST", "/servers/s1/action", {"os-migrateLive": {"host": "c2", "block_migration": "auto"}}, "compute 2.34")),
    ("2.33", lambda c: c.live_migrate_server("s1", host="c2"),
     ("POST", "/servers/s1/action", {"os-migrateLive": {"host": "c2", "block_migration": "auto"}}, "compute 2.30")),
    ("2.27", lambda c: c.live_migrate_server("s1"),
     ("POST", "/servers/s1/action", {"os-migrateLive": {"host": None, "block_migration": "auto"}}, "compute 2.25")),
    ("2.20", lambda c: c.live_migrate_server("s1"),
     ("POST", "/servers/s1/action", {"os-migrateLive": {"host": None, "block_migration": False,
                                                        "disk_over_commit": False}}, "compute 2.1")),
    (None, lambda c: c.confirm_resize("s1"), ("POST", "/servers/s1/action", {"confirmResize": None}, "compute 2.1")),
    (None, lambda c: c.revert_resize("s1"), ("POST", "/servers/s1/action", {"revertResize": None}, "compute 2.1")),
    (None, lambda c: c.stop_server("s1"), ("POST", "/servers/s1/action", {"os-stop": None}, "compute 2.1")),
    (None, lambda c: c.start_server("s1"), ("POST", "/servers/s1/action", {"os-start": None}, "compute 2.1")),
    (None, lambda c: c.abort_migration("s1", "7"), ("DELETE", "/servers/s1/migrations/7", None, "compute 2.65")),
    ("2.64", lambda c: c.abort_migration("s1", "7"), ("DELETE", "/servers/s1/migrations/7", None, "compute 2.24")),
    (None, lambda c: c.force_complete_migration("s1", "7"),
     ("POST", "/servers/s1/migrations/7/action", {"force_complete": None}, "compute 2.80")),
    (None, lambda c: c.evacuate_server("s1", "c2"), ("POST", "/servers/s1/action", {"evacuate": {"host": "c2"}},
                                                     "compute 2.94")),
    (None, lambda c: c.evacuate_server("s1", "c2", target_state="stopped"),
     ("POST", "/servers/s1/action", {"evacuate": {"host": "c2"}}, "compute 2.95")),
    ("2.60", lambda c: c.evacuate_server("s1", "c2"),
     ("POST", "/servers/s1/action", {"evacuate": {"host": "c2"}}, "compute 2.29")),
    (None, lambda c: c.disable_service(SERVICE, "novamove:r1: x"),
     ("PUT", f"/os-services/{UUID}", {"status": "disabled", "disabled_reason": "novamove:r1: x"}, "compute 2.53")),
    (None, lambda c: c.enable_service(SERVICE), ("PUT", f"/os-services/{UUID}", {"status": "enabled"}, "compute 2.53")),
    (None, lambda c: c.set_service_forced_down(SERVICE, True),
     ("PUT", f"/os-services/{UUID}", {"forced_down": True}, "compute 2.53")),
    ("2.52", lambda c: c.disable_service(LEGACY, "why"),
     ("PUT", "/os-services/disable-log-reason", {"host": "c1", "binary": "nova-compute", "disabled_reason": "why"},
      "compute 2.1")),
    ("2.52", lambda c: c.enable_service(LEGACY),
     ("PUT", "/os-services/enable", {"host": "c1", "binary": "nova-compute"}, "compute 2.1")),
    ("2.52", lambda c: c.set_service_forced_down(LEGACY, True),
     ("PUT", "/os-services/force-down", {"host": "c1", "binary": "nova-compute", "forced_down": True},
      "compute 2.11")),
])
def test_each_verb_sends_one_request_with_novamoves_body_and_microversion(cap, verb, expected):
    nova = Nova()
    cloud = cloud_on(nova, max_microversion=cap)
    verb(cloud)
    assert nova.mutations == [expected]
    assert [c for c in nova.calls if c[0] == "GET"] == []     # no look-up before the action
    assert cloud.last_request_id and cloud.last_request_id.startswith("req-")


def test_service_updates_return_model_values():
    cloud = cloud_on(Nova())
    service = cloud.disable_service(SERVICE, "novamove:r1: x")
    assert (service.id, service.status, service.disabled_reason) == (UUID, "disabled", "novamove:r1: x")
    assert cloud.enable_service(SERVICE).status == "enabled"
    legacy = cloud_on(Nova(), max_microversion="2.52").disable_service(LEGACY, "why")
    assert legacy.status == "disabled" and legacy.disabled_reason == "why"


def test_nova_refusals_are_one_line_errors_with_the_request_id():
    nova = Nova(fail={("POST", "/servers/s1/action"): (409, {"conflictingRequest": {
        "message": "Cannot 'migrate' instance s1 while it is in task_state migrating"}}),
        ("DELETE", "/servers/s1/migrations/7"): (404, {"itemNotFound": {"message": "Migration 7 not found"}}),
        ("POST", "/servers/s1/migrations/7/action"): (500, {"computeFault": {"message": "boom"}})})
    cloud = cloud_on(nova)
    with pytest.raises(errors.PreconditionFailed) as info:
        cloud.migrate_server("s1", host="c2")
    text = str(info.value)
    assert text.startswith("cold migration: conflict (409): Cannot 'migrate' instance s1")
    assert text.endswith(f"(request ID {info.value.request_id})") and info.value.request_id.startswith("req-")
    assert "http://" not in text and "\n" not in text
    with pytest.raises(errors.NotFound) as info:
        cloud.abort_migration("s1", "7")
    assert "Migration 7 not found" in str(info.value) and info.value.request_id
    with pytest.raises(errors.NovamoveError) as info:
        cloud.force_complete_migration("s1", "7")
    assert errors.is_ambiguous(info.value) and info.value.request_id


def test_the_ceiling_holds_for_the_sdk_too():
    nova = Nova(max_version="2.95")
    cloud = cloud_on(nova, max_microversion="2.55")
    with pytest.raises(errors.PreconditionFailed, match="2.56"):
        cloud.migrate_server("s1", host="c2")
    with pytest.raises(errors.PreconditionFailed):
        cloud._nova("2.60")
    cloud.live_migrate_server("s1", host="c2")
    assert nova.mutations[-1][3] == "compute 2.34"
    cloud = cloud_on(nova, max_microversion="2.32")
    cloud.live_migrate_server("s1", host="c2")
    assert nova.mutations[-1][3] == "compute 2.30"
    # A cloud older than the ceiling: its own maximum counts.
    nova = Nova(max_version="2.28")
    cloud = cloud_on(nova, max_microversion="2.60")
    cloud.live_migrate_server("s1")
    assert nova.mutations[-1][3] == "compute 2.25"


SERVER = {"id": "s1", "name": "web.1", "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "c1",
          "OS-EXT-SRV-ATTR:hypervisor_hostname": "c1.fake", "image": "", "tenant_id": "p",
          "flavor": {"vcpus": 2, "ram": 1024, "disk": 10, "ephemeral": 0, "swap": 0, "original_name": "m1.small"},
          "server_groups": ["g1"], "tags": ["t"], "OS-EXT-STS:task_state": None, "OS-EXT-AZ:availability_zone": "nova"}


def test_find_servers_escapes_the_name_regex_and_matches_exactly():
    nova = Nova(fail={("GET", "/servers/detail"): (200, {"servers": [SERVER, dict(SERVER, name="web.10", id="x")]})})
    found = cloud_on(nova).find_servers("web.1")
    assert [s.name for s in found] == ["web.1"]
    assert nova.queries[-1] == {"all_tenants": "True", "name": "^web\\.1$"}
    s = found[0]
    assert (s.host, s.hypervisor_hostname, s.project_id, s.zone) == ("c1", "c1.fake", "p", "nova")
    assert s.flavor.name == "m1.small" and s.flavor.vcpus == 2 and s.flavor.ram == 1024
    assert s.volume_backed and s.server_groups == ("g1",) and s.tags == ("t",)


def test_a_server_before_2_47_gets_its_flavor_from_flavors():
    nova = Nova(fail={("GET", "/servers/s1"): (200, {"server": dict(SERVER, flavor={"id": "f1", "links": []},
                                                                     image={"id": "i"})}),
                      ("GET", "/flavors/f1"): (200, {"flavor": {"id": "f1", "name": "m1.tiny", "vcpus": 1,
                                                                "ram": 512, "disk": 1, "swap": ""}})})
    s = cloud_on(nova, max_microversion="2.46").get_server("s1")
    assert s.flavor.name == "m1.tiny" and s.flavor.vcpus == 1 and s.flavor.ram == 512 and not s.volume_backed
    assert [c[3] for c in nova.calls] == ["compute 2.1", "compute 2.1"]


def test_http_errors_map_to_one_line_novamove_errors():
    nova = Nova(fail={("GET", "/os-services"): (403, {"forbidden": {"message": "Policy doesn't allow\nthis"}})})
    with pytest.raises(errors.Forbidden) as exc:
        cloud_on(nova).list_compute_services()
    assert "\n" not in str(exc.value) and "403" in str(exc.value) and exc.value.request_id is None
    nova = Nova(fail={("GET", "/servers/nope"): (404, {"itemNotFound": {"message": "Instance nope could not be found."}})})
    with pytest.raises(errors.NotFound, match="could not be found"):
        cloud_on(nova).get_server("nope")


def test_the_hot_read_paths_send_novas_own_query_names():
    """Raw on purpose (CPU): the drain's shared listing, a host's servers, one server."""
    nova = Nova(fail={("GET", "/os-migrations"): (200, {"migrations": []}),
                      ("GET", "/servers/detail"): (200, {"servers": []}),
                      ("GET", "/servers/s1"): (200, {"server": SERVER})})
    cloud = cloud_on(nova)
    cloud.list_migrations_changed_since("2026-11-26T10:00:00")
    assert nova.queries[-1] == {"changes-since": "2026-11-26T10:00:00"}
    assert nova.calls[-1][3] == "compute 2.80"
    cloud.list_servers_on_host("c1")
    assert nova.queries[-1] == {"all_tenants": "1", "host": "c1"}
    assert cloud.get_server("s1").host == "c1"
