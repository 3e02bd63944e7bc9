"""The drain engine (plan -> disable -> batch of moves under caps) against an in-memory Nova."""

from __future__ import annotations

import dataclasses

import pytest

from novamove import errors
from novamove.engine.batch import drain as drainmod
from novamove.engine.batch.drain import (ABORTED, FAILED, GONE, MOVED, NOT_STARTED, SKIPPED, BatchRunner, apply_plan,
                                   drain, is_our_drain_reason, make_plan, undrain)
from novamove.engine.journal import Journal
from novamove.model import ServerGroup

from fakenova import FakeNova



class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def fast(**kw):
    clock = Clock()
    return dict(clock=clock, sleep=clock.sleep, poll_interval=1.0, **kw)


def typical_cloud():
    nova = FakeNova()
    nova.groups = [ServerGroup("g", "web", "anti-affinity", members=("a1", "a2"))]
    nova.add("a1", "c1", groups=["g"])
    nova.add("a2", "c1", groups=["g"])
    for i in range(6):
        nova.add(f"v{i}", "c1")
    nova.add("off1", "c1", "SHUTOFF")
    nova.add("off2", "c1", "SHUTOFF")
    nova.add("err", "c1", "ERROR")
    nova.add("other", "c2")
    return nova


def test_drain_moves_every_movable_server_and_holds_caps(journal):
    nova = typical_cloud()
    report = drain(nova, "c1", journal=journal, max_parallel=3, max_per_host=2, reason="kernel", **fast())
    by = {r.server_id: r for r in report.results}
    assert by["err"].result == SKIPPED and "ERROR" in by["err"].detail
    moved = [sid for sid, r in by.items() if r.result == MOVED]
    assert len(moved) == 10
    for sid in moved:
        assert nova.servers[sid].host == by[sid].dest != "c1"
        assert nova.servers[sid].status in ("ACTIVE", "SHUTOFF") and not nova.servers[sid].task_state
    assert nova.servers["off1"].status == "SHUTOFF"             # cold moved and confirmed
    assert nova.servers["a1"].host != nova.servers["a2"].host   # still anti-affine
    assert nova.services["c1"].status == "disabled" and is_our_drain_reason(nova.services["c1"].disabled_reason)
    assert "kernel" in nova.services["c1"].disabled_reason
    assert nova.max_in_progress <= 3 and report.peak_in_flight <= 3
    assert nova.max_per_source["c1"] <= 2
    assert all(n <= 2 for n in nova.max_per_dest.values())
    assert nova.max_in_progress == 2                            # the per-source cap binds here
    # The ERROR server is still on c1: an honest drain does not call that done.
    assert not report.ok and report.exit_code == errors.EXIT_INCOMPLETE
    assert [x["server_id"] for x in report.left] == ["err"] and "ERROR" in report.left[0]["reason"]
    assert "1 still on c1 (vm-err)" in report.summary
    run = journal.get_run(report.run_id)
    assert run["status"] == "failed" and run["verb"] == "drain"
    kinds = [e.kind for e in journal.events(report.run_id)]
    # Disabled first, planned after: nothing scheduled onto c1 in between is missed.
    assert kinds[:2] == ["drain.disable", "drain.plan"] and kinds.count("drain.move") == 10
    assert kinds.count("drain.confirm") == 2


def test_caps_queue_rather_than_drop(journal):
    nova = FakeNova(hosts=("c1", "c2"))
    for i in range(7):
        nova.add(f"v{i}", "c1")
    report = drain(nova, "c1", journal=journal, max_parallel=5, max_per_host=1, allow_unmovable=True, **fast())
    assert report.count(MOVED) == 7 and nova.max_in_progress == 1


