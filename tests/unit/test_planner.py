"""The drain planner: pure logic over model values, no cloud."""

from __future__ import annotations

import pytest

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Flavor, Host, Resources, Server, ServerGroup, Service
from novamove.planner import CloudState, plan_drain

SMALL = Flavor("small", vcpus=1, ram=512, disk=1)
BIG = Flavor("big", vcpus=4, ram=4096, disk=10)


def host(name, vcpus=16, ram=16384, disk=100, used=Resources(), zone="nova", status="enabled", state="up"):
    return Host(name=name, service=Service(id=name, host=name, zone=zone, status=status, state=state),
                hypervisor_hostname=f"{name}.fake.local", capacity=Resources(vcpus, ram, disk), used=used)


def server(sid, host_name, status="ACTIVE", flavor=SMALL, groups=(), task_state=None):
    return Server(id=sid, name=f"vm-{sid}", status=status, host=host_name, flavor=flavor,
                  server_groups=tuple(groups), task_state=task_state)


def test_every_movable_server_gets_a_destination_and_mode_follows_status():
    state = CloudState(hosts=[host("c1"), host("c2"), host("c3")],
                       servers=[server("a", "c1"), server("b", "c1", "SHUTOFF"),
                                server("c", "c1", "PAUSED"), server("x", "c2")])
    plan = plan_drain(state, ["c1"])
    by_id = {s.server_id: s for s in plan.steps}
    assert set(by_id) == {"a", "b", "c"}            # only the drained host's servers
    assert by_id["a"].mode == LIVE and by_id["c"].mode == LIVE
    assert by_id["b"].mode == COLD
    assert all(s.dest in ("c2", "c3") for s in plan.steps)
    assert plan.sources == ("c1",) and plan.kind == "drain"


def test_error_shelved_and_busy_servers_are_skipped_with_a_reason():
    state = CloudState(hosts=[host("c1"), host("c2")],
                       servers=[server("e", "c1", "ERROR"), server("s", "c1", "SHELVED"),
                                server("t", "c1", task_state="migrating"), server("ok", "c1")])
    plan = plan_drain(state, ["c1"])
    skipped = {s.server_id: s.skip_reason for s in plan.skipped}
    assert set(skipped) == {"e", "s", "t"}
    assert "ERROR" in skipped["e"] and "task_state migrating" in skipped["t"]
    assert [s.server_id for s in plan.moves] == ["ok"]
    assert plan.steps[-1].dest is None               # skipped steps come last


def test_forced_modes_skip_servers_the_mode_cannot_move():
    state = CloudState(hosts=[host("c1"), host("c2")],
                       servers=[server("on", "c1"), server("off", "c1", "SHUTOFF"), server("p", "c1", "PAUSED")])
    live = {s.server_id: s for s in plan_drain(state, ["c1"], mode="live").steps}
    assert live["off"].dest is None and "live migration needs" in live["off"].skip_reason
    assert live["on"].mode == LIVE and live["p"].mode == LIVE
    cold = {s.server_id: s for s in plan_drain(state, ["c1"], mode="cold").steps}
    assert cold["on"].mode == COLD and cold["off"].mode == COLD
    assert cold["p"].dest is None


def test_capacity_is_inventory_minus_usage_minus_earlier_steps():
    # c2 has room for exactly one BIG server, c3 for none: the second BIG one is unplaceable.
    state = CloudState(hosts=[host("c1"), host("c2", ram=8192, used=Resources(0, 4096, 0)),
                              host("c3", ram=4096, used=Resources(0, 1024, 0))],
                       servers=[server("b1", "c1", flavor=BIG), server("b2", "c1", flavor=BIG)])
    plan = plan_drain(state, ["c1"])
    dests = sorted((s.dest or "-") for s in plan.steps)
    assert dests == ["-", "c2"]
    assert "no capacity" in plan.skipped[0].skip_reason


def test_spreads_by_free_ram_like_novas_default_weigher():
    state = CloudState(hosts=[host("c1"), host("c2", ram=8192), host("c3", ram=8192)],
                       servers=[server(str(i), "c1") for i in range(4)])
    dests = [s.dest for s in plan_drain(state, ["c1"]).steps]
    assert dests.count("c2") == 2 and dests.count("c3") == 2


def test_disabled_down_hosts_and_other_sources_are_never_destinations():
    state = CloudState(hosts=[host("c1"), host("c2", status="disabled"), host("c3", state="down"),
                              host("c4"), host("c5")],
                       servers=[server(str(i), h) for i, h in enumerate(["c1", "c1", "c4", "c4"])])
    plan = plan_drain(state, ["c1", "c4"])
    assert {s.dest for s in plan.steps} == {"c5"}
    dest_check = next(c for c in plan.checks if c.name == "destinations")
    assert "excluded disabled: c2" in dest_check.detail and "excluded down: c3" in dest_check.detail


