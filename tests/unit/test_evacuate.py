"""The evacuate engine (preconditions -> plan -> fence/force down/disable -> capped evacuations)
and unfence, against an in-memory Nova that behaves like nova 34 where it matters:
- evacuate is refused with ComputeServiceInUse (400) while the source's service is up;
- only ACTIVE / SHUTOFF / ERROR servers with no task are evacuated;
- evacuation records go accepted -> pre-migrating -> done; at 2.95 the server lands SHUTOFF;
- forced_down cannot be cleared while `done` evacuation records remain (nova-compute cleans
  them up -> `completed` when it starts).
"""

from __future__ import annotations

import dataclasses

import pytest

from novamove import errors
from novamove.engine import evacuate as evac
from novamove.engine import recover as recovery
from novamove.engine.evacuate import (EVACUATED, FAILED, SKIPPED, UNPLACED, evacuate, is_our_evacuate_reason,
                                      unfence)
from novamove.engine.journal import Journal
from novamove.model import Flavor, Resources, ServerGroup

from fakenova import FakeNova

BIG = Flavor("big", vcpus=32, ram=60000, disk=10)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def fast(**kw):
    clock = Clock()
    return dict(clock=clock, sleep=clock.sleep, poll_interval=1.0, **kw)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def failed_host_cloud():
    """c3 failed (down per Nova) with ACTIVE, SHUTOFF, ERROR servers, an anti-affinity member
    (its sibling on c1), a PAUSED one, a busy one and a skip-tagged one."""
    nova = FakeNova()
    nova.groups = [ServerGroup("g", "web", "anti-affinity", members=("a1", "a2"))]
    for i in range(5):
        nova.add(f"v{i}", "c3")
    nova.add("off", "c3", "SHUTOFF")
    nova.add("err", "c3", "ERROR")
    nova.add("a1", "c3", groups=["g"])
    nova.add("a2", "c1", groups=["g"])
    nova.add("paused", "c3", "PAUSED")
    nova.add("busy", "c3", task="powering-off")
    nova.add("keep", "c3", tags=[evac.SKIP_TAG])
    nova.down("c3")
    return nova


EVACUABLE = ["v0", "v1", "v2", "v3", "v4", "off", "err", "a1"]


def assert_clean(nova, journal, host="c3"):
    """Every evacuable server evacuated exactly once, on another host, in the expected state;
    the host forced down and disabled with our tag; nothing unfinished in the journal."""
    for sid in EVACUABLE:
        s = nova.servers[sid]
        assert s.host not in (host, None), sid
        assert not s.task_state
        assert s.status == ("SHUTOFF" if sid == "off" else "ACTIVE"), sid
        assert [r["status"] for r in nova.evacuations_of(sid)] == ["done"], sid
    assert nova.servers["a1"].host != nova.servers["a2"].host
    for sid in ("paused", "busy", "keep"):
        assert nova.servers[sid].host == host and not nova.evacuations_of(sid)
    svc = nova.services[host]
    assert svc.forced_down and svc.status == "disabled" and is_our_evacuate_reason(svc.disabled_reason)
    assert journal.unfinished_runs() == []
    for run in journal.runs(limit=1000):
        assert all(e.state != "intent" for e in journal.events(run["id"])), run


# ------------------------------------------------------------------------------ the happy path

def test_evacuates_every_evacuable_server_under_caps(journal):
    nova = failed_host_cloud()
    report = evacuate(nova, "c3", journal=journal, fenced=True, max_parallel=3, max_per_host=1, **fast())
    by = {r.server_id: r for r in report.results}
    assert {s for s, r in by.items() if r.result == EVACUATED} == set(EVACUABLE)
    assert by["keep"].result == SKIPPED and "novamove:maintenance=skip" in by["keep"].detail
    assert by["paused"].result == UNPLACED and "PAUSED" in by["paused"].detail
    assert by["busy"].result == UNPLACED and "powering-off" in by["busy"].detail
    assert not report.ok and report.exit_code == 8          # two servers stay down: said so
    assert nova.max_in_flight <= 3 and max(nova.max_per_dest.values()) == 1
    assert report.peak_in_flight == 3
    assert_clean(nova, journal)
    # forced down before the first evacuation, never `force`d
    assert nova.calls.index("forced_down=True") < next(i for i, c in enumerate(nova.calls) if c.startswith("evacuate"))
    assert "plan" not in report.summary and report.summary.startswith("evacuate c3: 8 evacuated")