def test_dry_run_changes_nothing(journal):
    nova = typical_cloud()
    before = dict(nova.servers)
    report = drain(nova, "c1", journal=journal, dry_run=True, allow_unmovable=True, **fast())
    assert report.dry_run and nova.servers == before and nova.migrations == []
    assert nova.services["c1"].status == "enabled"
    assert journal.runs() == []
    assert not any(c in nova.calls for c in ("disable_service", "live_migrate_server", "migrate_server"))
    assert len(report.plan.moves) == 10


def test_transient_errors_are_retried_with_backoff(journal):
    nova = typical_cloud()
    nova.transient = {"list_migrations_changed_since": 2, "live_migrate_server": 1, "get_server": 1}
    report = drain(nova, "c1", journal=journal, max_parallel=2, max_per_host=2, allow_unmovable=True, **fast())
    assert report.count(MOVED) == 10 and report.ok


def test_failed_migration_is_reported_with_novas_reason(journal):
    nova = typical_cloud()
    nova.fail_servers = {"v0"}
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    v0 = next(r for r in report.results if r.server_id == "v0")
    assert v0.result == FAILED and "NoValidHost" in v0.detail
    assert not report.ok and report.exit_code == errors.EXIT_FAILED
    assert journal.get_run(report.run_id)["status"] == "failed"


def test_a_destination_nova_refused_is_avoided_when_the_server_is_planned_again(journal):
    nova = typical_cloud()
    first = drain(nova, "c1", journal=journal, dry_run=True, **fast()).plan
    dest = next(s.dest for s in first.steps if s.server_id == "v0")
    nova.refuse = {"v0": {dest}}
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    v0 = next(r for r in report.results if r.server_id == "v0")
    assert v0.result == MOVED and v0.dest != dest and nova.servers["v0"].host == v0.dest
    tried = [m["dest"] for m in nova.migrations if m["server"] == "v0"]
    assert tried[0] == dest and dest not in tried[1:]            # never sent there twice
    assert report.ok


def test_failed_migration_waits_a_little_for_novas_late_reason(journal):
    """Nova marks the migration failed before it records why: the reason that arrives a few
    polls later is still reported; one that never comes does not hold the drain for long."""
    nova = typical_cloud()
    nova.fail_servers = {"v0", "v1"}
    asked = {"v0": 0, "v1": 0}

    def late_fault(sid, since=None):
        asked[sid] = asked.get(sid, 0) + 1
        return "MigrationError: disk copy failed" if sid == "v0" and asked[sid] >= 3 else None
    nova.server_fault = late_fault
    kw = fast()
    report = drain(nova, "c1", journal=journal, **kw)
    by = {r.server_id: r for r in report.results}
    assert by["v0"].result == FAILED and "disk copy failed" in by["v0"].detail
    assert by["v1"].result == FAILED and by["v1"].detail == "migration error"
    assert asked["v1"] >= 2
    assert kw["clock"].t < 60      # patience is bounded (REASON_PATIENCE), not per-server forever


def test_drain_of_a_down_host_with_servers_is_refused_before_any_change(journal):
    nova = typical_cloud()
    nova.services["c1"] = dataclasses.replace(nova.services["c1"], state="down")
    for dry_run in (True, False):
        with pytest.raises(errors.PreconditionFailed, match="c1: its nova-compute is down"):
            drain(nova, "c1", journal=journal, dry_run=dry_run, allow_unmovable=True, **fast())
    assert nova.services["c1"].status == "enabled" and nova.migrations == []
    assert journal.runs() == []
    empty = FakeNova()
    empty.services["c1"] = dataclasses.replace(empty.services["c1"], state="down")
    report = drain(empty, "c1", journal=journal, **fast())     # nothing to move: just disabled
    assert report.ok and empty.services["c1"].status == "disabled"


def test_a_record_marked_error_while_the_move_goes_on_is_not_a_failure(journal):
    nova = typical_cloud()
    nova.flicker_servers = {"v2"}
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    v2 = next(r for r in report.results if r.server_id == "v2")
    assert v2.result == MOVED and nova.servers["v2"].host == v2.dest != "c1"
    assert report.ok


