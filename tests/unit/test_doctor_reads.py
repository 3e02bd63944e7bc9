"""The doctor's reads (novamove/cloud/doctor_reads.py): every page, the microversion chosen
here, Placement's JSON read right, errors mapped, a 503 retried by the scan, NOVAMOVE_FAULT
reaching them, and a request count that grows with hosts and pages, not with servers."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from novamove import errors
from novamove.cloud.adapter import Cloud
from novamove.engine import faults
from novamove.engine.doctor import detect
from novamove.engine.doctor.scan import scan

NOVA = "http://nova.test/v2.1"


class Response:
    def __init__(self, status, body):
        self.status_code = status
        self._body = body
        self.content = json.dumps(body).encode() if body is not None else b""
        self.text = self.content.decode()
        self.headers = {"Date": "Thu, 26 Nov 2026 12:00:00 GMT"}

    def json(self):
        return self._body


class Endpoint:
    def __init__(self, max_microversion):
        self.max_microversion = max_microversion


class Proxy:
    def __init__(self, conn, service, max_microversion):
        self.conn, self.service, self.max = conn, service, max_microversion

    def request(self, url, method, **kwargs):
        return self.conn.session.request(url, method, service=self.service, **kwargs)

    def get_endpoint_data(self):
        return Endpoint(self.max)


class Cloudlet:
    """Nova and Placement answering like the real ones: pages of `max_limit` with a "next"
    link when a page is full; `hosts` providers each holding its servers' allocations."""

    def __init__(self, hosts=3, servers=25, migrations=12, max_limit=10, fail=None, services=None, extra=None):
        self.max_limit = max_limit
        self.extra = extra or (lambda rp, n: {})   # (provider, its n-th read) -> more consumers
        self.service_changes = services or {}     # host -> fields over "up, reported 5 s ago"
        self.calls = []
        self.fail = list(fail or [])
        self.servers = [{"id": f"s{i:03d}", "name": f"vm{i}", "status": "ACTIVE",
                         "OS-EXT-SRV-ATTR:host": f"c{i % hosts}",
                         "OS-EXT-SRV-ATTR:hypervisor_hostname": f"c{i % hosts}.fake",
                         "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": None,
                         "OS-EXT-STS:power_state": 1, "updated": "2026-11-26T10:00:00Z",
                         "tenant_id": "p1"} for i in range(servers)]
        self.servers[0].update({"status": "ERROR", "fault": {
            "message": "Migration pre-check error", "code": 500, "created": "2026-11-26T09:00:00Z"}})
        self.migrations = [{"id": i + 1, "uuid": f"m{i:03d}", "instance_uuid": f"s{i:03d}", "status": "completed",
                            "migration_type": "live-migration", "source_compute": "c0", "dest_compute": "c1",
                            "created_at": "2026-11-26T09:00:00.000000", "updated_at": "2026-11-26T09:01:00.000000"}
                           for i in range(migrations)]
        self.providers = [{"uuid": f"rp{i}", "name": f"c{i}.fake", "generation": 3,
                           "root_provider_uuid": f"rp{i}", "parent_provider_uuid": None} for i in range(hosts)]

    # --------------------------------------------------------------- transport

    def request(self, url, method, service=None, params=None, microversion=None, **kwargs):
        self.calls.append((service, method, url, dict(params or {}), microversion))
        if self.fail:
            status = self.fail.pop(0)
            if status:
                return Response(status, {"error": {"message": "try later"}})
        path = url.split("?")[0]
        if path == "/servers/detail":
            return self._page("servers", self.servers, "/servers/detail", params, "id")
        if path == "/os-migrations":
            return self._page("migrations", self.migrations, "/os-migrations", params, "uuid")
        if path == "/os-services":
            rows = [{"id": f"u{i}", "host": p["name"][:-5], "binary": "nova-compute", "status": "enabled",
                     "state": "up", "updated_at": "2026-11-26T11:59:55"} for i, p in enumerate(self.providers)]
            for row in rows:
                change = self.service_changes.get(row["host"], {})
                row.update(change(len(self.to("/os-services"))) if callable(change) else change)
            return Response(200, {"services": rows})
        if path == "/resource_providers":
            return Response(200, {"resource_providers": self.providers})
        if path.startswith("/resource_providers/") and path.endswith("/allocations"):
            rp = path.split("/")[2]
            host = next(p["name"] for p in self.providers if p["uuid"] == rp)
            held = {s["id"]: {"resources": {"VCPU": 1, "MEMORY_MB": 512}}
                    for s in self.servers if s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == host}
            held.update({c: {"resources": r} for c, r in self.extra(rp, len(self.to(path))).items()})
            return Response(200, {"resource_provider_generation": 3, "allocations": held})
        if path.startswith("/allocations/"):
            return Response(200, {"allocations": {"rp0": {"generation": 3, "resources": {"VCPU": 1}}},
                                  "consumer_generation": 7, "project_id": "p1", "user_id": "u1"})
        return Response(404, {"itemNotFound": {"message": f"no {path}"}})

    def _page(self, key, rows, path, params, marker_key):
        params = params or {}
        start = 0
        if "marker" in params:
            start = next(i for i, r in enumerate(rows) if str(r[marker_key]) == params["marker"]) + 1
        page = rows[start:start + self.max_limit]
        body = {key: page}
        if len(page) == self.max_limit:
            body[f"{key}_links"] = [{"rel": "next", "href": f"{NOVA}{path}?{urlencode({'marker': page[-1][marker_key]})}"}]
        return Response(200, body)

    def to(self, path):
        return [c for c in self.calls if c[2] == path]