def test_to_limits_the_choice():
    state = CloudState(hosts=[host("c1"), host("c2", ram=65536), host("c3")],
                       servers=[server("a", "c1"), server("b", "c1")])
    plan = plan_drain(state, ["c1"], targets=["c3"])
    assert {s.dest for s in plan.steps} == {"c3"}


def test_anti_affinity_members_land_on_different_hosts_avoiding_existing_members():
    g = ServerGroup("g", "web", "anti-affinity", members=("a", "b", "c"))
    state = CloudState(hosts=[host("c1"), host("c2", ram=65536), host("c3"), host("c4")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", groups=["g"]),
                                server("c", "c2", groups=["g"])],
                       groups=[g])
    plan = plan_drain(state, ["c1"])
    dests = [s.dest for s in plan.steps]
    assert sorted(dests) == ["c3", "c4"]              # not c2 (holds c), not both on one host


def test_anti_affinity_without_enough_hosts_skips_with_the_group_named():
    g = ServerGroup("g", "web", "anti-affinity", members=("a", "b"))
    state = CloudState(hosts=[host("c1"), host("c2")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", groups=["g"])],
                       groups=[g])
    plan = plan_drain(state, ["c1"])
    assert len(plan.moves) == 1 and "anti-affinity group g" in plan.skipped[0].skip_reason


def test_membership_from_group_member_lists_alone_is_honoured():
    # Servers listed without server_groups (older microversions): the group's members still count.
    g = ServerGroup("g", "web", "anti-affinity", members=("a", "b"))
    state = CloudState(hosts=[host("c1"), host("c2"), host("c3")],
                       servers=[server("a", "c1"), server("b", "c1")], groups=[g])
    assert sorted(s.dest for s in plan_drain(state, ["c1"]).steps) == ["c2", "c3"]


def test_soft_policies_do_not_constrain():
    g = ServerGroup("g", "web", "soft-anti-affinity", members=("a", "b"))
    state = CloudState(hosts=[host("c1"), host("c2")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", groups=["g"])], groups=[g])
    assert [s.dest for s in plan_drain(state, ["c1"]).steps] == ["c2", "c2"]


def test_affinity_group_moves_only_to_a_host_already_holding_members():
    g = ServerGroup("g", "db", "affinity", members=("a", "b", "c"))
    state = CloudState(hosts=[host("c1"), host("c2", ram=65536), host("c3")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", groups=["g"]),
                                server("c", "c3", groups=["g"])], groups=[g])
    assert {s.dest for s in plan_drain(state, ["c1"]).steps} == {"c3"}


def test_affinity_group_entirely_on_the_drained_host_is_skipped_with_why():
    g = ServerGroup("g", "db", "affinity", members=("a", "b"))
    state = CloudState(hosts=[host("c1"), host("c2")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", groups=["g"])], groups=[g])
    plan = plan_drain(state, ["c1"])
    assert not plan.moves
    assert all("hard affinity group g" in s.skip_reason for s in plan.skipped)


def test_servers_stay_in_their_availability_zone():
    state = CloudState(hosts=[host("c1", zone="az1"), host("c2", zone="az2", ram=65536), host("c3", zone="az1")],
                       servers=[server("a", "c1"), server("b", "c1")])
    assert {s.dest for s in plan_drain(state, ["c1"]).steps} == {"c3"}
    only_other_zone = plan_drain(state, ["c1"], targets=["c2"])
    assert all("availability zone 'az1'" in s.skip_reason for s in only_other_zone.steps)


@pytest.mark.parametrize("order,first", [("largest", "big"), ("smallest", "small"), ("name", "a-big")])
def test_order(order, first):
    state = CloudState(hosts=[host("c1"), host("c2", ram=65536)],
                       servers=[Server("1", "a-big" if order == "name" else "big", "ACTIVE", "c1", flavor=BIG),
                                Server("2", "small", "ACTIVE", "c1", flavor=SMALL)])
    assert plan_drain(state, ["c1"], order=order).steps[0].server_name == first


def test_empty_host_plans_nothing():
    plan = plan_drain(CloudState(hosts=[host("c1"), host("c2")], servers=[]), ["c1"])
    assert plan.steps == []


@pytest.mark.parametrize("kwargs,error", [
    ({"sources": ["nope"]}, NotFound),
    ({"sources": ["c1"], "targets": ["c1"]}, UsageError),
    ({"sources": ["c1"], "mode": "warp"}, UsageError),
    ({"sources": ["c1"], "order": "random"}, UsageError),
    ({"sources": ["c1"], "max_parallel": 0}, UsageError),
    ({"sources": []}, UsageError),
])
def test_bad_input_is_one_line_error(kwargs, error):
    state = CloudState(hosts=[host("c1"), host("c2")], servers=[])
    sources = kwargs.pop("sources")
    with pytest.raises(error) as exc:
        plan_drain(state, sources, **kwargs)
    assert "\n" not in str(exc.value)


def test_hypervisor_hostname_typo_names_the_service_host():
    with pytest.raises(NotFound, match="compute service host is 'c1'"):
        plan_drain(CloudState(hosts=[host("c1"), host("c2")], servers=[]), ["c1.fake.local"])


def test_plan_round_trips_through_json(tmp_path):
    from novamove.planner import load_plan, save_plan
    g = ServerGroup("g", "web", "anti-affinity", members=("a", "b"))
    state = CloudState(hosts=[host("c1"), host("c2"), host("c3")],
                       servers=[server("a", "c1", groups=["g"]), server("b", "c1", "SHUTOFF", groups=["g"]),
                                server("e", "c1", "ERROR")], groups=[g])
    plan = plan_drain(state, ["c1"], reason="kernel update", max_parallel=3, max_per_host=1,
                      created_at="2026-01-01T00:00:00Z")
    path = tmp_path / "plan.json"
    save_plan(plan, str(path))
    again = load_plan(str(path))
    assert again == plan


@pytest.mark.parametrize("text,match", [
    ("{", "cannot read plan"),
    ("[]", "not a novamove plan"),
    ('{"format": "novamove-plan/1", "kind": "drain"}', "malformed plan"),
    ('{"format": "novamove-plan/1", "kind": "drain", "sources": ["c1"], "steps": [{"server_id": "a", '
     '"source": "c1", "mode": "teleport"}]}', "bad mode"),
    ('{"format": "novamove-plan/1", "kind": "drain", "sources": ["c1"], "steps": [1]}', "step 1 is not an object"),
    ('{"format": "novamove-plan/1", "kind": "drain", "sources": ["c1"], "steps": {"a": 1}}', "must be a list"),
    ('{"format": "novamove-plan/1", "kind": "drain", "sources": ["c1"], "steps": [], "max_parallel": 0}',
     "caps must be at least 1"),
])
def test_bad_plan_files_are_one_line_usage_errors(tmp_path, text, match):
    from novamove.planner import load_plan
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=match) as exc:
        load_plan(str(path))
    assert "\n" not in str(exc.value)


def test_missing_plan_file():
    from novamove.planner import load_plan
    with pytest.raises(UsageError, match="not found"):
        load_plan("/nonexistent/plan.json")


# ---------------------------------------------------------------- capacity beyond VCPU/RAM/disk

def test_a_volume_backed_server_needs_no_local_root_disk():
    # 100 GB root disks: only the volume-backed one fits a host with 20 GB of local disk left.
    fat = Flavor("fat-disk", vcpus=1, ram=512, disk=100)
    on_volume = Server(id="vol", name="vm-vol", status="ACTIVE", host="c1", flavor=fat, volume_backed=True)
    on_image = Server(id="img", name="vm-img", status="ACTIVE", host="c1", flavor=fat)
    state = CloudState(hosts=[host("c1"), host("c2", disk=20)], servers=[on_volume, on_image])
    plan = plan_drain(state, ["c1"])
    by = {s.server_id: s for s in plan.steps}
    assert by["vol"].dest == "c2" and by["vol"].need.disk_gb == 0
    assert by["img"].dest is None and "100 GB disk" in by["img"].skip_reason


def test_dedicated_cpu_flavors_need_pcpu_inventory():
    pinned = Flavor("pinned", vcpus=4, ram=1024, disk=1, dedicated_cpus=True)
    assert pinned.resources == Resources(0, 1024, 1, 4)
    shared_only = host("c2")                                  # VCPU inventory only
    with_pcpus = Host(name="c3", service=Service(id="c3", host="c3", zone="nova"), hypervisor_hostname="c3.fake.local",
                      capacity=Resources(16, 16384, 100, 8))
    state = CloudState(hosts=[host("c1"), shared_only, with_pcpus],
                       servers=[Server(id="p", name="vm-p", status="ACTIVE", host="c1", flavor=pinned)])
    step = plan_drain(state, ["c1"]).steps[0]
    assert step.dest == "c3"
    crowded = CloudState(hosts=[host("c1"), shared_only], servers=state.servers)
    assert "4 dedicated CPU (PCPU)" in plan_drain(crowded, ["c1"]).steps[0].skip_reason


def test_placement_pcpu_and_volume_backed_from_api_bodies():
    from novamove.cloud import convert
    inv = {"PCPU": {"total": 8, "reserved": 0, "allocation_ratio": 1.0}, "VCPU": {"total": 4}}
    assert convert.capacity_from_inventories(inv).pcpus == 8
    assert convert.used_from_usages({"PCPU": 2}).pcpus == 2
    flavor = convert.flavor_from_api({"vcpus": 2, "ram": 64, "disk": 1,
                                      "extra_specs": {"hw:cpu_policy": "dedicated"}})
    assert flavor.dedicated_cpus and flavor.resources.pcpus == 2 and flavor.resources.vcpus == 0
    body = {"id": "x", "image": "", "flavor": {"vcpus": 1, "ram": 64, "disk": 5}}
    assert convert.server_from_api(body).volume_backed
    assert not convert.server_from_api(dict(body, image={"id": "img"})).volume_backed
