"""Pre-flight: Nova's refusals predicted before any request, with Nova's reason, and no false
refusal (novamove.refusals; the single-move pre-checks; the drain planner)."""

from __future__ import annotations

import dataclasses

import pytest

from novamove import errors, refusals
from novamove.cloud import convert
from novamove.engine.batch import drain as drains
from novamove.engine.journal import Journal
from novamove.engine.single import mover
from novamove.model import COLD, LIVE, Flavor, Host, Resources, Server, ServerGroup, Service
from novamove.planner import CloudState, plan_drain

from fakenova import FakeNova

WRITES = {"disable_service", "enable_service", "migrate_server", "live_migrate_server"}
GOLD = Flavor("gold", 1, 512, 1, extra_specs=(("trait:CUSTOM_GOLD", "required"),))
NOGOLD = Flavor("nogold", 1, 512, 1, extra_specs=(("trait:CUSTOM_GOLD", "forbidden"),))
TPM = Flavor("tpm", 1, 512, 1, extra_specs=(("hw:tpm_version", "2.0"), ("hw:tpm_model", "tpm-crb")))
TPM_HOST = Flavor("tpm-host", 1, 512, 1, extra_specs=(("hw:tpm_version", "2.0"),
                                                      ("hw:tpm_secret_security", "host")))
SEV = Flavor("sev", 1, 512, 1, extra_specs=(("hw:mem_encryption", "True"),))
PCI = Flavor("pci", 1, 512, 1, extra_specs=(("pci_passthrough:alias", "a1:1"),))
PINNED = Flavor("pinned", 2, 512, 1, dedicated_cpus=True, extra_specs=(("hw:cpu_policy", "dedicated"),))
PLAIN = Flavor("plain", 1, 512, 1)


def srv(flavor=PLAIN, sid="s1", host="c1", **kw) -> Server:
    return Server(id=sid, name=f"vm-{sid}", status="ACTIVE", host=host, flavor=flavor, **kw)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


# ------------------------------------------------------------------ the rules (pure)

def test_a_required_trait_missing_on_the_target_is_novas_no_valid_host_naming_the_trait():
    why = refusals.trait_refusal(srv(GOLD), "c2", {"COMPUTE_NET_ATTACH_INTERFACE"})
    assert why == ("No valid host was found: c2 lacks the trait CUSTOM_GOLD that vm-s1 requires "
                   "(flavor gold: trait:CUSTOM_GOLD=required)")
    assert refusals.trait_refusal(srv(GOLD), "c2", {"CUSTOM_GOLD"}) is None
    assert refusals.trait_refusal(srv(GOLD), "c2", None) is None          # unknown: no guess


def test_image_traits_forbidden_traits_and_the_vtpm_traits_nova_adds():
    image = srv(image_properties=(("trait:CUSTOM_SSD", "required"),))   # Nova never shows it: no guess
    assert refusals.trait_refusal(image, "c2", set()) is None
    assert "has the trait CUSTOM_GOLD that vm-s1 forbids" in refusals.trait_refusal(srv(NOGOLD), "c2",
                                                                                   {"CUSTOM_GOLD"})
    assert refusals.required_traits(srv(TPM))[0] == {"COMPUTE_SECURITY_TPM_2_0", "COMPUTE_SECURITY_TPM_CRB"}
    assert refusals.required_traits(srv(image_properties=(("hw_tpm_version", "1.2"),)))[0] == {
        "COMPUTE_SECURITY_TPM_1_2", "COMPUTE_SECURITY_TPM_TIS"}
    assert "its vTPM" in refusals.trait_refusal(srv(TPM), "c2", {"COMPUTE_SECURITY_TPM_2_0"})


def test_features_that_block_live_migration_are_refused_in_novas_words():
    assert refusals.live_refusal(srv(SEV)).startswith(
        "Operation 'live-migration' not supported for mem encryption enabled instance (s1)")
    assert refusals.live_refusal(srv(TPM)).startswith(
        "Operation 'live-migration' not supported for vTPM-enabled instance (s1)")
    # Nova live-migrates a vTPM whose secret is the host's, and PCI aliases it may (not shown).
    for ok in (TPM_HOST, PCI, PLAIN, PINNED):
        assert refusals.live_refusal(srv(ok)) is None, ok.name


def test_pinned_zone_and_hard_groups():
    pinned = srv(pinned_zone="az1")
    assert "pinned to availability zone 'az1'" in refusals.zone_refusal(pinned, "c2", "az2", {"c1", "c3"})
    assert refusals.zone_refusal(pinned, "c3", "az1", {"c1", "c3"}) is None
    assert refusals.zone_refusal(srv(), "c2", "az2", {"c1"}) is None     # not pinned: free to go
    # Pinned to a zone no aggregate has (the default "nova"): Nova restricts nothing.
    assert refusals.zone_refusal(srv(pinned_zone="nova"), "c2", "az2", None) is None
    anti = ServerGroup("g1", "web", "anti-affinity", ("s1", "s2"))
    assert "c2 already holds member s2 of anti-affinity group web" in refusals.group_refusal(
        srv(), "c2", [anti], {"s2": "c2"})
    assert refusals.group_refusal(srv(), "c3", [anti], {"s2": "c2"}) is None
    aff = ServerGroup("g2", "db", "affinity", ("s1", "s3"))
    assert "affinity group db lives on c1, c2, not c3" in refusals.group_refusal(srv(), "c3", [aff], {"s3": "c2"})
    assert refusals.group_refusal(srv(), "c2", [aff], {"s3": "c2"}) is None
    soft = ServerGroup("g3", "soft", "soft-anti-affinity", ("s1", "s2"))
    assert refusals.group_refusal(srv(), "c2", [soft], {"s2": "c2"}) is None


