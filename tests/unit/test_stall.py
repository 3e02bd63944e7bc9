"""Live migrations that never converge (issue 20 part 2): the stall rule, the policy and its
bounds from the server's intent, on the one fake Nova."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.engine import events, lifecycle, stall
from novamove.engine.batch.drain import ABORTED, MOVED, drain, undrain
from novamove.engine.journal import Journal
from novamove.model import Migration

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


SETTINGS = stall.StallSettings(window=5.0, progress=0.02)
GIB = 1024 ** 3


def fast(**kw):
    clock = Clock()
    return dict(clock=clock, sleep=clock.sleep, poll_interval=1.0, stall_settings=SETTINGS, **kw)


def _m(remaining, status="running", total=2 * GIB):
    return Migration("1", "s", "c1", "c2", status, "live-migration", memory_total_bytes=total,
                     memory_remaining_bytes=remaining)


# ------------------------------------------------------------------ the rule

def test_flat_remaining_memory_over_the_window_is_a_stall():
    w = stall.StallWatch(SETTINGS)
    seen = [w.see(t, _m(GIB)) for t in range(0, 7)]
    assert seen[:5] == [None] * 5          # not before a whole window
    assert seen[5] and "less than 2% copied in 5 s" in seen[5]


def test_a_converging_copy_is_never_a_stall():
    w = stall.StallWatch(SETTINGS)
    assert all(w.see(t, _m(2 * GIB - t * GIB // 10)) is None for t in range(0, 15))


def test_remaining_memory_growing_again_is_a_stall():
    w = stall.StallWatch(SETTINGS)
    for t, left in enumerate([GIB, GIB // 2, GIB // 2 - 10 * 2 ** 20]):
        assert w.see(t, _m(left)) is None
    assert "growing again" in w.see(3, _m(GIB // 2 + 200 * 2 ** 20))


def test_no_progress_reported_or_post_copy_is_not_sampled():
    w = stall.StallWatch(SETTINGS)
    assert all(w.see(t, _m(None, total=None)) is None for t in range(20))
    assert all(w.see(t, _m(GIB, status=stall.POST_COPY)) is None for t in range(20))


@pytest.mark.parametrize("on_stall,intent,action", [
    ("force-complete", None, "force-complete"),
    ("force-complete", "live-strict", "abort"),      # never force-completed nor post-copy
    ("cold", "live", "force-complete"),              # never moved cold
    ("cold", "live-strict", "abort"),
    ("cold", None, "cold"),
    ("leave", "live-strict", "leave"),
    ("abort", "live", "abort"),
])
def test_the_servers_intent_bounds_the_policy(on_stall, intent, action):
    assert stall.action_for(on_stall, intent) == action


@pytest.mark.parametrize("env", [{"NOVAMOVE_STALL_WINDOW": "0"}, {"NOVAMOVE_STALL_WINDOW": "soon"},
                                 {"NOVAMOVE_STALL_PROGRESS": "2"}, {"NOVAMOVE_STALL_PROGRESS": "nan"}])
def test_bad_settings_are_one_line_usage_errors(env):
    with pytest.raises(errors.UsageError, match="NOVAMOVE_STALL_"):
        stall.settings_from_env(env)


def test_settings_from_the_environment():
    assert stall.settings_from_env({"NOVAMOVE_STALL_WINDOW": "12", "NOVAMOVE_STALL_PROGRESS": "0.05"}) == \
        stall.StallSettings(12.0, 0.05)
    assert stall.settings_from_env({}) == stall.StallSettings(stall.WINDOW, stall.PROGRESS)
    with pytest.raises(errors.UsageError, match="on-stall"):
        stall.check_on_stall("panic")


# ------------------------------------------------------------------ drains

def stalling_cloud(*stalling, tags=None):
    nova = FakeNova()
    for i in range(4):
        nova.add(f"v{i}", "c1")
    nova.stall_servers = set(stalling)
    for sid, intent in (tags or {}).items():
        nova.tag(sid, intent)
    return nova


def _kinds(journal, run_id):
    return [(e.kind, e.target, e.state) for e in journal.events(run_id)]


def test_default_policy_force_completes_a_stalled_move_and_empties_the_host(journal):
    nova = stalling_cloud("v1")
    report = drain(nova, "c1", journal=journal, **fast())
    by = {r.server_id: r for r in report.results}
    assert report.ok and report.exit_code == 0, report.summary
    assert all(nova.servers[s].host != "c1" for s in by)
    assert by["v1"].result == MOVED and by["v1"].stall == "force-completed"
    assert "stall" in by["v1"].detail and by["v1"].to_dict()["stall"] == "force-completed"
    assert by["v0"].stall is None
    kinds = _kinds(journal, report.run_id)
    note = kinds.index((events.DRAIN_STALL, "v1", "note"))
    forced = [i for i, k in enumerate(kinds) if k[0] == events.DRAIN_FORCE_COMPLETE and k[1] == "v1"]
    assert forced and forced[0] > note          # noted, journaled, then sent
    assert len(nova.force_completed) == 1


def test_post_copy_is_said_when_the_cloud_switched_to_it(journal):
    nova = stalling_cloud("v1")
    nova.post_copy = True
    report = drain(nova, "c1", journal=journal, **fast())
    by = {r.server_id: r for r in report.results}
    assert report.ok and by["v1"].stall == "force-completed (post-copy)"


def test_on_stall_abort_retries_once_elsewhere_then_leaves_it_on_the_source(journal):
    nova = stalling_cloud("v1")
    report = drain(nova, "c1", journal=journal, on_stall="abort", **fast())
    by = {r.server_id: r for r in report.results}
    aborted = [m for m in nova.migrations if m["server"] == "v1"]
    assert [m["status"] for m in aborted] == ["cancelled", "cancelled"]
    assert aborted[0]["dest"] != aborted[1]["dest"]          # retried once, on another host
    assert nova.servers["v1"].host == "c1" and nova.servers["v1"].status == "ACTIVE"
    assert by["v1"].result == ABORTED and by["v1"].stall == "aborted"
    assert report.exit_code == errors.EXIT_INCOMPLETE and "vm-v1" in report.summary
    assert nova.force_completed == []


def test_a_live_strict_server_is_never_force_completed(journal):
    nova = stalling_cloud("v1", tags={"v1": "live-strict"})
    report = drain(nova, "c1", journal=journal, **fast())
    by = {r.server_id: r for r in report.results}
    assert nova.force_completed == []
    assert len([m for m in nova.migrations if m["server"] == "v1"]) == 1     # not retried either
    assert by["v1"].result == ABORTED and "live-strict" in by["v1"].detail
    assert nova.servers["v1"].host == "c1" and report.exit_code == errors.EXIT_INCOMPLETE


def test_on_stall_cold_moves_it_cold_but_never_a_live_tagged_one(journal):
    nova = stalling_cloud("v1", "v2", tags={"v2": "live"})
    report = drain(nova, "c1", journal=journal, on_stall="cold", **fast())
    by = {r.server_id: r for r in report.results}
    assert report.ok, report.summary
    kinds = {(m["server"], m["kind"], m["status"]) for m in nova.migrations}
    assert ("v1", "live", "cancelled") in kinds and ("v1", "cold", "confirmed") in kinds
    assert by["v1"].stall == "fell back to cold" and by["v1"].mode == "cold"
    assert not any(s == "v2" and k == "cold" for s, k, _ in kinds)
    assert by["v2"].stall == "force-completed"


def test_on_stall_leave_keeps_waiting_and_only_reports(journal):
    nova = stalling_cloud("v1")
    report = drain(nova, "c1", journal=journal, on_stall="leave", step_timeout=30, **fast())
    by = {r.server_id: r for r in report.results}
    assert nova.force_completed == [] and by["v1"].result != MOVED
    assert any(k == (events.DRAIN_STALL, "v1", "note") for k in _kinds(journal, report.run_id))


def test_undrain_move_back_aborts_a_stalled_move_without_retrying_elsewhere(journal):
    nova = stalling_cloud()
    report = drain(nova, "c1", journal=journal, **fast())
    assert report.ok
    nova.stall_servers = {"v0"}
    back = undrain(nova, "c1", journal=journal, move_back=True, on_stall="abort", **fast())
    by = {r.server_id: r for r in back.results}
    assert len([m for m in nova.migrations if m["server"] == "v0" and m["dest"] == "c1"]) == 1
    assert by["v0"].stall == "aborted" and not back.ok


def test_a_live_migration_the_hypervisor_rolled_back_is_reported_at_once():
    """libvirt's rollback writes no fault: nothing to wait for (the ~11 s of REASON_PATIENCE)."""
    rolled_back = Migration("1", "s", "c1", "c2", "failed", "live-migration")
    errored = Migration("1", "s", "c1", "c2", "error", "live-migration")
    assert lifecycle.reason_due(100.0, 100.0, None, rolled_back)
    assert not lifecycle.reason_due(100.0, 100.0, None, errored)       # a raising path writes one
    assert not lifecycle.reason_due(100.0, 100.0, None, Migration("1", "s", "c1", "c2", "failed", "migration"))


