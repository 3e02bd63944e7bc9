"""Hosts a campaign admits together (K > 1) are drained together: one drain, every host's moves
in flight at the same time under its own caps, each host judged on its own share of the drain
(runner.py `_joiners`, takeout.py `_take_out`)."""

from __future__ import annotations

from novamove.engine import campaign as camp
from novamove.engine.campaign import Options, run_campaign
from novamove.model import Resources, ServerGroup

from fakenova import FakeNova
# The campaign tests' fixtures: a quick poll (autouse) and a journal file of the test's own.
from test_campaign import fast, journal  # noqa: F401


def opts(**kw):
    base = dict(hook="true", max_hosts=2, poll_interval=0.01, gate_timeout=5, gate="heartbeat")
    base.update(kw)
    return Options(**base)


def two_full_hosts(per_host: int = 2) -> FakeNova:
    f = FakeNova(hosts=("c1", "c2", "c3", "c4"))
    for h in ("c1", "c2"):
        for i in range(per_host):
            f.add(f"{h}-{i}", h)
    return f


def test_hosts_admitted_together_are_drained_in_one_drain(journal):
    f = two_full_hosts()
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts())
    assert rep.ok, rep.summary
    runs = {r.host: r.drain_run for r in rep.results}
    assert runs["c1"] and runs["c1"] == runs["c2"]
    # Both sources' moves in flight at once: more than one host's cap (--max-per-host 2).
    assert f.max_in_progress > 2 and max(f.max_per_source.values()) <= 2
    assert {r.host: r.moved for r in rep.results} == {"c1": 2, "c2": 2}
    assert all(s.host in ("c3", "c4") for s in f.servers.values())
    assert all(s.enabled for s in f.services.values())


def test_at_k1_hosts_are_drained_one_after_another(journal):
    f = two_full_hosts()
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts(max_hosts=1))
    assert rep.ok, rep.summary
    assert rep.results[0].drain_run != rep.results[1].drain_run
    assert f.max_in_progress <= 2


def test_a_host_that_does_not_fit_beside_the_first_waits_its_turn(journal):
    """Someone boots servers onto the destinations after the campaign's plan: each host still
    fits alone, not both at once. The second is not drained with the first and not refused; it
    goes once the first is back."""
    f = FakeNova(hosts=("c1", "c2", "c3", "c4"), capacity=Resources(3, 3 * 512, 3))
    for h in ("c1", "c2"):
        for i in range(2):
            f.add(f"{h}-{i}", h)
    usage = f.host_usage

    def booted_meanwhile(name):
        if "x3" not in f.servers:           # the first stage's fresh read of a host
            for h in ("c3", "c4"):
                f.add(f"x{h[1]}", h)
                f.add(f"y{h[1]}", h)
        return usage(name)
    f.host_usage = booted_meanwhile
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts(order="given"))
    assert rep.ok, rep.summary
    assert rep.results[0].drain_run != rep.results[1].drain_run
    assert rep.peak_out == 1


def test_hosts_sharing_a_server_group_are_not_drained_together(journal):
    f = two_full_hosts()
    f.groups = [ServerGroup("grp", "grp", "soft-anti-affinity", ("c1-0", "c2-0"))]
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts())
    assert rep.ok, rep.summary
    assert rep.results[0].drain_run != rep.results[1].drain_run


def test_one_hosts_failure_in_a_shared_drain_fails_that_host_only(journal):
    f = two_full_hosts()
    f.fail_servers = {"c2-1"}
    f.add("c3-0", "c3")
    rep = run_campaign(f, journal, ["c1", "c2", "c3"], options=opts(max_failed_hosts=1, order="given"))
    by_host = {r.host: r for r in rep.results}
    assert by_host["c1"].drain_run == by_host["c2"].drain_run
    assert by_host["c1"].outcome == "done" and by_host["c1"].moved == 2
    assert by_host["c2"].outcome == "failed" and "vm-c2-1" in by_host["c2"].detail
    assert by_host["c3"].outcome == "not-started"       # the stop-loss: one host failed
    assert not rep.ok and rep.exit_code != 0
    assert f.services["c1"].enabled and not f.services["c2"].enabled


def _c2_back_only_after_c1(f: FakeNova) -> None:
    """c2 sends no report from its disable until a moment after c1 is enabled again: c2 sits in
    its gate (its hook, `true`, ended long before c1's, `sleep 1`) when c1 comes back."""
    import threading
    disable, enable = f.disable_service, f.enable_service

    def disable_service(service, reason):
        if service.host == "c2" and "c2" not in f.silent and f.services["c2"].enabled:
            f.silent.add("c2")
        return disable(service, reason)

    def enable_service(service):
        out = enable(service)
        if service.host == "c1":
            threading.Timer(0.3, f.silent.discard, ("c2",)).start()
        return out
    f.disable_service, f.enable_service = disable_service, enable_service


HOOK_C1_SLOW = '[ "$NOVAMOVE_HOST" != c1 ] || sleep 1'


def _drain_runs_with_c2_back_after_c1(journal) -> dict:
    """A campaign over c1-c4, one server each (c5 free), K=2, c2 back only after c1: each
    host's drain run."""
    f = FakeNova(hosts=("c1", "c2", "c3", "c4", "c5"))
    for h in ("c1", "c2", "c3", "c4"):
        f.add(f"{h}-0", h)
    _c2_back_only_after_c1(f)
    rep = run_campaign(f, journal, ["c1", "c2", "c3", "c4"], options=opts(order="given", hook=HOOK_C1_SLOW))
    assert rep.ok, rep.summary
    return {r.host: r.drain_run for r in rep.results}


def test_a_free_slot_waits_a_little_for_a_host_nearly_back_so_the_next_two_go_together(journal):
    """c1 and c2 go out together; c2's gate passes a moment after c1 is back: the slot c1 frees
    waits for c2's (at most PAIR_WAIT), and c3 and c4 are drained together too."""
    runs = _drain_runs_with_c2_back_after_c1(journal)
    assert runs["c1"] == runs["c2"] and runs["c3"] == runs["c4"] and runs["c1"] != runs["c3"], runs


def test_without_the_wait_the_next_host_goes_alone(journal, monkeypatch):
    monkeypatch.setattr(camp.common, "PAIR_WAIT", 0.0)
    runs = _drain_runs_with_c2_back_after_c1(journal)
    assert runs["c1"] == runs["c2"] and runs["c3"] != runs["c4"], runs   # c3 went alone, c2 in its gate


def test_the_wait_for_company_holds_one_slot_only_while_a_host_out_is_past_its_hook(journal):
    from novamove.engine.campaign.report import HostResult, _Out
    now = [0.0]
    f = FakeNova()
    c = camp.Campaign(f, journal, "r1", ["c1", "c2", "c3", "c4"], opts(), clock=lambda: now[0])
    c.queue = ["c3", "c4"]
    c.out = {"c2": _Out("c2", HostResult("c2"), 0.0)}
    for phase, waits in (("hook", False), ("gate", True), ("check", True), ("return", True)):
        c.out["c2"].phase = phase
        c._alone_since = None
        assert c._wait_for_company() is waits, phase
    now[0] = camp.common.PAIR_WAIT + 1                  # bounded
    assert c._wait_for_company() is False
    c._alone_since = None
    c.queue = ["c3"]                                    # nobody to pair with
    assert c._wait_for_company() is False
    c.queue, c.out = ["c3", "c4"], {}                   # two slots free: both go now
    assert c._wait_for_company() is False
