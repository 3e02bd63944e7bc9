"""Pure campaign planning: host selection and order, intents, N+K per stage, estimate."""

import pytest

from novamove.engine.campaign.intents import INTENT_KEY, intents_of, order_hosts, select_hosts, server_intent
from novamove.engine.campaign.planning import estimate
from novamove.engine.campaign.simulate import plan_campaign
from novamove.errors import NotFound, UsageError
from novamove.model import Flavor, Host, Resources, Server, ServerGroup, Service
from novamove.planner import CloudState

NANO = Flavor("m1.nano", 1, 512, 1)


def host(name, zone="nova", ram=2048, vcpus=8, enabled=True, up=True, reason=None):
    svc = Service(id=name, host=name, zone=zone, status="enabled" if enabled else "disabled",
                  state="up" if up else "down", disabled_reason=reason)
    return Host(name, svc, f"{name}.node", capacity=Resources(vcpus, ram, 100))


def srv(sid, on, status="ACTIVE", tags=(), groups=()):
    return Server(id=sid, name=sid, status=status, host=on, flavor=NANO, tags=tuple(tags),
                  server_groups=tuple(groups))


def state(hosts, servers, groups=()):
    used = {}
    for s in servers:
        used[s.host] = used.get(s.host, Resources()) + NANO.resources
    hosts = [Host(h.name, h.service, h.hypervisor_hostname, h.capacity, used.get(h.name, Resources()))
             for h in hosts]
    return CloudState(hosts, servers, groups)


def test_intent_from_tag_and_unknown_value_reported():
    assert server_intent(srv("a", "c1", tags=[f"{INTENT_KEY}=stop"])) == ("stop", None)
    assert server_intent(srv("a", "c1", tags=["other", f"{INTENT_KEY}=COLD"])) == ("cold", None)
    assert server_intent(srv("a", "c1")) == (None, None)
    got, problems = intents_of([srv("a", "c1", tags=[f"{INTENT_KEY}=reboot"])])
    assert got == {} and "unknown" in problems[0] and "reboot" in problems[0]


def test_select_hosts_names_zone_all_and_errors():
    hs = [host("c1", "az1"), host("c2", "az2"), host("c3", "az1")]
    assert select_hosts(hs, ["c2.node", "c1"]) == ["c2", "c1"]
    assert select_hosts(hs, zone="az1") == ["c1", "c3"]
    assert select_hosts(hs, all_hosts=True) == ["c1", "c2", "c3"]
    assert select_hosts(hs, aggregate_hosts=["c3", "c2"]) == ["c2", "c3"]
    assert select_hosts(hs, zone="az1", aggregate_hosts=["c3", "c2"]) == ["c3"]
    with pytest.raises(NotFound):
        select_hosts(hs, ["c9"])
    with pytest.raises(NotFound):
        select_hosts(hs, zone="nope")
    with pytest.raises(UsageError):
        select_hosts(hs)


def test_order_empty_first_then_policy():
    counts = {"a": 3, "b": 0, "c": 1, "d": 2}
    assert order_hosts(["a", "b", "c", "d"], counts, "fewest") == ["b", "c", "d", "a"]
    assert order_hosts(["d", "a", "b", "c"], counts, "name") == ["b", "a", "c", "d"]
    assert order_hosts(["d", "a", "b", "c"], counts, "given") == ["b", "d", "a", "c"]
    with pytest.raises(UsageError):
        order_hosts(["a"], counts, "random")


def test_stages_of_k_and_moves_and_capacity_left():
    hs = [host(f"c{i}") for i in range(1, 5)]
    servers = [srv("a1", "c1"), srv("a2", "c1"), srv("b1", "c2"), srv("c1s", "c3", status="SHUTOFF")]
    plan = plan_campaign(state(hs, servers), ["c1", "c2", "c3", "c4"], max_hosts=2)
    assert plan.ok, plan.problems
    # c4 is empty: first; then fewest servers first (c2: 1, c3: 1, c1: 2).
    assert plan.hosts == ["c4", "c2", "c3", "c1"]
    assert [s.hosts for s in plan.stages] == [["c4", "c2"], ["c3", "c1"]]
    st2 = plan.stages[1]
    # stage 1 has no host the campaign will not empty again: b1 moves twice
    assert [m.server_id for m in plan.stages[0].moves] == ["b1"]
    assert {m.server_id for m in st2.moves} == {"c1s", "a1", "a2", "b1"}
    assert all(m.dest in ("c2", "c4") for m in st2.moves)        # the stage's hosts are out
    assert next(m.mode for m in st2.moves if m.server_id == "c1s") == "cold"
    # capacity left is reported per destination, after the stage's moves
    assert st2.free_after and all(r.memory_mb < 2048 for r in st2.free_after.values())


