"""The campaign runner (engine/campaign/) against the in-memory Nova of the drain tests."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from novamove import errors
from novamove.engine import campaign as camp
from novamove.engine import faults
from novamove.engine.batch import drain as drainmod
from novamove.engine.campaign import Options, run_campaign
from novamove.engine.journal import Journal

from fakenova import FakeNova


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(camp.common, "POLL", 0.01)
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.01)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.sqlite")


@pytest.fixture
def hooks_seen(monkeypatch):
    """Every hook start: (host, servers on it then, their statuses, hosts out of service)."""
    seen = []
    real = subprocess.Popen

    def popen(cmd, *a, env=None, **kw):
        if not env or "NOVAMOVE_HOST" not in env:      # not a hook (e.g. the `sh -n` check)
            return real(cmd, *a, env=env, **kw)
        cloud = popen.cloud
        host = env["NOVAMOVE_HOST"]
        on = cloud.list_servers_on_host(host)
        out = sorted(s.host for s in cloud.services.values() if not s.enabled)
        seen.append((host, len(on), sorted(s.status for s in on), out, env["NOVAMOVE_RUN_ID"],
                     env["NOVAMOVE_HYPERVISOR"]))
        return real(cmd, *a, env=env, **kw)
    monkeypatch.setattr(subprocess, "Popen", popen)
    return seen, popen


def opts(**kw):
    base = dict(hook="true", max_hosts=1, poll_interval=0.01, gate_timeout=5, gate="heartbeat")  # "true" restarts nothing
    base.update(kw)
    return Options(**base)


def fleet_with_servers():
    f = FakeNova()
    for i in range(3):
        f.add(f"a{i}", "c1")
    f.add("b0", "c2")
    f.add("b1", "c2", status="SHUTOFF")
    f.add("d0", "c3")
    return f


def moves_per_server(f):
    out: dict[str, int] = {}
    for m in f.migrations:
        out[m["server"]] = out.get(m["server"], 0) + 1
    return out


def test_campaign_services_every_host_empty_during_its_hook(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1", "c2", "c3"], options=opts(max_hosts=2))
    assert rep.ok and rep.exit_code == 0, rep.summary
    assert [r.outcome for r in rep.results] == ["done"] * 3
    assert sorted(h for h, *_ in seen) == ["c1", "c2", "c3"]
    assert all(n == 0 for _, n, *_ in seen)               # every hook ran on an empty host
    assert all(len(out) <= 2 for *_, out, _, _ in seen)    # at most K out at once
    assert rep.peak_out <= 2
    assert seen[0][4] == rep.run_id and seen[0][5].endswith(".fake")
    assert all(s.enabled for s in f.services.values())
    assert max(moves_per_server(f).values()) == 1         # nothing moved twice (c4 is free)
    assert {s.status for s in f.servers.values()} == {"ACTIVE", "SHUTOFF"}
    assert f.servers["b1"].status == "SHUTOFF"
    run = journal.get_run(rep.run_id)
    assert run["verb"] == "maintain" and run["status"] == "ok"


def test_order_empty_first_then_fewest(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1", "c2", "c3", "c4"], options=opts())
    assert [h for h, *_ in seen] == ["c4", "c3", "c2", "c1"]
    assert rep.ok


def test_failing_hook_stops_campaign_and_leaves_host_disabled_with_reason(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c3", "c2", "c1"], options=opts(order="given", hook='test "$NOVAMOVE_HOST" != c2'))
    outcomes = {r.host: r.outcome for r in rep.results}
    assert outcomes == {"c3": "done", "c2": "failed", "c1": "not-started"}
    assert rep.exit_code == errors.EXIT_FAILED and "stop-loss" in rep.summary
    c2 = f.services["c2"]
    assert not c2.enabled and "FAILED hook" in c2.disabled_reason and rep.run_id in c2.disabled_reason
    # every admin of the cloud reads the reason: no local path in it; the report keeps the log
    assert "/" not in c2.disabled_reason and ".log" not in c2.disabled_reason
    assert "c2.hook.log" in next(r for r in rep.results if r.host == "c2").detail
    assert f.services["c1"].enabled and not any(m["source"] == "c1" for m in f.migrations)   # untouched
    failed = next(r for r in rep.results if r.host == "c2")
    assert failed.hook_exit == 1 and failed.log and open(failed.log).read().startswith("# ")


def hook_failing_on_c2(tmp_path):
    """A hook that fails on c2 until the flag file is removed (the operator repaired c2)."""
    flag = tmp_path / "broken"
    flag.write_text("x")
    return flag, f'test "$NOVAMOVE_HOST" != c2 || test ! -e {flag}'


def test_resume_runs_stored_hook_and_skips_done_hosts(journal, hooks_seen, tmp_path):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    flag, hook = hook_failing_on_c2(tmp_path)
    rep = run_campaign(f, journal, ["c3", "c2", "c1"], options=opts(order="given", hook=hook))
    assert [r.outcome for r in rep.results] == ["done", "failed", "not-started"]
    flag.unlink()                                 # the operator repaired c2
    n = len(seen)
    rep2 = run_campaign(f, journal, resume=rep.run_id)
    assert rep2.ok and [r.outcome for r in rep2.results] == ["done", "done", "done"]
    assert [h for h, *_ in seen[n:]] == ["c2", "c1"]
    assert max(moves_per_server(f).values()) == 1
    assert all(s.enabled for s in f.services.values())
    assert journal.get_run(rep.run_id)["status"] == "ok"


def test_rerun_same_hosts_continues_a_killed_campaign_and_unfinished_hook_needs_a_flag(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c3", "c2"], options=opts(order="given"))
    assert rep.ok
    # Pretend a second campaign was SIGKILLed during c1's hook.
    rid = "deadbeef0001"
    journal.start_run(rid, "maintain", source="c1,c4", strategy="campaign")
    journal.note(rid, camp.EV_CAMPAIGN, None, options=opts().to_dict(), hosts=["c1", "c4"])
    journal.note(rid, camp.EV_HOST, "c4", outcome="done")
    svc = f.services["c1"]
    f.services["c1"] = dataclasses.replace(svc, status="disabled", disabled_reason=camp.reason_text(rid, "draining"))
    journal.intent(rid, camp.EV_HOOK, "c1", started=datetime(2020, 1, 1).isoformat(), log="/tmp/x.log")
    journal._write("UPDATE runs SET pid=? WHERE id=?", (999999, rid))
    with pytest.raises(errors.PreconditionFailed, match="--rerun-hook"):
        run_campaign(f, journal, ["c1", "c4"], options=opts())
    assert not f.services["c1"].enabled             # nothing changed
    n = len(seen)
    rep2 = run_campaign(f, journal, ["c1", "c4"], options=opts(), rerun_hooks=True)
    assert rep2.run_id == rid and rep2.ok, rep2.summary
    assert [h for h, *_ in seen[n:]] == ["c1"]      # c4 done before: not again
    assert f.services["c1"].enabled


def test_capacity_refusal_changes_nothing(journal):
    f = FakeNova(hosts=("c1", "c2"))
    for i in range(3):
        f.add(f"x{i}", "c1")
    f.compute_hosts_orig = f.compute_hosts

    def tiny(with_resources=True):
        return [dataclasses.replace(h, capacity=dataclasses.replace(h.capacity, memory_mb=1024))
                for h in f.compute_hosts_orig(with_resources)]
    f.compute_hosts = tiny
    dry = run_campaign(f, journal, ["c1"], options=opts(), dry_run=True)
    assert not dry.ok and dry.exit_code == errors.EXIT_PRECONDITION
    assert "find no destination" in dry.summary and "MB RAM" in dry.summary
    with pytest.raises(errors.NoCapacity, match="nothing changed"):
        run_campaign(f, journal, ["c1"], options=opts())
    assert "disable_service" not in f.calls and not f.migrations
    assert journal.runs() == []


def test_stop_intent_powered_off_for_hook_and_started_after(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("a0", "stop")
    rep = run_campaign(f, journal, ["c1"], options=opts())
    assert rep.ok, rep.summary
    host, n, statuses, *_ = seen[0]
    assert host == "c1" and n == 1 and statuses == ["SHUTOFF"]
    assert f.actions == [("stop", "a0"), ("start", "a0")]
    assert f.servers["a0"].host == "c1" and f.servers["a0"].status == "ACTIVE"
    assert rep.results[0].stopped == ["vm-a0"]


def test_skip_intent_host_not_serviced_unless_allowed(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("d0", "skip")
    rep = run_campaign(f, journal, ["c3", "c4"], options=opts())
    assert {r.host: r.outcome for r in rep.results} == {"c4": "done", "c3": "skipped"}
    assert rep.exit_code == errors.EXIT_INCOMPLETE
    assert f.services["c3"].enabled and "d0" not in moves_per_server(f)
    rep2 = run_campaign(f, journal, ["c3"], options=opts(allow_skip=True))
    assert rep2.ok and "d0" not in moves_per_server(f)
    assert seen[-1][0] == "c3" and seen[-1][1] == 1


def test_cold_intent_moves_active_server_cold(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("d0", "cold")
    rep = run_campaign(f, journal, ["c3"], options=opts())
    assert rep.ok, rep.summary
    assert [m["kind"] for m in f.migrations if m["server"] == "d0"] == ["cold"]


@pytest.mark.parametrize("server_shows_groups", [True, False], ids=["2.71+", "below-2.71"])
def test_group_budget_below_2_71_counts_members_from_the_group_listing(journal, hooks_seen, server_shows_groups):
    """Below compute API 2.71 a server does not list its groups: the budget comes from the
    server-group listing's members (the same outcome either way)."""
    from novamove.model import ServerGroup
    seen, popen = hooks_seen
    f = FakeNova()
    f.add("g1", "c1", groups=("grp",) if server_shows_groups else ())
    f.add("g2", "c2", groups=("grp",) if server_shows_groups else ())
    f.groups = [ServerGroup("grp", "grp", "soft-anti-affinity", ("g1", "g2"))]
    popen.cloud = f
    f.tag("g1", "stop")
    f.tag("g2", "stop")
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts(max_hosts=2, hook="sleep 0.3"))
    assert rep.ok, rep.summary
    assert rep.peak_group == 1 and all(len(out) == 1 for *_, out, _, _ in seen)