def test_nothing_is_reported_moved_that_is_not_on_its_destination(journal):
    nova = typical_cloud()
    nova.lie_servers = {"v1"}
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    v1 = next(r for r in report.results if r.server_id == "v1")
    assert v1.result == FAILED and "is on c1" in v1.detail


def _interrupt_after(nova, runner_holder, polls):
    count = {"n": 0}

    def hook():
        count["n"] += 1
        if count["n"] == polls:
            runner_holder["runner"].request_stop()
    nova.on_list = hook


@pytest.mark.parametrize("on_interrupt,expected", [("finish", MOVED), ("abort", ABORTED)])
def test_interrupt_starts_nothing_new_and_finishes_or_aborts(journal, on_interrupt, expected, monkeypatch):
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    for i in range(6):
        nova.add(f"v{i}", "c1")
    holder = {}
    real_init = BatchRunner.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        holder["runner"] = self
    monkeypatch.setattr(BatchRunner, "__init__", init)
    _interrupt_after(nova, holder, 2)
    report = drain(nova, "c1", journal=journal, max_parallel=2, max_per_host=2, on_interrupt=on_interrupt, allow_unmovable=True, **fast())
    results = [r.result for r in report.results]
    assert results.count(NOT_STARTED) == 4
    assert results.count(expected) == 2
    assert report.interrupted and report.exit_code == errors.EXIT_INTERRUPTED
    assert len(nova.migrations) == 2
    for r in report.results:
        assert nova.servers[r.server_id].host == (r.dest if r.result == MOVED else "c1")
    assert journal.get_run(report.run_id)["status"] == "interrupted"


class Killed(BaseException):
    """Stands for SIGKILL: nothing below the raise runs, not even journal bookkeeping."""


def test_killed_drain_is_continued_by_the_same_drain(journal, monkeypatch):
    nova = typical_cloud()
    polls = {"n": 0}

    def die():
        polls["n"] += 1
        if polls["n"] == 4:      # the first listing is the runner's look before it starts
            raise Killed()
    nova.on_list = die
    # A real SIGKILL leaves the run "running"; make finish_run a no-op during the "killed" run.
    monkeypatch.setattr(journal, "finish_run", lambda *a, **k: None)
    with pytest.raises(Killed):
        drain(nova, "c1", journal=journal, max_parallel=3, max_per_host=3, allow_unmovable=True, **fast())
    monkeypatch.undo()
    first = journal.runs()[0]
    assert first["status"] == "running"
    monkeypatch.setattr("novamove.engine.batch.claim.run_alive", lambda run: False)   # the killed process is gone
    in_flight = [m for m in nova.migrations if m["status"] not in ("completed", "confirmed")]
    assert in_flight                                                # it died with moves in flight
    nova.on_list = None
    report = drain(nova, "c1", journal=journal, max_parallel=3, max_per_host=3, allow_unmovable=True, **fast())
    assert report.ok
    movable = [s for s in nova.servers if s not in ("err", "other")]
    assert all(nova.servers[s].host != "c1" for s in movable)
    assert all(nova.servers[s].status in ("ACTIVE", "SHUTOFF") for s in movable)
    assert {r.server_id for r in report.results if r.result == MOVED} == set(movable)
    assert journal.get_run(first["id"])["status"] == "recovered"
    assert len([m for m in nova.migrations]) == 10                  # nothing moved twice


def test_rerun_confirms_a_cold_move_left_in_verify_resize(journal, monkeypatch):
    nova = FakeNova(hosts=("c1", "c2"))
    nova.add("off", "c1", "SHUTOFF")
    polls = {"n": 0}

    def die():
        polls["n"] += 1
        if nova.servers["off"].status == "VERIFY_RESIZE":
            raise Killed()
    nova.on_list = die
    monkeypatch.setattr(journal, "finish_run", lambda *a, **k: None)
    with pytest.raises(Killed):
        drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    monkeypatch.undo()
    monkeypatch.setattr("novamove.engine.batch.claim.run_alive", lambda run: False)
    nova.on_list = None
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert nova.servers["off"].status == "SHUTOFF" and nova.servers["off"].host == "c2"
    assert [r.result for r in report.results] == [MOVED]