def test_ok_when_everything_evacuable_landed(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.add("b", "c3", "SHUTOFF")
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert report.ok and report.exit_code == 0 and report.changed
    assert nova.servers["b"].status == "SHUTOFF" and nova.servers["a"].status == "ACTIVE"
    assert report.to_dict()["results"][0]["result"] == EVACUATED


def test_power_stopped_lands_everything_stopped_at_2_95(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, power="stopped", **fast())
    assert report.ok and nova.servers["a"].status == "SHUTOFF"


def test_power_stopped_is_refused_below_2_95_before_any_change(journal):
    nova = FakeNova(microversion=(2, 90))
    nova.add("a", "c3")
    nova.down("c3")
    with pytest.raises(errors.PreconditionFailed, match="2.95"):
        evacuate(nova, "c3", journal=journal, fenced=True, power="stopped", **fast())
    assert nova.calls == [] and journal.runs() == []


def test_unplaceable_server_is_reported_with_the_reason(journal):
    nova = FakeNova(hosts=("c1", "c3"), capacity=Resources(8, 8192, 100))
    nova.add("huge", "c3", flavor=BIG)
    nova.add("ok", "c3")
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, max_down_percent=100, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["huge"].result == UNPLACED and "capacity" in by["huge"].detail
    assert by["ok"].result == EVACUATED
    assert report.exit_code == 8


def test_failed_evacuation_carries_novas_reason(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.add("b", "c3")
    nova.fail_servers = {"a"}
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["a"].result == FAILED and "late group check" in by["a"].detail
    assert by["b"].result == EVACUATED
    assert report.exit_code == 1
    # a rerun tries the failed one again (it is still on the failed host), nothing else
    nova.fail_servers = set()
    again = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert again.ok and nova.servers["a"].host != "c3"
    assert len(nova.evacuations_of("b")) == 1


def test_dry_run_changes_nothing_and_shows_the_plan(journal):
    nova = failed_host_cloud()
    report = evacuate(nova, "c3", journal=journal, dry_run=True, fence_cmd="exit 1", **fast())
    assert report.dry_run and report.ok and not report.changed
    assert nova.records == [] and not nova.services["c3"].forced_down
    assert journal.runs() == []
    planned = {r.server_id for r in report.results if r.result == "planned"}
    assert planned == set(EVACUABLE)
    assert {c.name for c in report.plan.checks} >= {"fencing", "stop-loss", "destinations", "servers"}
    assert "would run the fence command" in report.service
    assert report.to_dict()["plan"]["steps"]


# ------------------------------------------------------------------------------ refusals

def _nothing_changed(nova, journal):
    assert nova.records == []
    assert not any(c.startswith(("forced_down", "disable", "evacuate")) for c in nova.calls)
    assert all(not s.forced_down and s.status == "enabled" for s in nova.services.values())
    assert [r for r in journal.runs() if r["status"] not in ("failed",)] == []


def test_up_and_unfenced_is_refused(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    with pytest.raises(errors.PreconditionFailed, match="c3 is not fenced \\(up\\)"):
        evacuate(nova, "c3", journal=journal, **fast())
    _nothing_changed(nova, journal)


def test_failing_fence_command_is_refused(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    with pytest.raises(errors.PreconditionFailed, match="fence command exited 3 \\(no ipmi\\)"):
        evacuate(nova, "c3", journal=journal, fence_cmd="echo no ipmi >&2; exit 3", **fast())
    _nothing_changed(nova, journal)


def test_fence_command_gets_the_host_and_then_the_service_is_forced_down(journal, tmp_path):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.silent = {"c3"}            # powered off; Nova still shows it up (service_down_time)
    nova.last_report["c3"] = nova.now
    out = tmp_path / "fenced"
    report = evacuate(nova, "c3", journal=journal, fence_cmd=f"echo $NOVAMOVE_HOST $NOVAMOVE_HYPERVISOR > {out}",
                      quiet_period=20, **fast())
    assert out.read_text().split() == ["c3", "c3.fake"]
    assert report.ok and nova.services["c3"].forced_down
    assert "no report for 2" in report.fence and "in Nova clock" in report.fence


def test_fenced_assertion_accepts_an_up_compute_that_stopped_reporting(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.silent = {"c3"}
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert report.ok and nova.servers["a"].host != "c3"


def test_down_per_nova_alone_is_not_fenced(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.down("c3")                 # a crashed nova-compute or a partition: guests may still run
    with pytest.raises(errors.PreconditionFailed, match="not fenced \\(down per Nova, its guests may still run\\)"):
        evacuate(nova, "c3", journal=journal, **fast())
    _nothing_changed(nova, journal)


def test_fence_command_exiting_0_while_the_compute_keeps_reporting_changes_nothing(journal):
    nova = FakeNova()
    nova.add("a", "c3")             # c3 up and reporting: the fence command hit the wrong host
    with pytest.raises(errors.PreconditionFailed, match="fenced but its nova-compute still reports"):
        evacuate(nova, "c3", journal=journal, fence_cmd="true", **fast())
    _nothing_changed(nova, journal)
    [run] = journal.runs()
    assert run["status"] == "failed"
    assert [(e.kind, e.state) for e in journal.events(run["id"]) if e.kind == evac.EV_FENCE] == [
        (evac.EV_FENCE, "done")]


def test_operator_assertion_on_a_compute_that_keeps_reporting_is_refused(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    with pytest.raises(errors.PreconditionFailed, match="still reports"):
        evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    _nothing_changed(nova, journal)
    assert journal.runs() == []


def test_forced_down_compute_that_still_reports_is_refused(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], forced_down=True, state="down")
    nova.alive = {"c3"}             # someone forced it down without fencing it
    with pytest.raises(errors.PreconditionFailed, match="forced down but its nova-compute still reports"):
        evacuate(nova, "c3", journal=journal, **fast())
    assert nova.records == [] and journal.runs() == []


def test_quiet_period_is_waited_out_without_the_clouds_clock(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.silent = {"c3"}
    nova.last_report["c3"] = nova.now       # it reported a moment ago
    nova.cloud_now = lambda: None           # a cloud whose answers carry no Date header
    t = fast()
    report = evacuate(nova, "c3", journal=journal, fenced=True, quiet_period=30, **t)
    assert report.ok and t["clock"]() >= 30 and "no report for 30 s" in report.fence


def test_stop_loss_refuses_when_too_many_computes_are_down(journal):
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    nova.add("a", "c3")
    nova.down("c3")
    nova.down("c2")
    with pytest.raises(errors.PreconditionFailed, match="stop-loss: 2 of 3 computes"):
        evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    _nothing_changed(nova, journal)
    report = evacuate(nova, "c3", journal=journal, fenced=True, max_down_percent=70, **fast())
    assert report.ok


@pytest.mark.parametrize("kwargs, error", [
    (dict(power="sideways"), errors.UsageError),
    (dict(fenced=True, fence_cmd="true"), errors.UsageError),
    (dict(max_parallel=0), errors.UsageError),
    (dict(targets=["nowhere"]), errors.NotFound),
    (dict(targets=["c3"]), errors.UsageError),
])
def test_bad_input_changes_nothing(journal, kwargs, error):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.down("c3")
    with pytest.raises(error):
        evacuate(nova, "c3", journal=journal, **fast(**kwargs))
    _nothing_changed(nova, journal)


def test_unknown_host(journal):
    with pytest.raises(errors.NotFound):
        evacuate(FakeNova(), "nope", journal=journal, **fast())


def test_someone_elses_disabled_reason_is_kept(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.down("c3")
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], status="disabled", disabled_reason="RMA 42")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert report.ok and nova.services["c3"].disabled_reason == "RMA 42"
    assert "someone else" in report.service


# ------------------------------------------------------------------------------ ambiguity

def test_lost_answer_is_read_back_and_never_posted_twice(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.lost_answer = {"a"}
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert report.ok
    assert sum(c.startswith("evacuate a") for c in nova.calls) == 1
    assert len(nova.evacuations_of("a")) == 1


def test_post_that_never_reached_nova_is_failed_and_retried_by_a_rerun(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.lost_before = {"a"}
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    [r] = report.results
    assert r.result == FAILED and "did not start it" in r.detail
    again = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert again.ok and len(nova.evacuations_of("a")) == 1


# ------------------------------------------------------------------------------ kill points

class Killed(BaseException):
    """Stands for SIGKILL: nothing below the raise runs, not even journal bookkeeping."""


class KillingJournal(Journal):
    """Dies at its `at`-th write: `before` = instead of the write (the API call it follows was
    made, its outcome never written), else right after it (the call it announces never made)."""

    def __init__(self, path, at, before):
        super().__init__(path)
        self.writes, self.at, self.before, self.dead = 0, at, before, False

    def _write(self, sql, args):
        if self.dead:
            raise Killed()
        self.writes += 1
        if self.at and self.writes == self.at:
            self.dead = True
            if self.before:
                raise Killed()
            out = super()._write(sql, args)
            raise Killed()
        return super()._write(sql, args)


def _count_writes(tmp_path) -> int:
    nova = failed_host_cloud()
    j = KillingJournal(tmp_path / "count.sqlite", at=0, before=False)
    evacuate(nova, "c3", journal=j, fence_cmd="true", max_parallel=3, max_per_host=2, **fast())
    return j.writes


@pytest.mark.parametrize("finisher", ["rerun", "recover"])
@pytest.mark.parametrize("before", [True, False], ids=["before-write", "after-write"])
def test_killed_at_every_journaled_step_ends_clean(tmp_path, finisher, before):
    total = _count_writes(tmp_path)
    assert total > 20
    for at in range(1, total + 1):
        nova = failed_host_cloud()
        path = tmp_path / f"j-{finisher}-{before}-{at}.sqlite"
        j = KillingJournal(path, at=at, before=before)
        try:
            evacuate(nova, "c3", journal=j, fence_cmd="true", max_parallel=3, max_per_host=2, **fast())
        except Killed:
            pass
        journal = Journal(path)
        if finisher == "recover":
            reports = recovery.recover(nova, journal, runner_kwargs=fast())
            for rep in reports:
                if "run `novamove evacuate c3" in rep["summary"] or "--fence-cmd" in rep["summary"]:
                    evacuate(nova, "c3", journal=journal, fence_cmd="true", **fast())
            if not journal.runs() or journal.runs()[0]["status"] not in ("ok", "failed", "recovered"):
                evacuate(nova, "c3", journal=journal, fence_cmd="true", **fast())
        else:
            evacuate(nova, "c3", journal=journal, fence_cmd="true", max_parallel=3, max_per_host=2, **fast())
        try:
            assert_clean(nova, journal)
        except AssertionError as exc:
            raise AssertionError(f"killed at journal write {at} ({'before' if before else 'after'}): {exc}")


def test_recover_continues_a_killed_evacuation_and_follows_what_is_in_flight(tmp_path):
    nova = failed_host_cloud()
    path = tmp_path / "j.sqlite"
    polls = {"n": 0}

    def die():
        polls["n"] += 1
        if polls["n"] == 1:
            raise Killed()
    nova.on_list = die
    j = KillingJournal(path, at=0, before=False)
    with pytest.raises(Killed):
        j_finish = j.finish_run
        j.finish_run = lambda *a, **k: None          # a SIGKILL writes nothing on the way out
        evacuate(nova, "c3", journal=j, fenced=True, max_parallel=3, **fast())
    nova.on_list = None
    in_flight = {r["server"] for r in nova.records if r["status"] != "done"}
    assert in_flight
    journal = Journal(path)
    [first] = journal.unfinished_runs()
    reports = recovery.recover(nova, journal)
    assert any("continued by evacuate run" in r["summary"] for r in reports)
    assert journal.get_run(first["id"])["status"] == "recovered"
    assert_clean(nova, journal)
    del j_finish


# ------------------------------------------------------------------------------ unfence

def _evacuated(journal):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.add("b", "c3", "SHUTOFF")
    nova.down("c3")
    assert evacuate(nova, "c3", journal=journal, fenced=True, **fast()).ok
    return nova


def test_unfence_refuses_while_nova_compute_is_not_reporting(journal):
    nova = _evacuated(journal)
    with pytest.raises(errors.PreconditionFailed, match="not reporting"):
        unfence(nova, "c3", journal=journal, wait=3, **fast())
    assert nova.services["c3"].forced_down and nova.services["c3"].status == "disabled"


def test_unfence_refuses_while_duplicates_are_left_with_the_list(journal):
    nova = _evacuated(journal)
    nova.alive = {"c3"}                       # reporting, but it did not clean up (yet)
    with pytest.raises(errors.PreconditionFailed, match=r"still holds 2 evacuated server\(s\).*vm-a"):
        unfence(nova, "c3", journal=journal, wait=3, **fast())
    assert nova.services["c3"].forced_down


def test_unfence_clears_forced_down_enables_and_moves_back(journal):
    nova = _evacuated(journal)
    nova.restart_compute("c3")
    rep = unfence(nova, "c3", journal=journal, move_back=True, wait=5, **fast())
    assert rep.ok, rep.to_dict()
    svc = nova.services["c3"]
    assert not svc.forced_down and svc.status == "enabled" and svc.state == "up"
    assert nova.servers["a"].host == "c3" and nova.servers["b"].host == "c3"
    assert rep.count("moved") == 2
    # a second move-back has nothing left to bring home
    again = unfence(nova, "c3", journal=journal, move_back=True, wait=5, **fast())
    assert again.ok and not again.changed and again.results == []


def test_unfence_leaves_someone_elses_disabled_host_disabled(journal):
    nova = _evacuated(journal)
    nova.restart_compute("c3")
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], disabled_reason="RMA 42")
    rep = unfence(nova, "c3", journal=journal, wait=5, **fast())
    assert not nova.services["c3"].forced_down
    assert nova.services["c3"].status == "disabled" and "someone else" in rep.service


def test_unfence_move_back_to_a_host_someone_else_disabled_fails_with_what_is_left(journal):
    nova = _evacuated(journal)
    nova.restart_compute("c3")
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], disabled_reason="RMA 42")
    rep = unfence(nova, "c3", journal=journal, wait=5, move_back=True, **fast())
    assert not rep.ok and rep.exit_code == errors.EXIT_FAILED
    assert rep.results and {r.result for r in rep.results} == {FAILED}
    assert all("disabled by someone else (RMA 42)" in r.detail for r in rep.results)
    assert all(s.host != "c3" for s in nova.servers.values())          # nothing moved
    assert nova.services["c3"].status == "disabled" and nova.services["c3"].disabled_reason == "RMA 42"
    assert journal.runs()[0]["status"] == "failed"


def test_unfence_clears_only_a_forced_down_novamove_set(journal):
    nova = FakeNova()
    nova.add("a", "c2")
    # Someone (a fencing agent, an operator) forced c2 down; its nova-compute still reports.
    nova.services["c2"] = dataclasses.replace(nova.services["c2"], forced_down=True, state="down")
    nova.alive = {"c2"}
    dry = unfence(nova, "c2", journal=journal, dry_run=True, wait=3, **fast())
    assert "stays forced down: novamove did not set it" in dry.service
    rep = unfence(nova, "c2", journal=journal, wait=3, **fast())
    assert nova.services["c2"].forced_down                           # left as its owner set it
    assert "forced_down=False" not in nova.calls
    assert not rep.ok and rep.exit_code == errors.EXIT_FAILED
    assert any("openstack compute service set --up c2 nova-compute" in r.detail for r in rep.results)
    # One novamove forced down (journaled) is cleared, even if its reason was changed since.
    nova2 = _evacuated(journal)
    nova2.restart_compute("c3")
    nova2.services["c3"] = dataclasses.replace(nova2.services["c3"], disabled_reason="RMA 42")
    assert unfence(nova2, "c3", journal=journal, wait=5, **fast()).changed
    assert not nova2.services["c3"].forced_down


def test_unfence_dry_run_changes_nothing(journal):
    nova = _evacuated(journal)
    nova.restart_compute("c3")
    rep = unfence(nova, "c3", journal=journal, move_back=True, dry_run=True, **fast())
    assert rep.dry_run and not rep.changed
    assert nova.services["c3"].forced_down
    assert {r.result for r in rep.results} == {"planned"}


class _Unfence:
    """An evacuated cloud whose c3 came back (cleaned up), ready for unfence."""

    @staticmethod
    def make(path):
        nova = FakeNova()
        nova.add("a", "c3")
        nova.add("b", "c3", "SHUTOFF")
        nova.down("c3")
        assert evacuate(nova, "c3", journal=Journal(path), fenced=True, **fast()).ok
        nova.restart_compute("c3")
        return nova


@pytest.mark.parametrize("before", [True, False], ids=["before-write", "after-write"])
def test_unfence_killed_at_every_journaled_step_ends_clean_on_rerun(tmp_path, before):
    probe = tmp_path / "probe.sqlite"
    nova = _Unfence.make(probe)
    j = KillingJournal(probe, at=0, before=False)
    unfence(nova, "c3", journal=j, move_back=True, wait=5, **fast())
    total = j.writes
    assert total >= 6
    for at in range(1, total + 1):
        path = tmp_path / f"u-{before}-{at}.sqlite"
        nova = _Unfence.make(path)
        try:
            unfence(nova, "c3", journal=KillingJournal(path, at=at, before=before), move_back=True, wait=5,
                    **fast())
        except Killed:
            pass
        journal = Journal(path)
        rep = unfence(nova, "c3", journal=journal, move_back=True, wait=5, **fast())
        where = f"killed at unfence journal write {at} ({'before' if before else 'after'})"
        assert rep.ok, (where, rep.to_dict())
        svc = nova.services["c3"]
        assert not svc.forced_down and svc.status == "enabled", where
        assert nova.servers["a"].host == "c3" and nova.servers["b"].host == "c3", where
        assert len(getattr(nova, "moves", [])) == 2, where                      # each moved back once
        assert journal.unfinished_runs() == [], where
        for run in journal.runs(limit=100):
            assert all(e.state != "intent" for e in journal.events(run["id"])), (where, run)


# ------------------------------------------------------------------------------ NOVAMOVE_FAULT hooks

@pytest.mark.parametrize("fault", ["evacuate.server:after:timeout:1", "evacuate.force-down:after:timeout",
                                   "evacuate.disable:after:error", "evacuate.server:before:timeout:1"])
def test_injected_lost_answers_are_read_back(journal, monkeypatch, fault):
    from novamove.engine import faults
    faults.reset()
    monkeypatch.setenv("NOVAMOVE_FAULT", fault)
    nova = FakeNova()
    nova.add("a", "c3")
    nova.add("b", "c3")
    nova.down("c3")
    report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    monkeypatch.delenv("NOVAMOVE_FAULT")
    faults.reset()
    if fault.endswith("before:timeout:1"):
        # the POST never left: read back as not started, failed; a rerun evacuates it
        assert report.exit_code == 1
        report = evacuate(nova, "c3", journal=journal, fenced=True, **fast())
    assert report.ok, report.to_dict()
    assert all(len(nova.evacuations_of(s)) == 1 for s in ("a", "b"))
    svc = nova.services["c3"]
    assert svc.forced_down and is_our_evacuate_reason(svc.disabled_reason)
    assert journal.unfinished_runs() == []
    for run in journal.runs():
        assert all(e.state != "intent" for e in journal.events(run["id"]))


def test_recover_sweep_and_isolate_leave_an_evacuated_host_alone(journal):
    from novamove.engine.tags import is_isolation_tag
    from novamove.engine.single.strategies.isolate import isolating_runs
    nova = _evacuated(journal)
    reason = nova.services["c3"].disabled_reason
    assert not is_isolation_tag(reason)
    assert isolating_runs(nova.compute_hosts(), "someone") == {}
    nova.list_migrations = lambda **kw: []
    recovery.recover(nova, journal)
    assert nova.services["c3"].status == "disabled" and nova.services["c3"].disabled_reason == reason


def test_unfence_waits_for_placement_to_drop_the_disabled_trait_before_moving_back(journal):
    nova = _evacuated(journal)
    nova.restart_compute("c3")
    seen = {"n": 0}

    def traits(node):
        seen["n"] += 1
        return {"COMPUTE_NODE"} | ({"COMPUTE_STATUS_DISABLED"} if seen["n"] < 4 else set())
    nova.provider_traits = traits
    rep = unfence(nova, "c3", journal=journal, move_back=True, wait=5, **fast())
    assert rep.ok and seen["n"] == 4 and rep.count("moved") == 2


def test_fence_command_is_killed_whole_on_timeout_and_gets_no_secrets(journal, tmp_path, monkeypatch):
    nova = FakeNova()
    nova.add("a", "c3")
    nova.silent = {"c3"}
    child = tmp_path / "child.pid"
    monkeypatch.setenv("OS_PASSWORD", "hunter2")
    with pytest.raises(errors.PreconditionFailed, match="did not finish within 1 s"):
        evacuate(nova, "c3", journal=journal, fence_timeout=1,
                 fence_cmd=f"sleep 60 & echo $! > {child}; wait", **fast())
    import os
    import time
    pid = int(child.read_text())
    for _ in range(50):                      # the shell's child went with the group
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the fence command's child outlived its timeout")
    assert not nova.services["c3"].forced_down
    seen = tmp_path / "env"
    evacuate(nova, "c3", journal=journal, fence_cmd=f"env > {seen}", **fast())
    assert "hunter2" not in seen.read_text() and "NOVAMOVE_HOST=c3" in seen.read_text()


def test_nova_showing_the_compute_down_during_the_quiet_period_ends_the_wait(journal):
    """Fenced by the operator, the compute reported a moment ago: the quiet period starts; once
    Nova shows it down (its service_down_time shorter than the quiet period), that is proof at
    once: the evacuation does not wait out the rest."""
    nova = FakeNova()
    nova.add("a", "c3")
    nova.silent = {"c3"}
    nova.last_report["c3"] = nova.now       # it reported a moment ago
    listed = nova.list_compute_services
    t = fast()
    t0 = t["clock"]()

    def services():
        if t["clock"]() - t0 >= 6:          # Nova's service_down_time has passed
            nova.down("c3")
        return listed()
    nova.list_compute_services = services
    report = evacuate(nova, "c3", journal=journal, fenced=True, quiet_period=60, **t)
    assert report.ok and "Nova shows it down" in report.fence, report.fence
    assert t["clock"]() - t0 < 60
