"""`novamove doctor --fix` on the one fake Nova (tests/unit/fakenova.py): each repair made
through the public APIs, journaled, read back and then scanned again; the guards that leave a
finding alone when the cloud changed since the scan or the state is someone else's; Placement's
409 ("a concurrent change won"); and NOVAMOVE_FAULT at each repair's change (error, timeout,
kill, before and after the call): the journal says what happened, the exit code is 1 or the
documented one, and the scan after it (or the next doctor) tells the truth."""

from __future__ import annotations

import dataclasses
import os

import pytest

from novamove import errors
from novamove.engine import events, faults, tags
from novamove.engine import recover as recovery
from novamove.engine.doctor import Options, detect, doctor, scan
from novamove.engine.doctor.repair import FAILED, FIXED, SKIPPED, Repairer
from novamove.engine.journal import Journal
from tests.unit.fakenova import FakeNova


class Clock:
    """A clock that only moves when the code under test sleeps (no real waiting)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.01)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


@pytest.fixture(autouse=True)
def no_faults(monkeypatch):
    monkeypatch.delenv("NOVAMOVE_FAULT", raising=False)
    faults.reset()
    yield
    faults.reset()


def run_doctor(nova, journal, *classes, fix=True, **opts):
    clock = Clock()
    return doctor(nova, journal, Options(**opts), fix=fix,
                  fix_classes=list(classes) if classes and fix else None,
                  heartbeat_gap=5.0, repair_timeout=20, poll_interval=1, sleep=clock.sleep, clock=clock)


def found(nova, journal) -> list[str]:
    clock = Clock()
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0, sleep=clock.sleep, clock=clock)
    return sorted(f.klass for f in detect(snap, Options()))


def fast_repairer(nova, journal) -> Repairer:
    clock = Clock()
    return Repairer(nova, journal, "r1", timeout=20, interval=1, sleep=clock.sleep, clock=clock)


def doctor_events(journal, run_id):
    return [e for e in journal.events(run_id) if e.kind in events.DOCTOR_KINDS]


# ---------------------------------------------------------------------- drift, made on the fake

def unconfirmed(nova, sid="s1", src="c1", dst="c2"):
    """A cold move left in VERIFY_RESIZE (its migration finished two hours ago)."""
    nova.add(sid, src)
    nova.migrate_server(sid, dst)
    while nova.servers[sid].status != "VERIFY_RESIZE":
        nova.list_migrations_changed_since(None)
    nova.tick_on_get = True              # the confirm is carried out as doctor reads the server back
    return nova.migrations[-1]["id"]


def leaked(nova, sid="s2", src="c1", dst="c2"):
    """A live move that completed while Placement kept its migration's consumer on the source."""
    nova.add(sid, src)
    mid = str(next(nova.ids))
    nova.migrations.append({"id": mid, "server": sid, "source": src, "dest": dst, "kind": "live", "step": 4,
                            "status": "completed", "orig_status": "ACTIVE"})
    nova.placement[f"mig-{mid}"] = {"alloc": dict(nova.placement[sid]["alloc"]), "gen": 3, "project": "p1",
                                    "user": "u1"}
    nova.placement[sid]["alloc"] = {f"rp-{dst}": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
    nova.servers[sid] = nova.servers[sid].replace(host=dst, hypervisor_hostname=f"{dst}.fake")
    return f"mig-{mid}"


def ghost(nova, consumer="deleted-vm", host="c3"):
    """Allocations of a server that was deleted (no server, no migration)."""
    nova.allocate(consumer, host)
    return consumer


def isolation_left(nova, journal, host="c3", status=events.RUN_FAILED, verb="migrate"):
    """A compute disabled with the tag of a novamove run that is over."""
    run_id = journal.start_run(f"run-{host}-{status}", verb)
    if status != events.RUN_RUNNING:
        journal.finish_run(run_id, status)
    nova.disable_service(nova.services[host], tags.tagged_reason(run_id, None))
    return run_id


def forced_down_by_us(nova, journal, host="c4"):
    """A compute an evacuation of this journal forced down, whose nova-compute keeps reporting."""
    run_id = journal.start_run("evac-run", events.VERB_EVACUATE, source=host)
    with journal.change(run_id, events.EVACUATE_FORCE_DOWN, host, service_id=f"svc-{host}"):
        nova.set_service_forced_down(nova.services[host], True)
    journal.finish_run(run_id, events.RUN_FAILED)
    nova.alive.add(host)
    return run_id


def stuck_task(nova, sid="s5", host="c1", *, status="ACTIVE", vm_state="active", power_state=1):
    """A server whose task state says migrating although its last migration failed (it stayed
    on its source)."""
    nova.add(sid, host)
    nova.servers[sid] = nova.servers[sid].replace(task_state="migrating", status=status, vm_state=vm_state,
                                                  power_state=power_state)
    mid = str(next(nova.ids))
    nova.migrations.append({"id": mid, "server": sid, "source": host, "dest": "c2", "kind": "live", "step": 2,
                            "status": "error", "orig_status": status})
    return mid


# ---------------------------------------------------------------------- each repair, read back

def test_confirm_a_forgotten_verify_resize_only_when_named_and_on_its_destination(journal):
    nova = FakeNova()
    mid = unconfirmed(nova)
    assert found(nova, journal) == ["verify-resize-forgotten"]
    plain = run_doctor(nova, journal)                      # one-way: not in the default set
    assert plain.repairs == [] and plain.exit_code == errors.EXIT_FINDINGS
    assert nova.servers["s1"].status == "VERIFY_RESIZE"

    rep = run_doctor(nova, journal, "verify-resize-forgotten")
    assert [(r.klass, r.target, r.outcome, r.one_way, r.undo) for r in rep.repairs] == \
        [("verify-resize-forgotten", "s1", FIXED, True, None)]
    assert nova.servers["s1"].status == "ACTIVE" and nova.servers["s1"].host == "c2"
    assert nova.migrations[-1]["status"] == "confirmed" and f"mig-{mid}" not in nova.placement
    ev, = doctor_events(journal, rep.run_id)
    assert (ev.kind, ev.target, ev.state, ev.data["one_way"], ev.data["host"]) == \
        (events.DOCTOR_CONFIRM, "s1", "done", True, "c2")
    assert rep.left == [] and rep.exit_code == 0 and journal.get_run(rep.run_id)["status"] == "ok"


def test_a_verify_resize_not_on_its_destination_is_never_confirmed(journal):
    nova = FakeNova()
    unconfirmed(nova)
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    # Someone moved it back (or Nova's host was corrected) between the scan and the repair.
    nova.servers["s1"] = nova.servers["s1"].replace(host="c1")
    r, = fast_repairer(nova, journal).run([f])
    assert r.outcome == SKIPPED and "not on its migration's destination c2" in r.detail
    assert "confirm" not in " ".join(nova.calls) and nova.servers["s1"].status == "VERIFY_RESIZE"
    # And found there by the scan, it is not repairable at all.
    rep = run_doctor(nova, journal, "verify-resize-forgotten")
    assert rep.repairs == [] and rep.exit_code == errors.EXIT_FINDINGS
    assert rep.findings[0].repairable is False and nova.servers["s1"].status == "VERIFY_RESIZE"


def test_delete_an_ended_migrations_allocations_with_the_consumer_generation(journal):
    nova = FakeNova()
    consumer = leaked(nova)
    assert found(nova, journal) == ["migration-allocation-leaked"]
    rep = run_doctor(nova, journal)                        # safe: plain --fix
    r, = rep.repairs
    assert (r.klass, r.target, r.outcome, r.one_way) == ("migration-allocation-leaked", consumer, FIXED, False)
    assert "PUT /allocations/" in r.undo
    assert nova.placement[consumer]["alloc"] == {}
    assert nova.placement["s2"]["alloc"] == {"rp-c2": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
    ev, = doctor_events(journal, rep.run_id)
    assert (ev.kind, ev.state, ev.data["generation"]) == (events.DOCTOR_DELETE_ALLOCATIONS, "done", 3)
    assert ev.data["allocations"] == {"rp-c1": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}   # what undoes it
    assert rep.exit_code == 0 and rep.left == []


def test_a_concurrent_change_to_the_consumer_wins(journal):
    nova = FakeNova()
    consumer = leaked(nova)
    nova.bump_on_delete.add(consumer)                      # someone writes it between read and delete
    rep = run_doctor(nova, journal)
    r, = rep.repairs
    assert r.outcome == SKIPPED and r.detail.startswith("a concurrent change won") and "409" in r.detail
    assert nova.placement[consumer]["alloc"]               # nothing deleted
    ev, = doctor_events(journal, rep.run_id)
    assert ev.state == "failed" and "409" in ev.data["error"]
    assert [f.klass for f in rep.left] == ["migration-allocation-leaked"]
    assert rep.exit_code == errors.EXIT_FINDINGS           # not "a repair did not take"


def test_allocations_that_changed_since_the_scan_are_left_alone(journal):
    nova = FakeNova()
    consumer = leaked(nova)
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    nova.allocate(consumer, "c3")                          # it holds more now
    r, = fast_repairer(nova, journal).run([f])
    assert r.outcome == SKIPPED and "changed since the scan" in r.detail
    assert "delete_consumer_allocations" not in nova.calls


def test_an_unknown_consumers_allocations_only_when_named(journal):
    nova = FakeNova()
    consumer = ghost(nova)
    assert found(nova, journal) == ["consumer-unknown"]
    plain = run_doctor(nova, journal)
    assert plain.repairs == [] and plain.exit_code == errors.EXIT_FINDINGS and nova.placement[consumer]["alloc"]
    rep = run_doctor(nova, journal, "consumer-unknown")
    r, = rep.repairs
    assert (r.outcome, r.one_way, r.undo) == (FIXED, True, None)
    assert nova.placement[consumer]["alloc"] == {} and rep.exit_code == 0
    ev, = doctor_events(journal, rep.run_id)
    assert ev.data["allocations"] == {"rp-c3": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}


def test_an_unknown_consumer_that_turns_out_to_be_a_server_is_left_alone(journal):
    nova = FakeNova()
    ghost(nova, "late-vm")
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    nova.add("late-vm", "c3")                              # the server was listed after all
    r, = fast_repairer(nova, journal).run([f])
    assert r.outcome == SKIPPED and "is a server" in r.detail and nova.placement["late-vm"]["alloc"]


def test_re_enable_a_compute_only_while_it_carries_the_dead_runs_tag(journal):
    nova = FakeNova()
    run_id = isolation_left(nova, journal)
    assert found(nova, journal) == ["compute-isolation-left"]
    rep = run_doctor(nova, journal)                        # safe: plain --fix
    r, = rep.repairs
    assert (r.klass, r.target, r.outcome) == ("compute-isolation-left", "c3", FIXED)
    assert "--disable" in r.undo and run_id in r.undo
    assert nova.services["c3"].status == "enabled" and rep.exit_code == 0
    ev, = doctor_events(journal, rep.run_id)
    assert (ev.kind, ev.state, ev.data["reason"]) == (events.DOCTOR_ENABLE, "done",
                                                      tags.tagged_reason(run_id, None))


def test_someone_elses_disabled_reason_is_left_alone(journal):
    nova = FakeNova()
    isolation_left(nova, journal)
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    # An operator took the host over since the scan: same host, their reason.
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], disabled_reason="RAM swap, bob")
    r, = fast_repairer(nova, journal).run([f])
    assert r.outcome == SKIPPED and "not run" in r.detail
    assert "enable_service" not in nova.calls and nova.services["c3"].status == "disabled"
    # Found that way by the scan, it is no finding at all.
    rep = run_doctor(nova, journal)
    assert rep.findings == [] and rep.repairs == [] and nova.services["c3"].disabled_reason == "RAM swap, bob"