def test_gate_waits_for_a_report_after_the_hook(journal, hooks_seen, monkeypatch):
    seen, popen = hooks_seen
    f = FakeNova()
    popen.cloud = f
    f.down("c1")           # never reports: the gate times out, the host fails
    rep = run_campaign(f, journal, ["c1"], options=opts(gate_timeout=0.3))
    assert rep.results[0].outcome == "failed" and "gate not passed" in rep.results[0].detail
    assert not f.services["c1"].enabled and "FAILED gate" in f.services["c1"].disabled_reason


def test_check_command_failure_fails_host(journal, hooks_seen):
    seen, popen = hooks_seen
    f = FakeNova()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1"], options=opts(check="exit 3"))
    assert rep.results[0].outcome == "failed" and rep.results[0].check_exit == 3


def test_hook_timeout_kills_it(journal, hooks_seen):
    seen, popen = hooks_seen
    f = FakeNova()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1"], options=opts(hook="sleep 30", hook_timeout=0.3))
    r = rep.results[0]
    assert r.outcome == "failed" and "timed out" in r.detail and r.hook_seconds < 10


def test_host_disabled_by_someone_else_is_left_alone(journal):
    f = FakeNova()
    f.services["c2"] = dataclasses.replace(f.services["c2"], status="disabled", disabled_reason="RMA ticket 42")
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts())
    outcomes = {r.host: r.outcome for r in rep.results}
    assert outcomes == {"c1": "done", "c2": "skipped"}
    assert f.services["c2"].disabled_reason == "RMA ticket 42"