def test_a_drain_still_running_elsewhere_is_not_raced(journal, monkeypatch):
    nova = typical_cloud()
    journal.start_run("other", "drain", source="c1")
    monkeypatch.setattr(journal, "runs", lambda limit=50, **filters: [dict(journal.get_run("other"), pid=1)])
    monkeypatch.setattr("novamove.engine.batch.claim.run_alive", lambda run: True)
    with pytest.raises(errors.PreconditionFailed, match="still running"):
        drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert nova.migrations == []


def test_plan_then_apply_rechecks_each_step(journal, tmp_path):
    from novamove.planner import load_plan, save_plan
    nova = typical_cloud()
    plan = make_plan(nova, ["c1"], max_parallel=2, max_per_host=2)
    save_plan(plan, str(tmp_path / "plan.json"))
    # The cloud changes after planning:
    del nova.servers["v0"]                                              # deleted
    nova.servers["v1"] = nova.servers["v1"].replace(host="c4")          # moved by someone
    nova.servers["v2"] = nova.servers["v2"].replace(status="SHUTOFF")   # stopped: cold now
    nova.servers["v3"] = nova.servers["v3"].replace(status="ERROR")     # broke
    report = apply_plan(nova, load_plan(str(tmp_path / "plan.json")), journal=journal, allow_unmovable=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["v0"].result == GONE and "no longer exists" in by["v0"].detail
    assert by["v1"].result == SKIPPED and "now on c4" in by["v1"].detail
    assert by["v2"].result == MOVED and by["v2"].mode == "cold"
    assert by["v3"].result == SKIPPED and "ERROR" in by["v3"].detail
    assert nova.services["c1"].status == "disabled"


def test_apply_plans_again_around_a_destination_disabled_since(journal):
    nova = typical_cloud()
    plan = make_plan(nova, ["c1"])
    assert any(s.dest == "c2" for s in plan.moves)
    nova.services["c2"] = dataclasses.replace(nova.services["c2"], status="disabled", disabled_reason="broken")
    report = apply_plan(nova, plan, journal=journal, allow_unmovable=True, **fast())
    moved = [r for r in report.results if r.result == MOVED]
    assert len(moved) == 10 and all(nova.servers[r.server_id].host in ("c3", "c4") for r in moved)
    assert report.ok and [x["server_id"] for x in report.left] == ["err"]


def test_undrain_move_back_restores_placement_and_enables(journal):
    nova = typical_cloud()
    original = {sid: s.host for sid, s in nova.servers.items()}
    drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    report = undrain(nova, "c1", journal=journal, move_back=True, **fast())
    assert nova.services["c1"].status == "enabled"
    assert {sid: s.host for sid, s in nova.servers.items()} == original
    assert report.count(MOVED) == 10 and report.ok
    # A second undrain --move-back has nothing left to move.
    again = undrain(nova, "c1", journal=journal, move_back=True, **fast())
    assert again.results == [] and "already enabled" in again.service


def test_undrain_leaves_a_host_disabled_by_someone_else(journal):
    nova = typical_cloud()
    nova.services["c1"] = dataclasses.replace(nova.services["c1"], status="disabled", disabled_reason="RMA #42")
    with pytest.raises(errors.PreconditionFailed, match="someone else"):
        undrain(nova, "c1", journal=journal, **fast())
    assert nova.services["c1"].status == "disabled"


def test_drain_keeps_a_foreign_disabled_reason(journal):
    nova = typical_cloud()
    nova.services["c1"] = dataclasses.replace(nova.services["c1"], status="disabled", disabled_reason="RMA #42")
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert nova.services["c1"].disabled_reason == "RMA #42" and "someone else" in report.service
    assert report.count(MOVED) == 10


def test_bad_input_changes_nothing(journal):
    nova = typical_cloud()
    with pytest.raises(errors.NotFound):
        drain(nova, "nope", journal=journal, **fast())
    with pytest.raises(errors.UsageError):
        drain(nova, "c1", journal=journal, on_interrupt="panic", allow_unmovable=True, **fast())
    with pytest.raises(errors.UsageError):
        drain(nova, "c1", journal=journal, targets=["c1"], allow_unmovable=True, **fast())
    assert nova.migrations == [] and nova.services["c1"].status == "enabled"


def test_report_renders_to_dict(journal):
    nova = typical_cloud()
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    d = report.to_dict()
    assert d["ok"] and d["summary"].startswith("drain c1: 10 moved, 1 skipped")
    assert len(d["results"]) == 11


def test_changed_says_whether_the_cloud_changed(journal):
    nova = typical_cloud()
    first = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert first.changed
    again = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())          # already empty and disabled
    assert not again.changed and again.count(MOVED) == 0
    assert not drain(nova, "c1", journal=journal, dry_run=True, allow_unmovable=True, **fast()).changed
    back = undrain(nova, "c1", journal=journal, **fast())
    assert back.changed and not undrain(nova, "c1", journal=journal, **fast()).changed