# ------------------------------------------------------------------ single moves (migrate)

@pytest.fixture
def ticking(monkeypatch):
    """Every clock read is a second later; sleeps are instant."""
    import itertools
    clock = itertools.count(0, 1.0)
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    monkeypatch.setattr("time.sleep", lambda s: None)
    monkeypatch.setenv("NOVAMOVE_STALL_WINDOW", "5")


def _migrate(nova, journal, sid, **kw):
    from novamove.engine.single import mover
    nova.tick_on_get = True
    return mover.move(nova, journal, sid, "c2", mode="live", poll_interval=0, timeout=600, **kw)


def test_migrate_force_completes_a_stall_by_default_and_says_so(journal, ticking):
    nova = stalling_cloud("v1")
    result = _migrate(nova, journal, "v1")
    assert result.ok and result.stall == "force-completed", result.error
    assert result.to_dict()["stall"] == "force-completed"
    kinds = [e.kind for e in journal.events(result.run_id)]
    assert kinds.index(events.MIGRATION_STALL) < kinds.index(events.MIGRATION_FORCE_COMPLETE)


@pytest.mark.parametrize("on_stall,tags", [("abort", {}), ("force-complete", {"v1": "live-strict"})])
def test_migrate_aborts_a_stall_when_asked_or_live_strict(journal, ticking, on_stall, tags):
    nova = stalling_cloud("v1", tags=tags)
    result = _migrate(nova, journal, "v1", on_stall=on_stall)
    assert not result.ok and result.exit_code == errors.EXIT_FAILED and result.stall == "aborted"
    assert "stalled" in result.error and nova.servers["v1"].host == "c1"
    assert nova.force_completed == []