class Conn:
    def __init__(self, fake, compute="2.95", placement="1.39"):
        self.session = fake
        self.compute = Proxy(self, "compute", compute)
        self.placement = Proxy(self, "placement", placement)


def hypervisors_of(fake):
    return [{"id": p["uuid"], "hypervisor_hostname": p["name"], "host": p["name"][:-5], "state": "up",
             "status": "enabled"} for p in fake.providers]


def cloud_of(fake, **kwargs):
    cloud = Cloud(Conn(fake, **{k: v for k, v in kwargs.items() if k in ("compute", "placement")}),
                  max_microversion=kwargs.get("cap"))
    cloud.hypervisors = lambda: hypervisors_of(fake)   # openstacksdk's listing, tested elsewhere
    return cloud


def test_all_servers_every_page_with_states_and_fault():
    fake = Cloudlet(servers=25, max_limit=10)
    servers = cloud_of(fake).list_all_servers()
    assert len(servers) == 25 and len(fake.to("/servers/detail")) == 3
    assert all(c[3].get("all_tenants") == "1" and c[4] == "2.71" for c in fake.to("/servers/detail"))
    s = servers[0]
    assert (s.host, s.node, s.vm_state, s.power_state, s.updated) == ("c0", "c0.fake", "active", 1,
                                                                       "2026-11-26T10:00:00Z")
    assert (s.fault_message, s.fault_code, s.fault_created) == ("Migration pre-check error", 500,
                                                                "2026-11-26T09:00:00Z")


def test_all_migrations_every_page_newest_first_at_the_ceiling():
    fake = Cloudlet(migrations=23, max_limit=10)
    rows = cloud_of(fake).list_all_migrations()
    assert [m.id for m in rows[:2]] == ["23", "22"] and len(rows) == 23
    assert len(fake.to("/os-migrations")) == 3 and {c[4] for c in fake.to("/os-migrations")} == {"2.80"}
    fake = Cloudlet(migrations=5)
    cloud_of(fake, cap="2.58").list_all_migrations()
    assert fake.to("/os-migrations")[0][4] == "2.23"


def test_placement_reads_pick_their_microversion_and_parse_the_answers():
    fake = Cloudlet(hosts=2, servers=4)
    cloud = cloud_of(fake)
    providers = cloud.list_resource_providers()
    assert [(p.uuid, p.name, p.root_uuid) for p in providers] == [("rp0", "c0.fake", "rp0"), ("rp1", "c1.fake", "rp1")]
    assert fake.to("/resource_providers")[0][:2] == ("placement", "GET") and fake.to("/resource_providers")[0][4] == "1.14"
    assert cloud.provider_allocations("rp1") == {"s001": {"VCPU": 1, "MEMORY_MB": 512},
                                                 "s003": {"VCPU": 1, "MEMORY_MB": 512}}
    held = cloud.consumer_allocations("s001")
    assert (held.generation, held.project_id, held.allocations) == (7, "p1", {"rp0": {"VCPU": 1}})
    assert fake.to("/allocations/s001")[0][4] == "1.28"
    old = Cloudlet()
    cloud_of(old, placement="1.10").list_resource_providers()
    assert old.to("/resource_providers")[0][4] == "1.0"


def test_errors_are_mapped():
    fake = Cloudlet()
    with pytest.raises(errors.NotFound):
        cloud_of(fake)._request("placement", "GET", "/nothing", what="x")
    fake = Cloudlet(fail=[503])
    with pytest.raises(errors.Unreachable):
        cloud_of(fake).list_resource_providers()