def test_n_plus_k_refused_with_numbers():
    # 3 hosts of 2048 MB, each holds 3 x 512: taking 2 out leaves one host for 6 servers.
    hs = [host(f"c{i}") for i in range(1, 4)]
    servers = [srv(f"s{h}{i}", f"c{h}") for h in range(1, 4) for i in range(3)]
    plan = plan_campaign(state(hs, servers), ["c1", "c2", "c3"], max_hosts=2)
    assert not plan.ok
    assert "find no destination" in plan.problems[0] and "MB RAM" in plan.problems[0]
    assert "1 host(s) can receive" in plan.problems[0]
    # one at a time fits: each host's 3 servers go to the two others (1 free slot each... no:
    # 2048 - 1536 = 512 each, so only 2 fit): still refused, with stage 1 named.
    plan1 = plan_campaign(state(hs, servers), ["c1", "c2", "c3"], max_hosts=1)
    assert not plan1.ok and plan1.problems[0].startswith("stage 1")


def test_destinations_not_yet_serviced_avoided_when_possible():
    hs = [host(f"c{i}") for i in range(1, 5)]
    servers = [srv("a1", "c1"), srv("a2", "c1"), srv("b1", "c2"), srv("c1s", "c3", status="SHUTOFF")]
    plan = plan_campaign(state(hs, servers), ["c1", "c2", "c3", "c4"], max_hosts=1)
    assert plan.hosts == ["c4", "c2", "c3", "c1"]
    moves = [(m.server_id, m.dest) for s in plan.stages for m in s.moves]
    assert ("b1", "c4") in moves and len(moves) == 4     # every server moved once


def test_later_stage_sees_earlier_moves():
    # Two big hosts absorb; c1's servers land on c3 then c3 is serviced: they must move again.
    hs = [host("c1", ram=2048), host("c2", ram=1024), host("c3", ram=4096)]
    servers = [srv("x1", "c1"), srv("x2", "c1"), srv("x3", "c1")]
    plan = plan_campaign(state(hs, servers), ["c1", "c3"], max_hosts=1, order="given")
    assert plan.ok, plan.problems
    assert [s.hosts for s in plan.stages] == [["c3"], ["c1"]]   # c3 empty first
    assert [len(s.moves) for s in plan.stages] == [0, 3]


def test_stop_and_skip_intents():
    hs = [host(f"c{i}") for i in range(1, 4)]
    servers = [srv("keep", "c1", tags=[f"{INTENT_KEY}=stop"]), srv("m", "c1"),
               srv("never", "c2", tags=[f"{INTENT_KEY}=skip"])]
    plan = plan_campaign(state(hs, servers), ["c1", "c2"], max_hosts=1)
    assert plan.host_plans["c1"].stop == ["keep"] and plan.host_plans["c1"].moves == 1
    assert not plan.host_plans["c2"].serviced and "--allow-skip" in plan.host_plans["c2"].why_not
    assert plan.hosts == ["c1"]
    assert [m.server_id for m in plan.stages[0].moves] == ["m"]
    allowed = plan_campaign(state(hs, servers), ["c1", "c2"], max_hosts=1, allow_skip=True)
    assert "c2" in allowed.hosts and not any(m.server_id == "never" for s in allowed.stages for m in s.moves)