# ---------------------------------------------------------------- honest drains

def _disable(nova, host, reason="isolate window"):
    nova.services[host] = dataclasses.replace(nova.services[host], status="disabled", disabled_reason=reason)


def _enable(nova, host):
    nova.services[host] = dataclasses.replace(nova.services[host], status="enabled", disabled_reason=None)


def test_a_server_scheduled_onto_the_host_before_it_was_disabled_is_moved_too(journal):
    nova = typical_cloud()
    # The build that raced the drain lands right as c1 is disabled (after the first look).
    nova.on_disable = lambda host: nova.add("late", "c1") if host == "c1" and "late" not in nova.servers else None
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["late"].result == MOVED and nova.servers["late"].host != "c1"
    assert report.ok and [x["server_id"] for x in report.left] == ["err"]


def test_destinations_disabled_for_a_moment_are_waited_for_not_skipped(journal):
    nova = typical_cloud()
    clock = Clock()
    window = {"from": None}

    def sleep(seconds):
        # Another operator's isolate window: every other compute off for 10 s, once, from
        # the first move on.
        clock.sleep(seconds)
        if window["from"] is None and nova.migrations:
            window["from"] = clock()
            for h in ("c2", "c3", "c4"):
                _disable(nova, h)
        elif window["from"] is not None and clock() - window["from"] >= 10:
            for h in ("c2", "c3", "c4"):
                _enable(nova, h)
    report = drain(nova, "c1", journal=journal, max_parallel=2, max_per_host=2, allow_unmovable=True,
                   clock=clock, sleep=sleep, poll_interval=1.0)
    assert window["from"] is not None
    assert report.count(MOVED) == 10, report.summary
    assert report.ok and report.exit_code == 0
    assert all(s.host != "c1" for s in nova.servers.values() if s.id != "err")


def test_destinations_that_stay_disabled_leave_servers_and_exit_8(journal):
    nova = typical_cloud()
    nova.on_list = lambda: [_disable(nova, h) for h in ("c2", "c3", "c4")]
    report = drain(nova, "c1", journal=journal, max_parallel=2, max_per_host=2, replan_patience=30, **fast())
    assert report.exit_code == errors.EXIT_INCOMPLETE and not report.ok
    still = {x["server_id"] for x in report.left}
    assert still and still == {s.id for s in nova.servers.values() if s.host == "c1"}
    assert "still on c1" in report.summary


