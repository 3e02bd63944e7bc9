"""The adapter reads every page of Nova's listings, whatever [api] max_limit caps a page at.

openstacksdk's listing generators do the paging (they follow Nova's "next" links): these tests
run the real openstacksdk compute proxy over a fake Nova on the HTTP transport."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from requests.adapters import BaseAdapter

import openstack.connection

from novamove.cloud.adapter import Cloud

NOVA = "http://nova.test/v2.1"


class PagedNova(BaseAdapter):
    """/servers/detail, /os-migrations, /os-hypervisors/detail and /os-server-groups with a
    page cap of `max_limit`, answering like Nova (a "next" link only when a page is full)."""

    def __init__(self, max_limit=20, servers=55, migrations=47, hypervisors=23, groups=41, max_version="2.95"):
        super().__init__()
        self.max_limit = max_limit
        self.max_version = max_version
        self.calls = []
        self.data = {
            "servers": [{"id": f"s{i:03d}", "name": f"vm{i}", "status": "ACTIVE",
                         "OS-EXT-SRV-ATTR:host": "c1", "image": {"id": "i"},
                         "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "original_name": "m1.small"}}
                        for i in range(servers)],
            "migrations": [{"id": i + 1, "uuid": f"m{i}", "instance_uuid": f"s{i:03d}", "status": "completed",
                            "migration_type": "live-migration", "source_compute": "c1", "dest_compute": "c2",
                            "source_node": "c1.fake", "dest_node": "c2.fake",
                            "updated_at": "2026-11-26T10:00:00", "created_at": "2026-11-26T09:59:00"}
                           for i in range(migrations)],
            "hypervisors": [{"id": f"h{i}", "hypervisor_hostname": f"c{i}.fake", "service": {"host": f"c{i}"},
                             "state": "up", "status": "enabled"} for i in range(hypervisors)],
            "server_groups": [{"id": f"g{i}", "name": f"g{i}", "policy": "anti-affinity", "members": []}
                              for i in range(groups)],
        }

    def close(self):
        pass

    def send(self, request, **kwargs):
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path[len("/v2.1"):] if url.path.startswith("/v2.1") else url.path
        version = request.headers.get("OpenStack-API-Version")
        self.calls.append((request.method, path.rstrip("/"), params, version))
        if path.rstrip("/") == "":
            return self._answer(request, {"version": {
                "id": "v2.1", "status": "CURRENT", "version": self.max_version, "min_version": "2.1",
                "links": [{"rel": "self", "href": f"{NOVA}/"}]}})
        key = {"/servers/detail": "servers", "/os-migrations": "migrations",
               "/os-hypervisors/detail": "hypervisors", "/os-server-groups": "server_groups"}[path]
        rows = self.data[key]
        limit = min(int(params.get("limit", self.max_limit)), self.max_limit)
        if key == "server_groups":
            start = int(params.get("offset", 0))
            return self._answer(request, {key: rows[start:start + limit]})
        start = 0
        if "marker" in params:
            start = next(i for i, r in enumerate(rows) if str(r.get("uuid", r["id"])) == params["marker"]) + 1
        page = rows[start:start + limit]
        body = {key: page}
        if len(page) == limit:
            marker = page[-1].get("uuid", page[-1]["id"])
            body[f"{key}_links"] = [{"rel": "next", "href": f"{NOVA}{path}?{urlencode({'marker': marker})}"}]
        return self._answer(request, body)

    def _answer(self, request, body):
        response = requests.Response()
        response.status_code = 200
        response.url = request.url
        response.request = request
        response.headers["Content-Type"] = "application/json"
        response.headers["x-openstack-request-id"] = f"req-{len(self.calls)}"
        response._content = json.dumps(body).encode()
        return response

    def requests_to(self, path):
        return [c for c in self.calls if c[1] == path]


def cloud_on(nova, **kwargs):
    http = requests.Session()
    http.mount("http://", nova)
    session = ks_session.Session(session=http, auth=token_endpoint.Token(NOVA, "token"))
    conn = openstack.connection.Connection(session=session, compute_endpoint_override=NOVA)
    return Cloud(conn, **kwargs)


def test_every_listing_reads_every_page():
    nova = PagedNova()
    cloud = cloud_on(nova)
    assert len(cloud.list_servers_on_host("c1")) == 55
    assert len(cloud.list_migrations()) == 47
    assert len(cloud.list_migrations_changed_since("2026-11-26T00:00:00")) == 47
    assert len(cloud.hypervisors()) == 23
    assert len(cloud.list_server_groups()) == 41
    # Three pages of servers (20, 20, 15): the short last page has no "next" link.
    assert len(nova.requests_to("/servers/detail")) == 3
    # The host filter reaches Nova (not a client-side filter), with all projects.
    assert all(p.get("host") == "c1" and p.get("all_tenants") for _, _, p, _ in nova.requests_to("/servers/detail"))


def test_an_exactly_full_last_page_ends_with_an_empty_one():
    nova = PagedNova(servers=40)
    cloud = cloud_on(nova)
    assert len(cloud.list_servers_on_host("c1")) == 40
    assert len(nova.requests_to("/servers/detail")) == 3


def test_a_limited_listing_asks_for_one_page_only():
    nova = PagedNova(max_limit=5)
    cloud = cloud_on(nova)
    rows = cloud.list_migrations(limit=5)
    assert len(rows) == 5 and len(nova.requests_to("/os-migrations")) == 1
    assert rows[0].source_node == "c1.fake" and rows[0].dest_node == "c2.fake"


def test_each_listing_uses_novamoves_microversion_never_above_the_ceiling():
    nova = PagedNova()
    cloud = cloud_on(nova)
    cloud.list_servers_on_host("c1")
    cloud.list_migrations()
    cloud.hypervisors()
    versions = {path: version for _, path, _, version in nova.calls if path}
    assert versions["/servers/detail"] == "compute 2.71"
    assert versions["/os-migrations"] == "compute 2.80"
    assert versions["/os-hypervisors/detail"] == "compute 2.53"

    nova = PagedNova()
    cloud = cloud_on(nova, max_microversion="2.50")
    cloud.list_servers_on_host("c1")
    cloud.list_migrations()
    versions = {path: version for _, path, _, version in nova.calls if path}
    assert versions["/servers/detail"] == "compute 2.47"
    assert versions["/os-migrations"] == "compute 2.23"
