"""A resumed campaign and the hook its stopped run left: journaled with its pid and process
token, never run twice at once (engine/campaign/stages.py, verb.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import datetime

import pytest

from novamove import errors
from novamove.engine import campaign as camp
from novamove.engine.campaign import run_campaign
from novamove.engine.journal import Journal, process_token
from test_campaign import fast, fleet_with_servers, opts  # noqa: F401  (fast: the autouse fixture)


def killed_during_hook(journal, f, pid, token):
    """A campaign SIGKILLed while c1's hook (pid) ran: its journal and c1's tag as it left them."""
    rid = "deadbeef0002"
    journal.start_run(rid, "maintain", source="c1", strategy="campaign")
    journal.note(rid, camp.EV_CAMPAIGN, None, options=opts().to_dict(), hosts=["c1"])
    svc = f.services["c1"]
    f.services["c1"] = dataclasses.replace(svc, status="disabled", disabled_reason=camp.reason_text(rid, "draining"))
    journal.intent(rid, camp.EV_HOOK, "c1", started=datetime(2020, 1, 1).isoformat(), log="/tmp/x.log",
                   pid=pid, process=token)
    journal._write("UPDATE runs SET pid=? WHERE id=?", (999999, rid))
    return rid


def test_a_hook_still_running_is_never_run_again_beside_it(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    hook = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        rid = killed_during_hook(journal, f, hook.pid, process_token(hook.pid))
        for flags in ({"rerun_hooks": True}, {"hook_done": True}, {}):
            with pytest.raises(errors.PreconditionFailed, match=rf"still running \(pid {hook.pid}"):
                run_campaign(f, journal, resume=rid, **flags)
        assert not f.services["c1"].enabled                   # nothing changed
    finally:
        hook.kill()
        hook.wait()
    # Once it is gone: --rerun-hook runs it again, and the campaign finishes.
    rep = run_campaign(f, journal, resume=rid, rerun_hooks=True)
    assert rep.ok, rep.summary
    assert f.services["c1"].enabled


def test_a_hook_pid_reused_by_another_process_is_not_the_hook(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The journaled token is another process's (the pid was reused after a reboot).
        rid = killed_during_hook(journal, f, other.pid, "some-other-boot:1:1")
        rep = run_campaign(f, journal, resume=rid, rerun_hooks=True)
        assert rep.ok, rep.summary
    finally:
        other.kill()
        other.wait()


def test_the_hook_pid_is_journaled(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    rep = run_campaign(f, journal, ["c3"], options=opts())
    assert rep.ok
    [hook] = [e for e in journal.events(rep.run_id) if e.kind == camp.EV_HOOK]
    assert isinstance(hook.data.get("pid"), int) and hook.data.get("process")


def test_recover_lists_a_failed_campaign_that_still_holds_hosts(tmp_path):
    from novamove.engine import recover as recovery
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    broken = tmp_path / "broken"
    broken.write_text("x")
    rep = run_campaign(f, journal, ["c3"], options=opts(hook=f"test ! -e {broken}"))
    assert not rep.ok and journal.get_run(rep.run_id)["status"] == "failed"
    assert not f.services["c3"].enabled                      # the failed host stays out
    [found] = [r for r in recovery.recover(f, journal) if r["run_id"] == rep.run_id]
    assert f"novamove maintain --resume {rep.run_id}" in found["summary"]
    # Resumed once the hook works: the host comes back, and recover has nothing more to say.
    broken.unlink()
    done = run_campaign(f, journal, resume=rep.run_id)
    assert done.ok and f.services["c3"].enabled
    assert not [r for r in recovery.recover(f, journal) if r["run_id"] == rep.run_id]


def test_a_stop_tagged_server_deleted_during_the_hook_is_gone_and_the_host_returns(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    f.tag("d0", "stop")
    real = subprocess.Popen

    def popen(cmd, *a, env=None, **kw):
        if env and env.get("NOVAMOVE_HOST") == "c3":
            del f.servers["d0"]                 # its owner deletes it while its host is serviced
        return real(cmd, *a, env=env, **kw)
    monkeypatch.setattr(subprocess, "Popen", popen)
    rep = run_campaign(f, journal, ["c3"], options=opts())
    assert rep.ok, rep.summary
    assert f.services["c3"].enabled
    assert ("start", "d0") not in f.actions


def test_a_stop_nova_refuses_fails_that_host_with_novas_reason_and_the_campaign_goes_on(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "j.sqlite")
    f = fleet_with_servers()
    f.tag("d0", "stop")

    def refused(sid):
        raise errors.PreconditionFailed(f"stop server {sid}: conflict (409): Instance d0 is locked")
    monkeypatch.setattr(f, "stop_server", refused)
    rep = run_campaign(f, journal, ["c3", "c2"], options=opts(order="given", max_failed_hosts=2))
    by = {r.host: r for r in rep.results}
    assert by["c3"].outcome == "failed" and "is locked" in by["c3"].detail
    assert by["c2"].outcome == "done"                     # one bad server never sinks a campaign
    assert not f.services["c3"].enabled and "FAILED stop" in f.services["c3"].disabled_reason
    assert rep.exit_code == errors.EXIT_FAILED


def test_a_hook_that_ended_unreaped_is_not_running(tmp_path):
    """A zombie (exited, its parent killed, nobody reaped it) is an ended hook."""
    import os
    import time
    from novamove.engine.journal import pid_alive, run_alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:          # exited, not reaped yet: a zombie
        state = open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.05)
    assert state == "Z"
    token = process_token(child.pid)
    assert not pid_alive(child.pid) and not run_alive({"pid": child.pid, "process": token})
    child.wait()
    assert os.getpid() and pid_alive(os.getpid())