def test_a_server_deleted_mid_drain_is_gone_not_failed(journal):
    nova = typical_cloud()

    def delete_v0():
        if any(m["server"] == "v0" for m in nova.migrations) and "v0" in nova.servers:
            del nova.servers["v0"]
    nova.on_list = delete_v0
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["v0"].result == GONE
    assert report.ok and report.count(MOVED) == 9


def test_one_step_erroring_fails_that_step_only(journal):
    nova = typical_cloud()
    real_get = nova.get_server

    def get_server(sid):
        if sid == "v1" and any(m["server"] == "v1" for m in nova.migrations):
            raise errors.NovamoveError("server v1: HTTP 500: oops")
        return real_get(sid)
    nova.get_server = get_server
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["v1"].result == FAILED and "HTTP 500" in by["v1"].detail
    assert report.count(MOVED) == 9 and report.exit_code == errors.EXIT_FAILED


def test_an_ambiguous_move_request_is_read_back_not_guessed(journal):
    nova = typical_cloud()
    real = nova.live_migrate_server
    lost = {"v2": "applied", "v3": "lost"}

    def live_migrate_server(sid, host=None):
        what = lost.pop(sid, None)
        if what == "applied":
            real(sid, host=host)                     # Nova took it; the answer got lost
        if what:
            raise errors.Unreachable("live migration: the cloud API is unavailable (504)")
        return real(sid, host=host)
    nova.live_migrate_server = live_migrate_server
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["v2"].result == MOVED and by["v3"].result == MOVED
    # The request that reached Nova was not sent again: one migration record each.
    assert sum(m["server"] == "v2" for m in nova.migrations) == 1
    assert sum(m["server"] == "v3" for m in nova.migrations) == 1
    assert report.ok


def test_a_cold_move_that_never_finishes_is_reported_in_flight_not_waited_for_forever(journal):
    nova = FakeNova()
    nova.add("off", "c1", "SHUTOFF")
    nova.COLD_STEPS = ["pre-migrating"] + ["migrating"] * 100000
    report = drain(nova, "c1", journal=journal, step_timeout=20, **fast())
    by = {r.server_id: r for r in report.results}
    assert by["off"].result == "in-flight" and "rerun the drain" in by["off"].detail
    assert report.exit_code == errors.EXIT_FAILED
    # Its intent stays open, so a rerun or recover follows it.
    move = [e for e in journal.events(report.run_id) if e.kind == "drain.move"][0]
    assert move.state == "intent"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10", True])
def test_timeouts_must_be_positive_finite_numbers(journal, bad):
    nova = typical_cloud()
    with pytest.raises(errors.UsageError, match="timeout"):
        drain(nova, "c1", journal=journal, step_timeout=bad)
    with pytest.raises(errors.UsageError, match="timeout"):
        undrain(nova, "c1", journal=journal, step_timeout=bad)
    assert nova.services["c1"].status == "enabled" and nova.migrations == []


def test_move_back_returns_only_the_servers_of_the_drain_being_undone(journal):
    nova = FakeNova()
    nova.add("early", "c1")
    drain(nova, "c1", journal=journal, **fast())                 # drain A
    assert nova.servers["early"].host != "c1"
    undrain(nova, "c1", journal=journal, **fast())               # closed without move-back
    nova.add("later", "c1")
    drain(nova, "c1", journal=journal, **fast())                 # drain B
    back = undrain(nova, "c1", journal=journal, move_back=True, **fast())
    assert [r.server_id for r in back.results] == ["later"]
    assert nova.servers["later"].host == "c1" and nova.servers["early"].host != "c1"


def test_a_plan_from_another_cloud_is_refused(journal):
    nova = typical_cloud()
    nova.identity = "https://nova.a.example/v2.1"
    plan = make_plan(nova, ["c1"])
    assert plan.cloud == "https://nova.a.example/v2.1"
    nova.identity = "https://nova.b.example/v2.1"
    with pytest.raises(errors.PreconditionFailed, match="another cloud"):
        apply_plan(nova, plan, journal=journal, **fast())
    assert nova.services["c1"].status == "enabled" and nova.migrations == []


