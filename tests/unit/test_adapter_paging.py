"""The adapter reads every page of Nova's listings, whatever [api] max_limit caps a page at."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from novamove.cloud.adapter import Cloud


class Response:
    def __init__(self, body):
        self.status_code = 200
        self.content = json.dumps(body).encode()
        self._body = body

    def json(self):
        return self._body


class PagedNova:
    """/servers/detail, /os-migrations, /os-hypervisors/detail and /os-server-groups with a
    page cap of `max_limit`, answering like Nova (a "next" link only when a page is full)."""

    def __init__(self, max_limit=20, servers=55, migrations=47, hypervisors=23, groups=41):
        self.max_limit = max_limit
        self.calls = []
        self.data = {
            "servers": [{"id": f"s{i:03d}", "name": f"vm{i}", "status": "ACTIVE",
                         "OS-EXT-SRV-ATTR:host": "c1", "image": {"id": "i"}} for i in range(servers)],
            "migrations": [{"id": i + 1, "uuid": f"m{i}", "instance_uuid": f"s{i:03d}", "status": "completed",
                            "migration_type": "live-migration", "source_compute": "c1", "dest_compute": "c2",
                            "updated_at": "2026-11-26T10:00:00", "created_at": "2026-11-26T09:59:00"}
                           for i in range(migrations)],
            "hypervisors": [{"id": f"h{i}", "hypervisor_hostname": f"c{i}.fake", "service": {"host": f"c{i}"},
                             "state": "up", "status": "enabled"} for i in range(hypervisors)],
            "server_groups": [{"id": f"g{i}", "name": f"g{i}", "policy": "anti-affinity", "members": []}
                              for i in range(groups)],
        }

    def request(self, url, method, params=None, **kwargs):
        self.calls.append((url, dict(params or {})))
        path = url.split("?")[0]
        key = {"/servers/detail": "servers", "/os-migrations": "migrations",
               "/os-hypervisors/detail": "hypervisors", "/os-server-groups": "server_groups"}[path]
        rows = self.data[key]
        params = dict(params or {})
        limit = min(int(params.get("limit", self.max_limit)), self.max_limit)
        if key == "server_groups":
            start = int(params.get("offset", 0))
            return Response({key: rows[start:start + limit]})
        start = 0
        if "marker" in params:
            start = next(i for i, r in enumerate(rows) if str(r.get("uuid", r["id"])) == params["marker"]) + 1
        page = rows[start:start + limit]
        body = {key: page}
        if len(page) == limit:
            marker = page[-1].get("uuid", page[-1]["id"])
            body[f"{key}_links"] = [{"rel": "next", "href": f"http://nova{path}?{urlencode({'marker': marker})}"}]
        return Response(body)

    def get_endpoint_data(self):
        return type("E", (), {"max_microversion": "2.95"})()


class Conn:
    def __init__(self, compute):
        self.compute = compute
        self.session = type("S", (), {"request": lambda *a, **k: None})()


def test_every_listing_reads_every_page():
    nova = PagedNova()
    cloud = Cloud(Conn(nova))
    assert len(cloud.list_servers_on_host("c1")) == 55
    assert len(cloud.list_migrations()) == 47
    assert len(cloud.list_migrations_changed_since("2026-11-26T00:00:00")) == 47
    assert len(cloud.hypervisors()) == 23
    assert len(cloud.list_server_groups()) == 41
    # Three pages of servers (20, 20, 15): the short last page has no "next" link.
    assert sum(1 for url, _ in nova.calls if url == "/servers/detail") == 3


def test_an_exactly_full_last_page_ends_with_an_empty_one():
    nova = PagedNova(servers=40)
    cloud = Cloud(Conn(nova))
    assert len(cloud.list_servers_on_host("c1")) == 40
    assert sum(1 for url, _ in nova.calls if url == "/servers/detail") == 3