def test_bad_input_one_line_errors(journal):
    f = FakeNova()
    with pytest.raises(errors.UsageError):
        run_campaign(f, journal, ["c1"], options=opts(max_hosts=0))
    with pytest.raises(errors.NotFound):
        run_campaign(f, journal, ["nope"], options=opts())
    with pytest.raises(errors.NotFound):
        run_campaign(f, journal, [], aggregate="nope", options=opts())
    with pytest.raises(errors.UsageError):
        run_campaign(f, journal, [], options=opts())
    with pytest.raises(errors.NotFound):
        run_campaign(f, journal, resume="nosuchrun")
    assert journal.runs() == []


def test_aggregate_selection_and_status(journal):
    f = FakeNova()
    rep = run_campaign(f, journal, [], aggregate="rack1", options=opts())
    assert [r.host for r in rep.results] == ["c1", "c2"] and rep.ok
    rows = camp.status(journal)
    assert rows[0]["run_id"] == rep.run_id and rows[0]["hosts"] == ["c1", "c2"]
    assert rows[0]["host_state"]["c1"]["outcome"] == "done"


def test_live_view_on_a_terminal_and_plain_lines_when_piped(journal, capsys):
    from novamove.report import CampaignView, campaign_plan_tables, campaign_table
    f = fleet_with_servers()
    with CampaignView(force_terminal=True) as view:
        assert view.live
        rep = run_campaign(f, journal, ["c2", "c3"], options=opts(max_hosts=2), progress=view.line,
                           on_update=view.update)
    assert rep.ok
    err = capsys.readouterr().err
    assert "hosts" in err and "servers moved" in err and "in flight" in err
    with CampaignView(force_terminal=False) as view:
        assert not view.live
        view.line("compute1: hook started")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("compute1: hook started\n")
    # the final table and the dry-run tables render from to_dict()
    assert campaign_table(rep.to_dict()).row_count == 2
    dry = run_campaign(f, journal, ["c1"], options=opts(), dry_run=True)
    assert len(campaign_plan_tables(dry.to_dict()["plan"])) == 2