def test_the_api_shows_extra_specs_image_properties_and_the_pinned_zone():
    body = {"id": "s1", "name": "a", "status": "ACTIVE", "pinned_availability_zone": "az1",
            "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "original_name": "gold",
                       "extra_specs": {"trait:CUSTOM_GOLD": "required", "hw:cpu_policy": "dedicated"}},
            "image": {"id": "i1", "properties": {"hw_tpm_version": "2.0", "min_ram": 0}}}
    s = convert.server_from_api(body)
    assert s.pinned_zone == "az1" and s.flavor.spec("trait:CUSTOM_GOLD") == "required"
    assert s.flavor.dedicated_cpus and dict(s.image_properties)["hw_tpm_version"] == "2.0"
    assert convert.server_from_api({**body, "image": ""}).image_properties == ()


# ------------------------------------------------------------------ single moves

def nova_with(flavor=PLAIN, **traits):
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    nova.tick_on_get = True
    nova.add("vm1", "c1", flavor=flavor)
    nova.traits = {h: set(t) for h, t in traits.items()}
    return nova


def test_a_named_target_lacking_a_required_trait_is_exit_4_with_novas_reason_and_no_write(journal):
    nova = nova_with(GOLD, c1={"CUSTOM_GOLD"})
    with pytest.raises(errors.PreconditionFailed) as exc:
        mover.move(nova, journal, "vm1", "c2")
    assert exc.value.exit_code == 4
    assert str(exc.value) == ("Nova would refuse to move vm-vm1 to c2: No valid host was found: c2 lacks "
                              "the trait CUSTOM_GOLD that vm-vm1 requires (flavor gold: trait:CUSTOM_GOLD=required)")
    assert not WRITES & set(nova.calls) and journal.runs() == []


def test_no_false_refusal_the_target_with_the_trait_is_moved_to(journal):
    nova = nova_with(GOLD, c1={"CUSTOM_GOLD"}, c2={"CUSTOM_GOLD"})
    result = mover.move(nova, journal, "vm1", "c2", poll_interval=0)
    assert result.ok and nova.servers["vm1"].host == "c2"


def test_a_plain_server_reads_no_traits_and_one_group_listing(journal):
    nova = nova_with()
    mover.move(nova, journal, "vm1", "c2", poll_interval=0)
    assert "provider_traits" not in nova.calls and nova.calls.count("list_server_groups") == 1


def test_group_membership_comes_from_the_groups_not_the_listing(journal):
    """A server found by name comes from the listing, which never shows `server_groups`."""
    nova = nova_with()
    nova.add("vm2", "c2")
    nova.groups = [ServerGroup("g1", "web", "anti-affinity", ("vm1", "vm2"))]
    with pytest.raises(errors.PreconditionFailed, match="c2 already holds member vm2"):
        mover.move(nova, journal, "vm1", "c2")


def test_live_blocking_features_refuse_live_and_let_cold_through(journal):
    nova = nova_with(SEV)
    with pytest.raises(errors.PreconditionFailed, match="not supported for mem encryption enabled instance"):
        mover.move(nova, journal, "vm1", "c2")
    assert not WRITES & set(nova.calls)
    assert mover.move(nova, journal, "vm1", "c2", mode=COLD, poll_interval=0).ok


def test_anti_affinity_on_the_target_is_refused_and_without_a_target_no_other_host_is_exit_4(journal):
    nova = nova_with()
    nova.add("vm2", "c2")
    nova.add("vm3", "c3")
    nova.servers["vm1"] = nova.servers["vm1"].replace(server_groups=("g1",))
    nova.groups = [ServerGroup("g1", "web", "anti-affinity", ("vm1", "vm2", "vm3"))]
    with pytest.raises(errors.PreconditionFailed, match="c2 already holds member vm2 of anti-affinity group web"):
        mover.move(nova, journal, "vm1", "c2")
    with pytest.raises(errors.NoCapacity, match="no other compute can take vm-vm1: .*anti-affinity group web"):
        mover.move(nova, journal, "vm1", None)
    assert not WRITES & set(nova.calls)


def test_a_pinned_zone_refuses_hosts_outside_its_aggregates_and_the_default_zone_nothing(journal):
    nova = nova_with()
    nova.servers["vm1"] = nova.servers["vm1"].replace(pinned_zone="az1")
    nova.zones = {"az1": {"c1", "c2"}}
    with pytest.raises(errors.PreconditionFailed, match="pinned to availability zone 'az1'"):
        mover.move(nova, journal, "vm1", "c3")
    assert "the scheduler chooses among: c2 " in mover.move(nova, journal, "vm1", None, check_mode=True).summary
    nova.servers["vm1"] = nova.servers["vm1"].replace(pinned_zone="nova")      # no aggregate has it
    assert mover.move(nova, journal, "vm1", "c3", poll_interval=0).ok