# ---------------------------------------------------------------- runs coordinate through the cloud

def _tag(nova, host, reason):
    nova.services[host] = dataclasses.replace(nova.services[host], status="disabled", disabled_reason=reason)


def test_a_drain_elsewhere_holding_its_lease_is_refused_by_drain_and_undrain(tmp_path):
    from novamove.engine import tags
    nova = typical_cloud()
    other = tags.drain_reason("run0therhost", "patching", tags.lease_from_now())
    _tag(nova, "c1", other)                    # a drain from another machine's journal, at work
    mine = Journal(tmp_path / "mine.sqlite")
    with pytest.raises(errors.PreconditionFailed, match="run0therhost is draining it"):
        drain(nova, "c1", journal=mine, **fast())
    with pytest.raises(errors.PreconditionFailed, match="run0therhost is draining it"):
        undrain(nova, "c1", journal=mine, **fast())
    assert nova.services["c1"].disabled_reason == other and nova.migrations == []


def test_an_expired_lease_is_a_dead_drain_and_is_taken_over(tmp_path):
    from datetime import datetime, timedelta, timezone
    from novamove.engine import tags
    nova = typical_cloud()
    _tag(nova, "c1", tags.drain_reason("deadrun00001", "patching",
                                      datetime.now(timezone.utc) - timedelta(seconds=5)))
    report = drain(nova, "c1", journal=Journal(tmp_path / "mine.sqlite"), allow_unmovable=True, **fast())
    assert report.ok and tags.reason_run_id(nova.services["c1"].disabled_reason) == report.run_id
    assert tags.lease_of(nova.services["c1"].disabled_reason) is None      # dropped at the end


def test_a_drain_that_reads_back_another_drains_tag_lost_the_race(tmp_path):
    from novamove.engine import tags
    nova = typical_cloud()
    rival = tags.drain_reason("rivalrun0001", "same host", tags.lease_from_now())
    # The rival's PUT lands right after ours: last writer wins.
    nova.on_disable = lambda host: _tag(nova, host, rival) if host == "c1" else None
    with pytest.raises(errors.PreconditionFailed, match="rivalrun0001 is draining it"):
        drain(nova, "c1", journal=Journal(tmp_path / "mine.sqlite"), **fast())
    assert nova.migrations == [] and nova.services["c1"].disabled_reason == rival


def test_an_isolation_window_on_the_source_is_waited_out(journal):
    from novamove.engine import tags
    nova = typical_cloud()
    _tag(nova, "c1", tags.tagged_reason("isorun000001", None))
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        if clock() >= 5 and tags.reason_run_id(nova.services["c1"].disabled_reason) == "isorun000001":
            _enable(nova, "c1")                 # the isolate run closes its window
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, clock=clock, sleep=sleep, poll_interval=1.0)
    assert report.ok and clock() >= 5
    assert tags.reason_run_id(nova.services["c1"].disabled_reason) == report.run_id


def test_the_lease_is_renewed_while_the_drain_runs_and_dropped_at_the_end(journal):
    from novamove.engine import tags
    nova = typical_cloud()
    nova.LIVE_STEPS = ["queued", "preparing"] + ["running"] * 60 + ["completed"]
    seen = []
    nova.on_disable = lambda host: seen.append(nova.services[host].disabled_reason)
    report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert report.ok
    assert sum(1 for e in journal.events(report.run_id) if e.kind == "drain.lease") >= 2
    assert tags.lease_of(seen[0]) is not None and tags.lease_of(seen[-1]) is None
    assert tags.lease_of(nova.services["c1"].disabled_reason) is None