def test_a_dead_drains_tag_only_when_its_class_is_named(journal):
    nova = FakeNova()
    run_id = journal.start_run("drain-run", "drain", source="c3")
    journal.finish_run(run_id, events.RUN_FAILED)
    nova.disable_service(nova.services["c3"], tags.drain_reason(run_id, None))
    assert found(nova, journal) == ["compute-tag-dead-run"]
    assert run_doctor(nova, journal).repairs == [] and nova.services["c3"].status == "disabled"
    rep = run_doctor(nova, journal, "compute-tag-dead-run")
    assert [r.outcome for r in rep.repairs] == [FIXED] and nova.services["c3"].status == "enabled"


def test_clear_forced_down_only_where_this_journals_evacuate_set_it(journal):
    nova = FakeNova()
    forced_down_by_us(nova, journal)
    assert found(nova, journal) == ["compute-forced-down-reporting"]
    assert run_doctor(nova, journal).repairs == []         # named only
    rep = run_doctor(nova, journal, "compute-forced-down-reporting")
    r, = rep.repairs
    assert (r.target, r.outcome, r.undo) == ("c4", FIXED, "openstack compute service set --down c4 nova-compute")
    assert nova.services["c4"].forced_down is False and rep.exit_code == 0
    ev, = doctor_events(journal, rep.run_id)
    assert (ev.kind, ev.state) == (events.DOCTOR_FORCE_UP, "done")