def test_scheduled_move_dry_run_lists_only_hosts_with_the_trait(journal):
    nova = nova_with(GOLD, c1={"CUSTOM_GOLD"}, c3={"CUSTOM_GOLD"})
    result = mover.move(nova, journal, "vm1", None, check_mode=True)
    assert "the scheduler chooses among: c3 " in result.summary


def test_a_trait_read_is_faulted_and_retried_like_any_read(journal):
    """provider_traits is an adapter verb: transient faults are ridden out by patient reads."""
    from novamove.retry import patient_reads
    nova = nova_with(GOLD, c1={"CUSTOM_GOLD"}, c2={"CUSTOM_GOLD"})
    nova.transient["provider_traits"] = 1
    result = mover.move(patient_reads(nova, patience=5), journal, "vm1", "c2", poll_interval=0)
    assert result.ok and nova.calls.count("provider_traits") == 2


# ------------------------------------------------------------------ the planner

def host(name, zone="nova", pcpus=0):
    return Host(name=name, service=Service(id=name, host=name, zone=zone),
                capacity=Resources(16, 16384, 100, pcpus))


def test_the_planner_never_chooses_a_host_without_the_required_trait():
    hosts = [host("c1"), host("big"), host("small")]
    hosts[1] = dataclasses.replace(hosts[1], capacity=Resources(64, 65536, 100))   # the RAM weigher's pick
    state = CloudState(hosts, [srv(GOLD), srv(PLAIN, sid="s2")],
                       traits={"big": frozenset(), "small": frozenset({"CUSTOM_GOLD"})})
    plan = plan_drain(state, ["c1"])
    dest = {s.server_id: s.dest for s in plan.steps}
    assert dest == {"s1": "small", "s2": "big"}                   # no false refusal of s2


def test_the_planner_skips_with_novas_reason_when_no_host_has_the_trait():
    state = CloudState([host("c1"), host("c2")], [srv(GOLD)], traits={"c2": frozenset()})
    [step] = plan_drain(state, ["c1"]).steps
    assert step.dest is None and step.skip_reason.startswith("No valid host was found: c2 lacks the trait CUSTOM_GOLD")


def test_the_planner_keeps_a_pinned_zone_and_refuses_live_blocked_servers_with_the_reason():
    state = CloudState([host("c1", zone="az1"), host("c2", zone="az1"), host("c3", zone="az2")],
                       [srv(pinned_zone="az2"), srv(TPM, sid="s2"), srv(TPM, sid="s3")])
    steps = {s.server_id: s for s in plan_drain(state, ["c1"]).steps}
    assert steps["s1"].dest == "c3"
    assert steps["s2"].dest is None and "not supported for vTPM-enabled instance (s2)" in steps["s2"].skip_reason
    cold = {s.server_id: s for s in plan_drain(state, ["c1"], mode=COLD).steps}
    assert cold["s2"].dest and cold["s2"].mode == COLD


def test_the_planner_predicts_a_pcpu_shortfall():
    state = CloudState([host("c1"), host("c2"), host("c3", pcpus=4)], [srv(PINNED)])
    [step] = plan_drain(state, ["c1"]).steps
    assert step.dest == "c3"
    state = CloudState([host("c1"), host("c2")], [srv(PINNED)])
    [step] = plan_drain(state, ["c1"]).steps
    assert step.dest is None and "dedicated CPU (PCPU)" in step.skip_reason


def test_a_drain_reads_each_hosts_traits_once_and_only_when_a_server_needs_them():
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    for i in range(6):
        nova.add(f"v{i}", "c1")
    drains.make_plan(nova, ["c1"])
    assert "provider_traits" not in nova.calls
    for i in range(6):
        nova.add(f"g{i}", "c1", flavor=GOLD)
    nova.traits = {"c2": {"CUSTOM_GOLD"}}
    cache = drains.TraitCache(nova)
    plan = drains.make_plan(nova, ["c1"], traits=cache)
    drains.make_plan(nova, ["c1"], traits=cache)                  # a re-plan in the same run
    assert nova.calls.count("provider_traits") == 2               # c2 and c3, once each
    assert {s.dest for s in plan.steps if s.server_id.startswith("g")} == {"c2"}
    assert LIVE in {s.mode for s in plan.steps}


def test_reads_a_policy_forbids_leave_the_decision_to_nova(journal):
    """No prediction without the facts: a 403 on the groups or traits reads is not a refusal."""
    nova = nova_with(GOLD, c1={"CUSTOM_GOLD"}, c2={"CUSTOM_GOLD"})

    def forbidden(*args):
        raise errors.Forbidden("policy does not allow this")
    nova.list_server_groups = forbidden
    nova.provider_traits = forbidden
    assert mover.move(nova, journal, "vm1", "c2", poll_interval=0).ok