def test_migrate_on_stall_cold_moves_it_cold_to_the_same_target(journal, ticking):
    nova = stalling_cloud("v1")
    result = _migrate(nova, journal, "v1", on_stall="cold")
    assert result.ok and result.stall == "fell back to cold" and result.mode == "cold", result.error
    assert nova.servers["v1"].host == "c2"
    assert [m["kind"] for m in nova.migrations if m["server"] == "v1"] == ["live", "cold"]


def test_wait_never_acts_on_a_stall_of_a_move_it_did_not_start(journal, ticking):
    from novamove.engine.single import mover
    nova = stalling_cloud("v1")
    nova.tick_on_get = True
    nova.live_migrate_server("v1", host="c2")
    result = mover.follow(nova, journal, "v1", timeout=30, on_timeout="leave", poll_interval=0)
    assert not result.ok and nova.force_completed == []


def test_a_faulted_force_complete_is_journaled_and_tried_again(journal, monkeypatch):
    """NOVAMOVE_FAULT reaches the new journaled change: the first force-complete fails (a 500)
    after its intent is written; the stall is seen again a window later and forced then."""
    monkeypatch.setenv("NOVAMOVE_FAULT", "drain.force_complete:before:error:1")
    nova = stalling_cloud("v1")
    report = drain(nova, "c1", journal=journal, **fast())
    by = {r.server_id: r for r in report.results}
    assert report.ok and by["v1"].stall == "force-completed", report.summary
    states = [e.state for e in journal.events(report.run_id) if e.kind == events.DRAIN_FORCE_COMPLETE]
    assert states == ["failed", "done"]
    assert len([e for e in journal.events(report.run_id) if e.kind == events.DRAIN_STALL]) == 2


def test_an_adopted_move_reads_its_servers_intent_before_acting(journal):
    """A rerun follows a move an earlier run started: a live-strict server is still never
    force-completed (its tag is read before the policy applies)."""
    from novamove.engine.batch.moves import BatchRunner, _InFlight
    from novamove.planner import DrainStep
    nova = stalling_cloud("v1", tags={"v1": "live-strict"})
    nova.live_migrate_server("v1", host="c2")
    step = DrainStep(server_id="v1", server_name="vm-v1", source="c1", dest="c2", mode="live")
    kw = fast()
    clock = kw.pop("clock")
    adopted = _InFlight(step, None, clock(), set(), adopted=True)
    journal.start_run("r1", "drain")
    runner = BatchRunner(nova, journal, "r1", [], max_parallel=2, max_per_host=2, adopted=[adopted],
                         clock=clock, **kw)
    results = {r.server_id: r for r in runner.run()}
    assert nova.force_completed == [] and results["v1"].stall == "aborted"


def test_a_stall_is_a_line_of_the_event_stream_and_counts_in_the_metrics(tmp_path):
    """Issue 22: stalls and what is done about them are journal notes, so the stream has them and
    novamove_stalls_total counts them."""
    import json
    from prometheus_client.parser import text_string_to_metric_families
    from novamove.observe.metrics import RunMetrics
    from novamove.observe.stream import EventStream, schema

    stream_path, textfile = tmp_path / "events.jsonl", tmp_path / "m.prom"
    stream = EventStream.open(str(stream_path))
    metrics = RunMetrics(textfile=str(textfile))
    j = Journal(tmp_path / "j.sqlite", observers=[stream, metrics])
    report = drain(stalling_cloud("v1", "v2"), "c1", journal=j, **fast())
    stream.close()
    metrics.write(force=True)
    assert report.ok, report.summary
    lines = [json.loads(line) for line in stream_path.read_text().splitlines()]
    import jsonschema
    for line in lines:
        jsonschema.validate(line, schema())
    stalls = [x for x in lines if x["kind"] == events.DRAIN_STALL]
    assert sorted(x["target"] for x in stalls) == ["v2", "v1"][::-1]
    value = {s.name: s.value for fam in text_string_to_metric_families(textfile.read_text())
             for s in fam.samples}["novamove_stalls_total"]
    assert value == len(stalls) == 2
