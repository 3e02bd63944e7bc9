"""NOVAMOVE_FAULT and the journal's one way to change the cloud (journal.change)."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.engine import faults
from novamove.engine.journal import Journal
from test_migrate_engine import FakeCloud, run  # noqa: F401  (fixtures below)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


@pytest.fixture(autouse=True)
def _fresh_counts(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    faults.reset()
    yield
    faults.reset()


def test_change_writes_the_intent_first_then_done_or_failed(journal):
    journal.start_run("r1", "migrate")
    with journal.change("r1", "service.disable", "c1", service_id="s1") as change:
        assert journal.events("r1")[0].state == "intent"
        change.record(request_id="req-1")
    ev = journal.events("r1")[0]
    assert ev.state == "done" and ev.data == {"service_id": "s1", "request_id": "req-1"}
    with pytest.raises(errors.NovamoveError):
        with journal.change("r1", "service.enable", "c1"):
            raise errors.NovamoveError("HTTP 500")
    ev = journal.events("r1")[1]
    assert ev.state == "failed" and "HTTP 500" in ev.data["error"]
    with journal.change("r1", "drain.move", "vm", keep_open=True):
        pass
    assert journal.events("r1")[2].state == "intent"


@pytest.mark.parametrize("text,match", [
    ("service.enable", "is not KIND"),
    ("service.enable:during:kill", "is not KIND"),
    ("service.enable:before:explode", "is not KIND"),
    ("service.enable:before:kill:0", "at least 1"),
])
def test_a_malformed_fault_is_a_usage_error(monkeypatch, text, match):
    with pytest.raises(errors.UsageError, match=match):
        faults.parse(text)


def test_error_and_timeout_are_raised_where_named(monkeypatch, journal):
    journal.start_run("r1", "migrate")
    monkeypatch.setenv("NOVAMOVE_FAULT", "service.disable:before:error,service.enable:after:timeout:2")
    applied = []
    with pytest.raises(errors.NovamoveError, match="injected fault service.disable before"):
        with journal.change("r1", "service.disable", "c1"):
            applied.append("disable")
    assert applied == []                                  # before: the call never ran
    with journal.change("r1", "service.enable", "c1"):   # 1st enable: not named
        applied.append("enable-1")
    with pytest.raises(errors.Unreachable, match="timed out"):
        with journal.change("r1", "service.enable", "c1"):
            applied.append("enable-2")
    assert applied == ["enable-1", "enable-2"]            # after: the call was applied
    assert [e.state for e in journal.events("r1")] == ["failed", "done", "failed"]


def test_a_migrate_request_that_timed_out_after_nova_took_it_is_followed_not_failed(monkeypatch, journal):
    cloud = FakeCloud()
    cloud.boot("vm1")
    monkeypatch.setenv("NOVAMOVE_FAULT", "server.migrate:after:timeout")
    result = run(cloud, journal, "vm1", "compute2", mode="live")
    assert result.ok and cloud.servers[cloud.find_servers("vm1")[0].id].host == "compute2"
    assert sum(c[0] == "live_migrate_server" for c in cloud.calls) == 1    # never sent twice


def test_a_migrate_request_that_timed_out_before_reaching_nova_is_a_failure_without_guessing(monkeypatch, journal):
    cloud = FakeCloud()
    cloud.boot("vm1")
    monkeypatch.setenv("NOVAMOVE_FAULT", "server.migrate:before:timeout")
    with pytest.raises(errors.MoveFailed, match="Nova did not start it"):
        run(cloud, journal, "vm1", "compute2", mode="live")
    assert not any(c[0] == "live_migrate_server" for c in cloud.calls)
    assert journal.runs()[0]["status"] == "failed"


def test_isolate_with_a_failed_re_enable_is_finished_by_recover(monkeypatch, journal):
    from novamove.engine import recover as recovery
    cloud = FakeCloud()
    cloud.boot("vm1")
    before = {h: s.status for h, s in cloud.services.items()}
    monkeypatch.setenv("NOVAMOVE_FAULT", "service.enable:before:error")
    monkeypatch.setattr("novamove.retry.PATIENCE", 0.0, raising=False)
    with pytest.raises(errors.NovamoveError):
        run(cloud, journal, "vm1", "compute2", strategy="isolate", mode="live")
    assert any(s.status == "disabled" for s in cloud.services.values())
    assert journal.runs()[0]["status"] == "failed"          # "finished", yet something is left
    monkeypatch.delenv("NOVAMOVE_FAULT")
    reports = recovery.recover(cloud, journal)
    assert reports and {h: s.status for h, s in cloud.services.items()} == before
    # The live move Nova accepted goes on; a later recover finds it settled and closes the run.
    for _ in range(5):
        if recovery.recover(cloud, journal) == []:
            break
    assert recovery.recover(cloud, journal) == []


class StuckScheduler(FakeCloud):
    """A scheduler that decides nothing while the isolation window is open, then (the other
    computes enabled again) picks the first host it likes, not the target."""

    def __init__(self):
        super().__init__()
        self.window_closed = False

    def enable_service(self, service):
        self.window_closed = True
        return super().enable_service(service)

    def _schedule(self, mig):
        if self.window_closed:
            super()._schedule(mig)

    def revert_resize(self, sid):
        super().revert_resize(sid)
        mig = self._active(sid) if hasattr(self, "_active") else None
        server = self.servers[sid]
        self.servers[sid] = server.replace(host=mig["source"] if mig else "compute1",
                                           status=mig["original"] if mig else "ACTIVE", task_state=None)
        if mig:
            mig["status"] = "reverted"


def test_the_isolation_window_closes_at_its_own_deadline_and_a_wrong_host_cold_move_is_reverted(journal):
    cloud = StuckScheduler()
    cloud.boot("vm1")
    before = {h: (s.status, s.disabled_reason) for h, s in cloud.services.items()}
    result = run(cloud, journal, "vm1", "compute3", strategy="isolate", mode="cold", schedule_timeout=0.3,
                 timeout=600)
    assert cloud.window_closed                                     # long before --timeout
    assert {h: (s.status, s.disabled_reason) for h, s in cloud.services.items()} == before
    assert not result.ok and "not on compute3" in result.error and "reverted" in result.error
    assert cloud.servers[result.server_id].host == "compute1"
    kinds = [e.kind for e in journal.events(result.run_id)]
    assert "migration.schedule_timeout" in kinds and "server.revert" in kinds


def test_a_reused_pid_does_not_keep_a_dead_run_running(journal):
    import os
    from novamove.engine.journal import process_token, run_alive
    journal.start_run("r1", "migrate")
    run = journal.get_run("r1")
    assert run_alive(run) and run["process"] == process_token(os.getpid())
    # The same pid, but another process (after a reboot): not this run's. Another boot id may
    # also be another machine sharing the journal: the run's lease decides (docs/journal.md).
    import time
    assert not run_alive(dict(run, process="another-boot:%d:1" % os.getpid(), lease_until=time.time() - 1))
    assert run_alive(dict(run, process="another-boot:%d:1" % os.getpid(), lease_until=time.time() + 30))
    assert run_alive(dict(run, process=None))       # a journal from before: the pid decides


def test_two_isolate_runs_listing_at_the_same_moment_both_back_off_cleanly(journal):
    import dataclasses
    from novamove.engine.tags import tagged_reason
    cloud = FakeCloud()
    cloud.boot("vm1")
    before = {h: (s.status, s.disabled_reason) for h, s in cloud.services.items()}
    real = cloud.disable_service

    def rival_too(service, reason):
        out = real(service, reason)
        # The rival run (it listed at the same moment) isolates compute2: it disables our target.
        cloud.services["compute3"] = dataclasses.replace(cloud.services["compute3"], status="disabled",
                                                         disabled_reason=tagged_reason("rival0000001", None))
        return out
    cloud.disable_service = rival_too
    with pytest.raises(errors.PreconditionFailed, match="rival0000001"):
        run(cloud, journal, "vm1", "compute3", strategy="isolate", mode="live")
    assert not any(c[0] == "live_migrate_server" for c in cloud.calls)   # nothing was moved
    # Ours restored; the rival's tag is the rival's to remove.
    assert cloud.services["compute1"].status == "enabled"
    assert cloud.services["compute2"].status == before["compute2"][0]


def test_a_compute_disabled_by_someone_between_listing_and_writing_keeps_their_reason(journal):
    import dataclasses
    cloud = FakeCloud()
    cloud.boot("vm1")
    real = cloud.compute_hosts

    def then_someone_disables(with_resources=True):
        hosts = real(with_resources)
        cloud.services["compute2"] = dataclasses.replace(cloud.services["compute2"], status="disabled",
                                                         disabled_reason="ops: bad DIMM")
        return hosts
    cloud.compute_hosts = then_someone_disables
    result = run(cloud, journal, "vm1", "compute3", strategy="isolate", mode="live")
    assert result.ok
    assert cloud.services["compute2"].disabled_reason == "ops: bad DIMM"
    assert cloud.services["compute2"].status == "disabled"


def test_a_fault_that_fires_is_logged_before_it_acts(tmp_path, monkeypatch):
    from novamove.engine import faults as f
    log = tmp_path / "faults.log"
    monkeypatch.setenv("NOVAMOVE_FAULT", "service.enable:before:error")
    monkeypatch.setenv("NOVAMOVE_FAULT_LOG", str(log))
    f.reset()
    f.hit("service.disable", "before")                  # not named: nothing happens, nothing logged
    assert not log.exists()
    with pytest.raises(Exception):
        f.hit("service.enable", "before")
    assert log.read_text().startswith("service.enable:before:error")


def test_cloud_verbs_reads_included_can_be_faulted(monkeypatch):
    from novamove import errors as errs
    from novamove.engine import faults as f

    class Cloud:
        cloud_name = "x"

        def list_compute_services(self):
            return ["svc"]
    plain = Cloud()
    monkeypatch.delenv("NOVAMOVE_FAULT", raising=False)
    assert f.faulty(plain) is plain                     # unset: the adapter itself
    monkeypatch.setenv("NOVAMOVE_FAULT", "cloud.list_compute_services:before:timeout:2")
    f.reset()
    cloud = f.faulty(plain)
    assert cloud.cloud_name == "x" and cloud.list_compute_services() == ["svc"]
    with pytest.raises(errs.Unreachable, match="injected fault"):
        cloud.list_compute_services()
    assert cloud.list_compute_services() == ["svc"]


def test_an_evacuation_rides_out_a_read_timeout(tmp_path, monkeypatch):
    from novamove.engine import faults as f
    from novamove.engine.evacuate import evacuate
    from novamove.engine.journal import Journal
    from test_evacuate import failed_host_cloud, fast, assert_clean
    monkeypatch.setenv("NOVAMOVE_FAULT", "cloud.list_evacuations:before:timeout:2,cloud.get_server:after:timeout:1")
    f.reset()
    nova = failed_host_cloud()
    journal = Journal(tmp_path / "j.sqlite")
    from novamove.retry import patient_reads
    rep = evacuate(patient_reads(f.faulty(nova)), "c3", journal=journal, fenced=True, **fast())
    monkeypatch.delenv("NOVAMOVE_FAULT")
    calm = evacuate(failed_host_cloud(), "c3", journal=Journal(tmp_path / "calm.sqlite"), fenced=True, **fast())
    # The same outcome as without the faults: every server the calm run evacuated, evacuated.
    assert sorted((r.server_name, r.result) for r in rep.results) == \
        sorted((r.server_name, r.result) for r in calm.results)
    assert rep.count("evacuated") == calm.count("evacuated") > 0
    assert_clean(nova, journal)