def test_live_intent_on_shutoff_and_unmovable_block_host():
    hs = [host(f"c{i}") for i in range(1, 4)]
    servers = [srv("off", "c1", status="SHUTOFF", tags=[f"{INTENT_KEY}=live"]), srv("bad", "c2", status="ERROR")]
    plan = plan_campaign(state(hs, servers), ["c1", "c2"])
    assert not plan.host_plans["c1"].serviced and "live migration" in plan.host_plans["c1"].why_not
    assert not plan.host_plans["c2"].serviced and "--allow-unmovable" in plan.host_plans["c2"].why_not
    ok = plan_campaign(state(hs, servers), ["c2"], allow_unmovable=True)
    assert ok.hosts == ["c2"]


def test_disabled_by_someone_else_or_down_not_serviced():
    hs = [host("c1", enabled=False, reason="broken fan"), host("c2", up=False),
          host("c3", enabled=False, reason="novamove:run1: drain: maintain"), host("c4")]
    servers = [srv("a", "c2")]
    plan = plan_campaign(state(hs, servers), ["c1", "c2", "c3"], run_id="run1")
    assert not plan.host_plans["c1"].serviced and "someone else" in plan.host_plans["c1"].why_not
    assert not plan.host_plans["c2"].serviced and "down" in plan.host_plans["c2"].why_not
    assert plan.hosts == ["c3"]


def test_anti_affinity_honoured_across_stages():
    hs = [host(f"c{i}") for i in range(1, 5)]
    g = ServerGroup("g", "g", "anti-affinity", ("p1", "p2"))
    servers = [srv("p1", "c1", groups=["g"]), srv("p2", "c2", groups=["g"])]
    plan = plan_campaign(state(hs, servers, [g]), ["c1", "c2"], max_hosts=1, order="given")
    dests = {m.server_id: m.dest for s in plan.stages for m in s.moves}
    assert dests["p1"] != "c2" and dests["p2"] != dests["p1"]


def test_estimate_overlaps_hooks_with_later_drains():
    # 3 hosts, drains 10 s, hooks 100 s, gate 0: one at a time = 330 s; two at once: the two
    # are drained together (10 s), hooks overlap, the third goes when they are back; three at
    # once: one drain of all three.
    assert estimate([10, 10, 10], 1, 100, 0) == 330
    assert estimate([10, 10, 10], 2, 100, 0) == 220
    assert estimate([10, 10, 10], 3, 100, 0) == 110
    # A drain of several hosts together takes what the caps allow: here 25 s for the pair.
    assert estimate([10, 10, 10], 2, 100, 0, together=lambda idx: 25.0 if len(idx) > 1 else 10.0) == 235
    plan = plan_campaign(state([host("c1"), host("c2")], [srv("a", "c1")]), ["c1"],
                         move_seconds=5, hook_seconds=60, gate_seconds=10)
    assert plan.estimate_seconds == 75


def test_bad_max_hosts_and_unknown_host():
    st = state([host("c1")], [])
    with pytest.raises(UsageError):
        plan_campaign(st, ["c1"], max_hosts=0)
    with pytest.raises(NotFound):
        plan_campaign(st, ["zz"])


def test_server_in_flight_is_not_unmovable():
    # A server a killed drain left moving is the drain's to finish, not a reason to skip the host.
    hs = [host("c1"), host("c2")]
    moving = Server(id="m", name="m", status="MIGRATING", host="c1", flavor=NANO, task_state="migrating")
    plan = plan_campaign(state(hs, [moving]), ["c1"])
    assert plan.host_plans["c1"].serviced and plan.hosts == ["c1"]


def test_a_stop_or_skip_server_brought_in_as_a_group_mate_is_never_planned_to_move():
    # "keep" stays on c1 (stop); its anti-affinity mate "mate" on c2 is serviced in the same
    # stage: the group brings "keep" into the stage's view, which must not make it a move.
    hs = [host(f"c{i}") for i in range(1, 5)]
    g = ServerGroup("g", "g", "anti-affinity", ("keep", "mate"))
    servers = [srv("keep", "c1", tags=[f"{INTENT_KEY}=stop"], groups=["g"]), srv("mate", "c2", groups=["g"]),
               srv("other", "c1")]
    plan = plan_campaign(state(hs, servers, [g]), ["c1", "c2"], max_hosts=2)
    moved = [m.server_id for s in plan.stages for m in s.moves]
    assert "keep" not in moved and sorted(moved) == ["mate", "other"]
    assert plan.ok, plan.problems