def test_resume_takes_hosts_already_out_first(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    rid = "deadbeef0002"
    journal.start_run(rid, "maintain", source="c1,c2", strategy="campaign")
    journal.note(rid, camp.EV_CAMPAIGN, None, options=opts(order="given").to_dict(), hosts=["c1", "c2"])
    eid = journal.intent(rid, camp.EV_DISABLE, "c2", service_id="svc-c2")
    journal.done(eid)
    f.services["c2"] = dataclasses.replace(f.services["c2"], status="disabled",
                                           disabled_reason=camp.reason_text(rid, "draining"))
    journal._write("UPDATE runs SET pid=? WHERE id=?", (999999, rid))
    rep = run_campaign(f, journal, ["c1", "c2"], options=opts(order="given"))
    assert rep.run_id == rid and rep.ok, rep.summary
    assert [h for h, *_ in seen] == ["c2", "c1"]      # c2 was out already: it goes first (K=1 held)
    assert all(len(out) == 1 for *_, out, _, _ in seen)


# ------------------------------------------------------------------ other people's state

def test_campaign_ownership_is_an_exact_parse_of_the_tag():
    from novamove.engine.campaign.intents import campaign_owns
    from novamove.engine.tags import drain_reason, lease_from_now
    run = "abc123"
    assert campaign_owns(camp.reason_text(run, "x"), run)
    assert campaign_owns(drain_reason("d1", f"maintain {run}"), run)
    assert campaign_owns(drain_reason("d1", f"maintain {run}", lease_from_now()), run)
    # a longer run id that starts with ours, or an operator's words mentioning it, is not ours
    assert not campaign_owns(drain_reason("d1", f"maintain {run}def"), run)
    assert not campaign_owns(f"ops: will maintain {run} later", run)
    assert not campaign_owns(drain_reason("d1", f"kernel: maintain {run}"), run)
    assert not campaign_owns(None, run) and not campaign_owns(camp.reason_text(run, "x"), "")


def test_stop_server_already_shutoff_is_not_powered_on_after_the_hook(journal, hooks_seen):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("a0", "stop")
    f.servers["a0"] = f.servers["a0"].replace(status="SHUTOFF")     # its owner had it off
    rep = run_campaign(f, journal, ["c1"], options=opts())
    assert rep.ok, rep.summary
    assert ("start", "a0") not in f.actions and ("stop", "a0") not in f.actions
    assert f.servers["a0"].status == "SHUTOFF" and f.servers["a0"].host == "c1"
    assert rep.results[0].stopped == []


def test_hooks_run_without_novamoves_secrets(journal, tmp_path, monkeypatch):
    f = fleet_with_servers()
    out = tmp_path / "env"
    monkeypatch.setenv("OS_PASSWORD", "hunter2")
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_SECRET", "s3cr3t")
    monkeypatch.setenv("OS_TOKEN", "gAAAA")
    monkeypatch.setenv("OS_CLOUD", "prod")
    rep = run_campaign(f, journal, ["c1"], options=opts(hook=f"env > {out}"))
    assert rep.ok, rep.summary
    env = out.read_text()
    assert "hunter2" not in env and "s3cr3t" not in env and "gAAAA" not in env
    assert "OS_CLOUD=prod" in env and "NOVAMOVE_HOST=c1" in env


@pytest.mark.parametrize("hook, why", [
    ("/nonexistent/patch.sh", "does not exist"),
    ("NOTEXEC", "is not an executable file"),
    ("ssh {host} reboot", 'use "$NOVAMOVE_HOST"'),
    ("echo 'unterminated", "sh rejects the command"),
    ("if true; then", "sh rejects the command"),
    ("   ", "must be a command line"),
])
def test_unusable_hook_is_refused_before_anything_changes(journal, tmp_path, hook, why):
    f = fleet_with_servers()
    if hook == "NOTEXEC":
        hook = str(tmp_path / "patch.sh")
        (tmp_path / "patch.sh").write_text("#!/bin/sh\n")     # mode 0644
    with pytest.raises(errors.UsageError, match=why.replace("$", r"\$").replace("(", r"\(")):
        run_campaign(f, journal, ["c1"], options=opts(hook=hook))
    assert "disable_service" not in f.calls and not f.migrations and journal.runs() == []
    with pytest.raises(errors.UsageError, match="--check"):
        run_campaign(f, journal, ["c1"], options=opts(check="/nonexistent/check"))


def test_a_resumed_campaign_is_this_process_and_a_second_resume_is_refused(journal, hooks_seen, tmp_path):
    import os
    import sys

    from novamove.engine.journal import process_token, run_alive
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    flag, hook = hook_failing_on_c2(tmp_path)
    rep = run_campaign(f, journal, ["c3", "c2"], options=opts(order="given", hook=hook))
    assert not rep.ok
    flag.unlink()
    # Pretend the first run was another process that died: the resume must journal itself.
    journal._write("UPDATE runs SET pid=?, process=? WHERE id=?", (999999, "gone", rep.run_id))
    during = []

    def watch(c):
        during.append(dict(journal.get_run(rep.run_id)))
    rep2 = run_campaign(f, journal, resume=rep.run_id, on_update=watch)
    assert rep2.ok, rep2.summary
    assert during and all(r["status"] == "running" and r["pid"] == os.getpid() and run_alive(r) for r in during)
    # A run held by another live process (a second `--resume` from another terminal) is refused.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        journal._write("UPDATE runs SET status='failed' WHERE id=?", (rep.run_id,))
        journal._write("UPDATE runs SET status='running', pid=?, process=? WHERE id=?",
                       (other.pid, process_token(other.pid), rep.run_id))
        with pytest.raises(errors.PreconditionFailed, match="still running"):
            run_campaign(f, journal, resume=rep.run_id)
    finally:
        other.kill()


class RebootingFleet(FakeNova):
    """A fleet whose hypervisors report an uptime as libvirt's do (the `uptime` command's text,
    in minutes), in a Nova clock 7 minutes ahead of this machine's. `reboot(host)` is what a
    hook's delayed `systemctl reboot` does: the host comes back 10 minutes later (Nova's clock
    jumps), freshly booted."""

    def __init__(self):
        super().__init__()
        self.booted = {h: datetime(2020, 1, 1) for h in self.services}
        self.skew = timedelta(minutes=7)
        self.reboots: dict[str, float] = {}          # host -> when (monotonic) its reboot lands

    def cloud_now(self):
        return datetime.now(timezone.utc) + self.skew

    def _nova_naive(self):
        return self.cloud_now().replace(tzinfo=None)

    def hypervisor_uptime(self, host):
        import time
        if host in self.reboots and time.monotonic() >= self.reboots[host]:
            del self.reboots[host]
            self.skew += timedelta(minutes=10)
            self.booted[host] = self._nova_naive() - timedelta(seconds=5)
        minutes = int((self._nova_naive() - self.booted[host]).total_seconds() // 60)
        days, minutes = divmod(minutes, 1440)
        span = (f"{days} days, " if days else "") + (f"{minutes // 60:2d}:{minutes % 60:02d}" if minutes >= 60
                                                      else f"{minutes} min")
        return f" 10:00:00 up {span},  0 users,  load average: 0.00, 0.00, 0.00\n"

    def list_compute_services(self):
        now = self._nova_naive().isoformat()
        return [dataclasses.replace(s, updated_at=now) for s in super().list_compute_services()]


def test_restart_gate_never_passes_on_the_old_process(journal, hooks_seen):
    import time
    seen, popen = hooks_seen
    f = RebootingFleet()
    popen.cloud = f
    # The hook returns at once and its reboot never comes: the old nova-compute keeps
    # reporting, yet the host fails at the gate and stays out (the default gate with a hook).
    rep = run_campaign(f, journal, ["c1"], options=opts(gate=None, gate_timeout=1.0))
    res = rep.results[0]
    assert res.outcome == "failed" and "restart gate" in res.detail and "up since before the hook" in res.detail
    assert not rep.ok and not f.services["c1"].enabled
    # The reboot lands after the hook returned: the host returns then, not before.
    f2 = RebootingFleet()
    popen.cloud = f2
    f2.reboots["c2"] = time.monotonic() + 0.5
    rep2 = run_campaign(f2, Journal(journal.path.parent / "j2.sqlite"), ["c2"],
                        options=opts(gate=None, gate_timeout=5.0))
    assert rep2.ok, rep2.results[0].detail
    assert rep2.results[0].gate.startswith("restarted: booted after")
    assert not f2.reboots                       # the gate saw the reboot land


def test_restart_gate_without_uptime_needs_the_compute_seen_down(journal, hooks_seen):
    seen, popen = hooks_seen
    f = FakeNova()                             # its hypervisors report no uptime
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1"], options=opts(gate="restart", gate_timeout=0.5))
    assert rep.results[0].outcome == "failed" and "not seen down" in rep.results[0].detail


def test_heartbeat_gate_passes_on_a_report_after_the_hook(journal, hooks_seen):
    seen, popen = hooks_seen
    f = RebootingFleet()
    popen.cloud = f
    rep = run_campaign(f, journal, ["c1"], options=opts(gate="heartbeat"))
    assert rep.ok and "after the hook" in rep.results[0].gate


def test_bad_gate_is_a_usage_error(journal):
    with pytest.raises(errors.UsageError, match="--gate must be one of restart, heartbeat"):
        run_campaign(FakeNova(), journal, ["c1"], options=opts(gate="reboot"))


def test_a_host_out_for_its_hook_is_the_campaigns_other_operators_are_refused(journal, tmp_path, monkeypatch):
    """While a host's hook runs, another operator's drain, undrain and maintain of it (another
    journal: another machine) are refused in one line naming the campaign; the campaign then
    finishes the host as planned."""
    from novamove.engine.batch import drain as drains
    f = fleet_with_servers()
    other = Journal(tmp_path / "other-machine.sqlite")
    tried = {}
    real = subprocess.Popen

    def popen(cmd, *a, env=None, **kw):
        if env and "NOVAMOVE_HOST" in env and not tried:
            host = env["NOVAMOVE_HOST"]
            for verb, call in (("drain", lambda: drains.drain(f, host, journal=other)),
                               ("undrain", lambda: drains.undrain(f, host, journal=other)),
                               ("maintain", lambda: run_campaign(f, other, [host], options=opts()))):
                try:
                    got = call()
                    # (a campaign reports a host it may not service, with why, and exits 8)
                    tried[verb] = "; ".join(r.detail for r in getattr(got, "results", [])) or "succeeded"
                    assert got.exit_code != 0
                except errors.PreconditionFailed as exc:
                    tried[verb] = str(exc)
        return real(cmd, *a, env=env, **kw)
    monkeypatch.setattr(subprocess, "Popen", popen)
    rep = run_campaign(f, journal, ["c1"], options=opts())
    assert rep.ok, rep.summary
    assert set(tried) == {"drain", "undrain", "maintain"}
    for verb, what in tried.items():
        assert f"maintenance campaign {rep.run_id} holds it" in what, (verb, what)
    assert f.services["c1"].enabled and "lease" not in (f.services["c1"].disabled_reason or "")


@pytest.mark.parametrize("action", ["error", "timeout"])
def test_a_stop_whose_answer_was_lost_is_read_back_and_started_after_the_hook(journal, hooks_seen,
                                                                             monkeypatch, action):
    """Nova took the stop but its answer was lost (a 500 or a timeout after the call): the
    server, read back SHUTOFF, is the campaign's, so it is started again after the hook (the
    fault matrix's maintain.stop error/timeout after points found it left off)."""
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("a0", "stop")
    faults.reset()
    monkeypatch.setenv("NOVAMOVE_FAULT", f"maintain.stop:after:{action}:1")
    rep = run_campaign(f, journal, ["c1"], options=opts())
    assert rep.ok, rep.summary
    assert f.actions == [("stop", "a0"), ("start", "a0")]
    assert f.servers["a0"].status == "ACTIVE" and rep.results[0].stopped == ["vm-a0"]
    [stop] = [e for e in journal.events(rep.run_id) if e.kind == "maintain.stop"]
    assert stop.state == "done" and stop.data["read_back"] == "SHUTOFF"


def test_a_stop_nova_never_got_fails_the_host_and_leaves_the_server_alone(journal, hooks_seen, monkeypatch):
    seen, popen = hooks_seen
    f = fleet_with_servers()
    popen.cloud = f
    f.tag("a0", "stop")
    faults.reset()
    monkeypatch.setenv("NOVAMOVE_FAULT", "maintain.stop:before:error:1")
    rep = run_campaign(f, journal, ["c1"], options=opts())
    assert not rep.ok and rep.results[0].outcome == "failed" and rep.results[0].stage == "stop"
    assert "read back: still ACTIVE" in rep.results[0].detail
    assert ("stop", "a0") not in f.actions and f.servers["a0"].status == "ACTIVE"
    assert not seen                                       # no hook on a host still running it
    [stop] = [e for e in journal.events(rep.run_id) if e.kind == "maintain.stop"]
    assert stop.state == "failed"


def test_hook_logs_of_a_database_journal_go_to_the_state_directory(journal, tmp_path, monkeypatch):
    """A database journal's `path` is its URL (password masked): no directory to put hook logs
    beside. They go under XDG_STATE_HOME/novamove/runs, never into a directory named after the
    URL in the working directory (seen after a shared-journal run)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    journal.path = "mysql+pymysql://novamove:***@127.0.0.1:3306/novamove"
    f = fleet_with_servers()
    rep = run_campaign(f, journal, ["c1"], options=opts(hook="echo serviced"))
    assert rep.ok, rep.summary
    logs = list((tmp_path / "state" / "novamove" / "runs" / rep.run_id).glob("*.log"))
    assert logs and "serviced" in logs[0].read_text()
    assert not (tmp_path / "mysql+pymysql:").exists()