@pytest.mark.parametrize("fault", ["drain.move:before:error:1", "drain.move:after:timeout:1",
                                   "drain.move:before:timeout:1", "drain.confirm:before:error:1",
                                   "drain.confirm:after:timeout:1", "drain.disable:after:timeout:1"])
def test_a_fault_at_a_journaled_step_is_ridden_out_or_reported_cleanly(journal, monkeypatch, fault):
    from novamove.engine import faults
    faults.reset()
    monkeypatch.setenv("NOVAMOVE_FAULT", fault)
    nova = typical_cloud()
    try:
        report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    except errors.NovamoveError as exc:
        # Only the disable may stop the drain, with the way on in its message.
        assert fault.startswith("drain.disable") and "novamove drain c1" in str(exc)
        report = drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    assert report.ok and report.count(MOVED) == 10
    for sid, s in nova.servers.items():
        assert s.status != "VERIFY_RESIZE" and not s.task_state
    faults.reset()


def test_a_move_request_lost_inside_nova_is_reported_with_what_clears_it(journal):
    nova = FakeNova()
    nova.add("lost", "c1")
    # Nova took the request (task state set) and the broker lost it: no migration record, ever.
    nova.live_migrate_server = lambda sid, host=None: nova.servers.__setitem__(
        sid, nova.servers[sid].replace(task_state="migrating", status="MIGRATING"))
    report = drain(nova, "c1", journal=journal, replan_patience=0, **fast())
    r = report.results[0]
    assert r.result == FAILED and "recorded no migration" in r.detail
    assert "openstack server set --state active" in r.detail
    assert report.exit_code == errors.EXIT_FAILED


@pytest.mark.parametrize("fault", ["drain.move:before:error:1", "drain.move:before:timeout:1",
                                   "drain.move:after:timeout:1", "drain.enable:after:timeout:1"])
def test_a_fault_in_undrain_move_back_is_ridden_out_or_reported(journal, monkeypatch, fault):
    from novamove.engine import faults
    nova = typical_cloud()
    original = {sid: s.host for sid, s in nova.servers.items()}
    drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    faults.reset()
    monkeypatch.setenv("NOVAMOVE_FAULT", fault)
    try:
        report = undrain(nova, "c1", journal=journal, move_back=True, **fast())
        assert report.ok, report.summary
    except errors.NovamoveError:
        assert fault.startswith("drain.enable")
        monkeypatch.delenv("NOVAMOVE_FAULT")
        report = undrain(nova, "c1", journal=journal, move_back=True, **fast())
        assert report.ok, report.summary
    assert {sid: s.host for sid, s in nova.servers.items()} == original
    faults.reset()


def test_a_killed_undrain_move_back_is_finished_by_the_next_one(journal, monkeypatch):
    nova = typical_cloud()
    original = {sid: s.host for sid, s in nova.servers.items()}
    drain(nova, "c1", journal=journal, allow_unmovable=True, **fast())
    polls = {"n": 0}

    def die():
        polls["n"] += 1
        if polls["n"] == 4:
            raise Killed()
    nova.on_list = die
    monkeypatch.setattr(journal, "finish_run", lambda *a, **k: None)     # SIGKILL: no end written
    with pytest.raises(Killed):
        undrain(nova, "c1", journal=journal, move_back=True, max_parallel=4, max_per_host=4, **fast())
    monkeypatch.undo()
    monkeypatch.setattr("novamove.engine.batch.undrain.run_alive", lambda run: False)
    nova.on_list = None
    assert any(m["status"] not in ("completed", "confirmed") for m in nova.migrations)   # left in flight
    report = undrain(nova, "c1", journal=journal, move_back=True, **fast())
    assert report.ok, report.summary
    assert {sid: s.host for sid, s in nova.servers.items()} == original
    assert all(s.status != "VERIFY_RESIZE" and not s.task_state for s in nova.servers.values())
    assert not [r for r in journal.unfinished_runs() if r["verb"] == "undrain"]
