"""Pure logic of the migrate verb: API bodies -> model, pre-checks, resolution, judging,
the adapter's microversion choices and error mapping (with a stub connection)."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.cloud import convert
from novamove.cloud.adapter import Cloud
from novamove.engine.single import checks
from novamove.engine.resolve import pick_host, pick_server
from novamove.engine.single.waiter import FAILED, LANDED, VERIFY, judge
from novamove.model import Flavor, Host, Migration, Resources, Server, Service

SERVER_BODY = {
    "id": "5b3e6a1c-1111-2222-3333-444455556666", "name": "web-1", "status": "ACTIVE",
    "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1.fake.local",
    "OS-EXT-STS:task_state": None, "OS-EXT-STS:power_state": 1, "OS-EXT-STS:vm_state": "active",
    "tenant_id": "proj", "OS-EXT-AZ:availability_zone": "nova",
    "flavor": {"original_name": "m1.small", "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 2, "swap": ""},
}


def server(**kw):
    base = dict(id="s1", name="vm", status="ACTIVE", host="compute1", flavor=Flavor("f", 2, 1024, 10))
    base.update(kw)
    return Server(**base)


def host(name, status="enabled", state="up", reason=None, capacity=Resources(8, 8192, 100),
         used=Resources(), node=None):
    return Host(name=name, service=Service(id=f"id-{name}", host=name, status=status, state=state,
                                           disabled_reason=reason),
                hypervisor_hostname=node or f"{name}.fake.local", capacity=capacity, used=used)


# ---------------------------------------------------------------- convert

def test_server_from_api_embedded_flavor():
    s = convert.server_from_api(SERVER_BODY)
    assert (s.name, s.host, s.hypervisor_hostname, s.power) == ("web-1", "compute1", "compute1.fake.local",
                                                                "RUNNING")
    assert s.flavor == Flavor("m1.small", 1, 512, 1, ephemeral=2, swap=0)
    assert s.flavor.resources == Resources(1, 512, 3)


def test_migration_uses_compute_names_not_ips():
    m = convert.migration_from_api({"id": 7, "instance_uuid": "x", "source_compute": "compute1",
                                    "dest_compute": "compute2", "dest_host": "10.0.0.2",
                                    "status": "running", "migration_type": "live-migration",
                                    "memory_total_bytes": 100, "memory_remaining_bytes": 40})
    assert (m.id, m.source_host, m.dest_host, m.memory_remaining_bytes) == ("7", "compute1", "compute2", 40)
    assert m.in_progress


def test_capacity_applies_reserved_and_allocation_ratio():
    inv = {"VCPU": {"total": 4, "reserved": 0, "allocation_ratio": 16.0, "max_unit": 4},
           "MEMORY_MB": {"total": 8192, "reserved": 512, "allocation_ratio": 1.5, "max_unit": 8192},
           "DISK_GB": {"total": 100, "reserved": 0, "allocation_ratio": 1.0, "max_unit": 100}}
    assert convert.capacity_from_inventories(inv) == Resources(64, 11520, 100)
    assert convert.max_unit_from_inventories(inv) == Resources(4, 8192, 100)
    assert convert.used_from_usages({"VCPU": 3, "MEMORY_MB": 1024}) == Resources(3, 1024, 0)


# ---------------------------------------------------------------- checks

@pytest.mark.parametrize("status,requested,expected", [
    ("ACTIVE", "auto", "live"), ("SHUTOFF", "auto", "cold"), ("PAUSED", "auto", "live"),
    ("ACTIVE", "cold", "cold"), ("ACTIVE", "live", "live")])
def test_choose_mode(status, requested, expected):
    assert checks.choose_mode(server(status=status), requested) == expected


@pytest.mark.parametrize("status,requested,match", [
    ("SHUTOFF", "live", "use --cold"), ("ERROR", "auto", "ERROR"), ("SUSPENDED", "cold", "SUSPENDED")])
def test_choose_mode_refusals(status, requested, match):
    with pytest.raises(errors.PreconditionFailed, match=match):
        checks.choose_mode(server(status=status), requested)


def test_busy_server_is_refused():
    with pytest.raises(errors.PreconditionFailed, match="busy"):
        checks.choose_mode(server(task_state="migrating"))


def test_choose_strategy_by_microversion():
    new = lambda v: True  # noqa: E731
    old = lambda v: tuple(map(int, v.split("."))) <= (2, 40)  # noqa: E731
    assert checks.choose_strategy("auto", "cold", new) == "native"
    assert checks.choose_strategy("auto", "cold", old) == "isolate"
    assert checks.choose_strategy("auto", "live", old) == "native"
    assert checks.choose_strategy("isolate", "live", new) == "isolate"
    with pytest.raises(errors.PreconditionFailed, match="2.56"):
        checks.choose_strategy("native", "cold", old)


def test_check_target():
    vm = server()
    checks.check_target(vm, host("compute2"))
    with pytest.raises(errors.PreconditionFailed, match="already on compute1"):
        checks.check_target(vm, host("compute1"))
    with pytest.raises(errors.PreconditionFailed, match="disabled \\(why\\)"):
        checks.check_target(vm, host("compute2", status="disabled", reason="why"))
    with pytest.raises(errors.PreconditionFailed, match="down"):
        checks.check_target(vm, host("compute2", state="down"))


def test_check_source():
    vm = server()
    checks.check_source(vm, host("compute1"))
    checks.check_source(vm, None)        # unknown to the services list: Nova will say
    with pytest.raises(errors.PreconditionFailed, match="host compute1 is down.*evacuate"):
        checks.check_source(vm, host("compute1", state="down"))


def test_check_capacity():
    vm = server()
    checks.check_capacity(vm, host("c2", used=Resources(6, 7168, 90)))
    with pytest.raises(errors.NoCapacity, match="memory_mb 1024 needed, 512 free"):
        checks.check_capacity(vm, host("c2", used=Resources(0, 7680, 0)))
    with pytest.raises(errors.NoCapacity, match="per-instance maximum"):
        checks.check_capacity(vm, host("c2"), max_unit=Resources(1, 8192, 100))


# ---------------------------------------------------------------- resolution

def test_pick_host_by_service_hypervisor_and_short_name():
    hosts = [host("cmp1", node="cmp1.example.org"), host("cmp2.example.org", node="cmp2")]
    assert pick_host("cmp1", hosts).name == "cmp1"
    assert pick_host("cmp1.example.org", hosts).name == "cmp1"
    assert pick_host("cmp2", hosts).name == "cmp2.example.org"
    with pytest.raises(errors.NotFound, match="known: cmp1, cmp2.example.org"):
        pick_host("cmp9", hosts)


def test_a_short_name_never_crosses_domains():
    # The node says example.org: another domain names another machine.
    hosts = [host("cmp1", node="cmp1.example.org"), host("compute3", node="compute3.fake.local")]
    with pytest.raises(errors.NotFound):
        pick_host("cmp1.other", hosts)
    with pytest.raises(errors.NotFound):
        pick_host("compute3.other.example.org", hosts)
    # Same short name in two data centres: the domain decides, the bare name is ambiguous.
    two = [host("cmp1.dc1.example.org", node=None), host("cmp1.dc2.example.org", node=None)]
    assert pick_host("cmp1.dc2.example.org", two).name == "cmp1.dc2.example.org"
    with pytest.raises(errors.Ambiguous):
        pick_host("cmp1", two)
    # A bare service host with a bare node accepts any domain typed for it.
    assert pick_host("cmp7.example.org", [host("cmp7", node="cmp7")]).name == "cmp7"


@pytest.mark.parametrize("bad", ["", " ", " cmp1", None])
def test_an_empty_host_name_is_a_usage_error(bad):
    with pytest.raises(errors.UsageError):
        pick_host(bad, [host("cmp1", node=None)])


def test_pick_server_lists_candidates_when_ambiguous():
    with pytest.raises(errors.Ambiguous) as exc:
        pick_server("vm", [server(id="a", project_id="p1"), server(id="b", project_id="p2")])
    assert "a (project p1, host compute1), b (project p2" in str(exc.value)
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------- judging

def mig(status, dest="compute2"):
    return Migration(id="1", server_id="s1", source_host="compute1", dest_host=dest, status=status,
                     migration_type="migration")


def test_judge_is_honest():
    on_target = server(host="compute2", status="VERIFY_RESIZE")
    assert judge("cold", on_target, mig("finished"), "compute2") == VERIFY
    assert judge("cold", server(host="compute2"), mig("confirmed"), "compute2") == LANDED
    assert judge("cold", server(), mig("reverted"), "compute2") == FAILED
    assert judge("cold", server(task_state="resize_migrating"), mig("migrating"), "compute2") is None
    assert judge("live", server(host="compute2"), mig("completed"), "compute2") == LANDED
    assert judge("live", server(host="compute1"), mig("completed"), "compute2") == FAILED
    assert judge("live", server(), mig("cancelled"), "compute2") == FAILED
    assert judge("live", server(status="ERROR"), mig("running"), "compute2") == FAILED
    assert judge("live", server(task_state="migrating"), mig("running"), "compute2") is None
    # Marked "error" by a resource tracker while the move goes on: not over until Nova lets go.
    assert judge("live", server(task_state="migrating"), mig("error"), "compute2") is None
    assert judge("live", server(), mig("error"), "compute2") == FAILED


# ---------------------------------------------------------------- adapter

class StubResponse:
    def __init__(self, status, body=None):
        self.status_code = status
        self._body = body
        self.content = b"x" if body is not None else b""
        self.text = str(body)

    def json(self):
        return self._body


class StubProxy:
    def __init__(self, responses, max_mv=(2, 100)):
        self.responses = responses
        self.sent = []
        self.max_mv = max_mv

    def get_endpoint_data(self):
        return type("E", (), {"max_microversion": self.max_mv})()

    def request(self, url, method, **kw):
        self.sent.append((method, url, kw))
        return self.responses.pop(0)


class StubConn:
    def __init__(self, compute):
        self.compute = compute
        self.placement = compute
        self.session = type("S", (), {"request": lambda *a, **k: None})()


def test_max_microversion_cap():
    cloud = Cloud(StubConn(StubProxy([])), max_microversion="2.55")
    assert cloud.microversion == "2.55" and not cloud.supports("2.56") and cloud.supports("2.53")