def test_whose_forced_down_is_read_in_one_query_the_latest_change_winning(journal):
    """A shared journal holds every run of the team: whose forced_down it is comes from one
    query of the force-down/up events, not a read of every run's events."""
    from novamove.engine.doctor.scan import forced_by_novamove
    for i in range(30):                                   # the team's other runs
        journal.start_run(f"drain-{i}", "drain", source="c1")
    journal.start_run("ev-1", events.VERB_EVACUATE, source="c4")
    journal.done(journal.intent("ev-1", events.EVACUATE_FORCE_DOWN, "c4"))
    journal.done(journal.intent("ev-1", events.EVACUATE_FORCE_DOWN, "c3"))
    journal.start_run("un-1", events.VERB_UNFENCE, source="c4")
    journal.done(journal.intent("un-1", events.UNFENCE_FORCE_UP, "c4"))
    per_run = []
    journal.events = lambda run_id: per_run.append(run_id) or []
    assert forced_by_novamove(journal, ["c3", "c4"]) == {"c3"}     # c4 cleared since
    journal.start_run("ev-2", events.VERB_EVACUATE, source="c4")
    journal.intent("ev-2", events.EVACUATE_FORCE_DOWN, "c4")        # its answer lost: maybe ours
    assert forced_by_novamove(journal, ["c4"]) == {"c4"} and forced_by_novamove(journal, []) == frozenset()
    assert per_run == []