def test_a_scan_rides_out_a_503():
    fake = Cloudlet(fail=[503, 503])
    pauses = []
    snap, _ = scan(cloud_of(fake), sleep=pauses.append, workers=1)
    assert pauses == [1.0, 2.0] and len(snap.services) == 3


def test_scan_reads_are_faultable(monkeypatch):
    faults.reset()
    monkeypatch.setenv(faults.ENV, "doctor.migrations:before:error")
    try:
        with pytest.raises(errors.NovamoveError, match="injected fault"):
            scan(cloud_of(Cloudlet()), sleep=lambda s: None, workers=1)
        monkeypatch.setenv(faults.ENV, "doctor.servers:before:timeout:1")
        snap, _ = scan(cloud_of(Cloudlet()), sleep=lambda s: None, workers=1)   # retried once
        assert len(snap.servers) == 25
    finally:
        faults.reset()


@pytest.mark.parametrize("workers", [1, 4])
def test_scan_requests_grow_with_hosts_and_pages_not_servers(workers):
    small = Cloudlet(hosts=3, servers=30, max_limit=1000)
    big = Cloudlet(hosts=3, servers=900, max_limit=1000)
    _, s1 = scan(cloud_of(small), workers=workers)
    _, s2 = scan(cloud_of(big), workers=workers)
    assert s1.total == s2.total == 1 + 1 + 3 + 1 + 1      # services, providers, 3 allocations, servers, migrations
    assert s1.requests["allocations"] == 3
    more_hosts = Cloudlet(hosts=9, servers=900, max_limit=1000)
    _, s3 = scan(cloud_of(more_hosts), workers=workers)
    assert s3.requests["allocations"] == 9 and s3.total == s2.total + 6
    paged = Cloudlet(hosts=3, servers=900, max_limit=100)
    _, s4 = scan(cloud_of(paged), workers=workers)
    assert s4.requests["servers"] == 10


def test_scan_snapshot_holds_what_detect_needs():
    fake = Cloudlet(hosts=2, servers=4, migrations=2)
    snap, stats = scan(cloud_of(fake), workers=1)
    assert set(snap.allocations) == {"rp0", "rp1"} and snap.allocations["rp0"]["s000"] == {"VCPU": 1, "MEMORY_MB": 512}
    assert [m.uuid for m in snap.migrations] == ["m001", "m000"]
    assert snap.now.year == 2026 and snap.services_again is None and snap.rechecked == {}
    assert stats.requests["hypervisors"] == 0      # replaced by a stub above: counted, not made


def test_a_forced_down_compute_that_reported_lately_is_read_again_after_the_gap():
    beats = iter(["2026-11-26T11:59:50", "2026-11-26T12:00:20"])
    fake = Cloudlet(services={"c1": lambda n: {"forced_down": True, "state": "down", "updated_at": next(beats)}})
    pauses = []
    snap, stats = scan(cloud_of(fake), sleep=pauses.append, clock=lambda: 0.0, workers=1, heartbeat_gap=25)
    assert pauses == [25] and stats.requests["services_again"] == 1
    assert [s.updated_at for s in snap.services_again if s.host == "c1"] == ["2026-11-26T12:00:20"]


def test_a_compute_that_stopped_reporting_long_ago_needs_no_second_read():
    fake = Cloudlet(services={"c1": {"state": "down", "updated_at": "2026-11-26T10:00:00"}})
    pauses = []
    snap, stats = scan(cloud_of(fake), sleep=pauses.append, workers=1)
    assert pauses == [] and snap.services_again is None and "services_again" not in stats.requests


def test_a_consumer_nobody_knows_is_read_again_and_one_deleted_during_the_scan_is_dropped():
    def extra(rp, n):
        if rp != "rp1":
            return {}
        return {"ghost": {"VCPU": 1}, "gone": {"VCPU": 1}} if n == 1 else {"ghost": {"VCPU": 1}}
    fake = Cloudlet(hosts=3, servers=6, migrations=0, extra=extra)
    snap, stats = scan(cloud_of(fake), workers=1)
    assert snap.rechecked == {"ghost": {"rp1": {"VCPU": 1}}, "gone": {}}
    assert stats.requests["recheck"] == 1                       # the one provider that held them
    unknown = [f.evidence["consumer"] for f in detect(snap) if f.klass == "consumer-unknown"]
    assert unknown == ["ghost"]