def test_someone_elses_forced_down_is_left_alone(journal):
    nova = FakeNova()
    nova.set_service_forced_down(nova.services["c4"], True)     # an operator, a fencing agent
    nova.alive.add("c4")
    rep = run_doctor(nova, journal, "compute-forced-down-reporting")
    f, = rep.findings
    assert f.repairable is False and "novamove did not force it down" in f.fix
    assert rep.repairs == [] and nova.services["c4"].forced_down is True and rep.exit_code == errors.EXIT_FINDINGS
    # Handed the finding anyway (a journal that lost the evacuation), the repair refuses.
    r, = fast_repairer(nova, journal).run([dataclasses.replace(f, repairable=True)])
    assert r.outcome == SKIPPED and "novamove did not force c4 down" in r.detail
    assert nova.services["c4"].forced_down is True


def test_reset_a_stuck_task_state_of_an_active_running_server_where_its_migration_says(journal):
    nova = FakeNova()
    stuck_task(nova)
    assert found(nova, journal) == ["task-state-stuck"]
    assert run_doctor(nova, journal).repairs == []         # one-way: named only
    rep = run_doctor(nova, journal, "task-state-stuck")
    r, = rep.repairs
    assert (r.target, r.outcome, r.one_way) == ("s5", FIXED, True)
    s = nova.servers["s5"]
    assert (s.task_state, s.vm_state, s.status, s.host, s.power_state) == (None, "active", "ACTIVE", "c1", 1)
    assert ("reset-state", "s5") in nova.actions and rep.exit_code == 0
    ev, = doctor_events(journal, rep.run_id)
    assert (ev.kind, ev.state, ev.data["host"], ev.data["power_state"]) == \
        (events.DOCTOR_RESET_STATE, "done", "c1", 1)


def test_a_stopped_server_is_never_reset_to_active(journal):
    nova = FakeNova()
    stuck_task(nova, status="SHUTOFF", vm_state="stopped", power_state=4)
    rep = run_doctor(nova, journal, "task-state-stuck")
    f, = rep.findings
    assert f.klass == "task-state-stuck" and f.repairable is False
    assert rep.repairs == [] and ("reset-state", "s5") not in nova.actions
    # Stopped after the scan: the repair reads it again and refuses.
    nova2 = FakeNova()
    stuck_task(nova2)
    snap, _ = scan(nova2, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    nova2.servers["s5"] = nova2.servers["s5"].replace(status="SHUTOFF", vm_state="stopped", power_state=4)
    r, = fast_repairer(nova2, journal).run([f])
    assert r.outcome == SKIPPED and "never made active" in r.detail
    assert ("reset-state", "s5") not in nova2.actions and nova2.servers["s5"].vm_state == "stopped"


def test_a_stuck_task_state_off_the_host_its_migration_says_is_not_reset(journal):
    nova = FakeNova()
    stuck_task(nova)
    snap, _ = scan(nova, journal=journal, heartbeat_gap=5.0)
    f, = detect(snap, Options())
    nova.servers["s5"] = nova.servers["s5"].replace(host="c2")     # failed move, but Nova has it on c2
    r, = fast_repairer(nova, journal).run([f])
    assert r.outcome == SKIPPED and "not verifiably where" in r.detail and ("reset-state", "s5") not in nova.actions


def test_a_repair_that_does_not_take_is_failed_exit_1(journal):
    nova = FakeNova()
    isolation_left(nova, journal)
    nova.enable_service = lambda service: None             # Nova answers 200 and changes nothing
    rep = run_doctor(nova, journal)
    r, = rep.repairs
    assert r.outcome == FAILED and "did not take" in r.detail
    ev, = doctor_events(journal, rep.run_id)
    assert ev.state == "failed" and ev.data["read_back"].startswith("did not take")
    assert rep.exit_code == errors.EXIT_FAILED and [f.klass for f in rep.left] == ["compute-isolation-left"]


# ---------------------------------------------------------------------- NOVAMOVE_FAULT at a repair

DRIFT = {
    events.DOCTOR_DELETE_ALLOCATIONS: (lambda nova, j: leaked(nova), (), "migration-allocation-leaked"),
    events.DOCTOR_ENABLE: (lambda nova, j: isolation_left(nova, j), (), "compute-isolation-left"),
    events.DOCTOR_CONFIRM: (lambda nova, j: unconfirmed(nova), ("verify-resize-forgotten",),
                            "verify-resize-forgotten"),
    events.DOCTOR_FORCE_UP: (lambda nova, j: forced_down_by_us(nova, j), ("compute-forced-down-reporting",),
                             "compute-forced-down-reporting"),
    events.DOCTOR_RESET_STATE: (lambda nova, j: stuck_task(nova), ("task-state-stuck",), "task-state-stuck"),
}


@pytest.mark.parametrize("kind", list(DRIFT))
@pytest.mark.parametrize("fault", ["before:error", "before:timeout"])
def test_a_fault_before_the_call_changes_nothing_and_says_so(journal, monkeypatch, kind, fault):
    nova = FakeNova()
    make, classes, klass = DRIFT[kind]
    make(nova, journal)
    monkeypatch.setenv("NOVAMOVE_FAULT", f"{kind}:{fault}")
    rep = run_doctor(nova, journal, *classes)
    r, = rep.repairs
    assert r.outcome == FAILED, r
    ev, = doctor_events(journal, rep.run_id)
    assert ev.state == "failed" and "injected fault" in ev.data["error"]
    assert [f.klass for f in rep.left] == [klass]          # the scan after it still finds it
    assert rep.exit_code == errors.EXIT_FAILED
    monkeypatch.delenv("NOVAMOVE_FAULT")
    again = run_doctor(nova, journal, *classes)            # a rerun repairs it
    assert [r.outcome for r in again.repairs] == [FIXED] and again.exit_code == 0


@pytest.mark.parametrize("kind", list(DRIFT))
@pytest.mark.parametrize("fault", ["after:error", "after:timeout"])
def test_a_lost_answer_is_judged_by_the_read_back(journal, monkeypatch, kind, fault):
    nova = FakeNova()
    make, classes, klass = DRIFT[kind]
    make(nova, journal)
    monkeypatch.setenv("NOVAMOVE_FAULT", f"{kind}:{fault}")
    rep = run_doctor(nova, journal, *classes)
    r, = rep.repairs
    assert r.outcome == FIXED, r                           # the cloud applied it: read back
    ev, = doctor_events(journal, rep.run_id)
    assert ev.state == "done" and ev.data["read_back"] == "applied" and ev.data["error"] is None
    assert rep.left == [] and rep.exit_code == 0


class Killed(BaseException):
    """Stands for the SIGKILL of NOVAMOVE_FAULT's `kill`: nothing after it runs, the journal
    included (its writes raise from then on)."""


class MortalJournal(Journal):
    dead = False

    def _write(self, sql, args):
        if self.dead:
            raise Killed()
        return super()._write(sql, args)


@pytest.mark.parametrize("kind", list(DRIFT))
@pytest.mark.parametrize("moment", ["before", "after"])
def test_killed_at_a_repair_the_next_doctor_tells_the_truth(tmp_path, monkeypatch, kind, moment):
    path = tmp_path / "j.sqlite"
    j = MortalJournal(path)
    nova = FakeNova()
    make, classes, klass = DRIFT[kind]
    make(nova, j)

    def kill(pid, sig):
        j.dead = True
        raise Killed()
    monkeypatch.setattr(faults.os, "kill", kill)
    monkeypatch.setenv("NOVAMOVE_FAULT", f"{kind}:{moment}:kill")
    with pytest.raises(Killed):
        run_doctor(nova, j, *classes)
    monkeypatch.undo()
    monkeypatch.delenv("NOVAMOVE_FAULT", raising=False)
    faults.reset()
    journal = Journal(path)
    run = next(r for r in journal.runs() if r["verb"] == events.VERB_DOCTOR)
    ev, = doctor_events(journal, run["id"])
    assert ev.state == "intent"                            # the power cut left the intent open
    # recover: nothing to undo; it names the repair whose outcome was never written and the
    # command that tells (novamove doctor), marks the run, and changes nothing in the cloud.
    calls = list(nova.calls)
    dry, = [r for r in recovery.recover(nova, journal, run["id"], dry_run=True) if r["run_id"] == run["id"]]
    assert "dry run" in dry["summary"] and journal.get_run(run["id"])["status"] == events.RUN_RUNNING
    rep, = [r for r in recovery.recover(nova, journal, run["id"]) if r["run_id"] == run["id"]]
    assert f"the outcome of {kind} {ev.target} was never written" in rep["summary"], rep
    assert "run `novamove doctor` to see what is left" in rep["summary"]
    assert journal.get_run(run["id"])["status"] == events.RUN_RECOVERED
    assert [c for c in nova.calls[len(calls):] if not c.startswith("list_")] == []
    nova.list_migrations_changed_since(None)              # time passes: Nova carries out what it took
    # The next doctor reads the cloud: applied ("after") is clean, not applied is found again.
    rep = run_doctor(nova, journal, *classes, fix=False)
    if moment == "after":
        assert rep.findings == [] and rep.exit_code == 0
    else:
        assert [f.klass for f in rep.findings] == [klass] and rep.exit_code == errors.EXIT_FINDINGS
        assert [r.outcome for r in run_doctor(nova, journal, *classes).repairs] == [FIXED]


def test_recover_lists_an_interrupted_doctor_without_a_host_to_rerun(journal):
    nova = FakeNova()
    journal.start_run("doc1", events.VERB_DOCTOR, mode="fix", strategy="safe")
    rep, = recovery.recover(nova, journal)
    assert rep["summary"].startswith("doctor --fix did not finish: nothing to undo")
    assert "HOST" not in rep["summary"] and "never written" not in rep["summary"]
    assert journal.get_run("doc1")["status"] == events.RUN_RECOVERED and recovery.recover(nova, journal) == []
