"""The move engine and strategies against an in-memory Nova (FakeCloud): pure logic, no network.

FakeCloud implements the adapter's verbs and advances each migration one state per poll, the
way Nova's conductor/compute do: scheduling picks the first enabled, up compute with room
(or the named host), so an isolate run that left another compute enabled would be caught.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import stat

import pytest

from novamove import errors
from novamove.engine import recover as recovery
from novamove.engine.single import mover
from novamove.engine.journal import Journal
from novamove.model import Flavor, Migration, Resources, Server, Service, Host
from novamove.engine.tags import reason_run_id, tagged_reason

SMALL = Flavor("m1.small", 1, 512, 1)


class Counter:
    count = 0


class FakeCloud:
    cloud_name = "fake"

    def __init__(self, computes=("compute1", "compute2", "compute3"), microversion=(2, 100)):
        self.mv = microversion
        self.requests = Counter()
        self.services = {h: Service(id=f"svc-{h}", host=h) for h in computes}
        self.capacity = {h: Resources(8, 8192, 80) for h in computes}
        self.servers: dict[str, Server] = {}
        self.migrations: list[dict] = []
        self.ids = itertools.count(1)
        self.calls: list[tuple] = []
        self.live_polls = 2           # polls a live migration stays "running"
        self.fail_live = None         # reason string: the live migration fails
        self.no_valid_host = False
        self.interrupt_on = None      # raise KeyboardInterrupt when this verb is called
        self.faults: dict[str, str] = {}

    # -- plumbing
    @property
    def microversion(self):
        return f"{self.mv[0]}.{self.mv[1]}"

    def supports(self, v):
        major, minor = v.split(".")
        return (int(major), int(minor)) <= self.mv

    def capped(self, v):
        return False                  # no user ceiling here (tests/unit/test_migrate_cap.py has them)

    def _hit(self, verb, *args):
        self.requests.count += 1
        self.calls.append((verb,) + args)
        if self.interrupt_on == verb:
            self.interrupt_on = None
            raise KeyboardInterrupt

    def boot(self, name, host="compute1", status="ACTIVE", flavor=SMALL):
        sid = f"00000000-0000-0000-0000-{next(self.ids):012d}"
        self.servers[sid] = Server(id=sid, name=name, status=status, host=host,
                                   hypervisor_hostname=f"{host}.fake.local", flavor=flavor,
                                   power_state=1 if status == "ACTIVE" else 4, project_id="p")
        return self.servers[sid]

    # -- servers
    def get_server(self, sid):
        self._hit("get_server", sid)
        self._tick()
        if sid not in self.servers:
            raise errors.NotFound(f"server {sid}")
        return self.servers[sid]

    def find_servers(self, ref):
        self._hit("find_servers", ref)
        return [s for s in self.servers.values() if s.id == ref or s.name == ref]

    def server_fault(self, sid, since=None):
        self._hit("server_fault", sid)
        return self.faults.get(sid)

    # -- services and hosts
    def list_compute_services(self):
        self._hit("list_compute_services")
        return list(self.services.values())

    def disable_service(self, service, reason):
        self._hit("disable_service", service.host)
        self.services[service.host] = dataclasses.replace(self.services[service.host], status="disabled",
                                                          disabled_reason=reason)
        return self.services[service.host]

    def enable_service(self, service):
        self._hit("enable_service", service.host)
        self.services[service.host] = dataclasses.replace(self.services[service.host], status="enabled",
                                                          disabled_reason=None)
        return self.services[service.host]

    def _used(self, host):
        used = Resources()
        for s in self.servers.values():
            if s.host == host and s.flavor:
                used = used + s.flavor.resources
        return used

    def compute_hosts(self, with_resources=True):
        self._hit("compute_hosts")
        return [Host(name=h, service=s, hypervisor_hostname=f"{h}.fake.local", capacity=self.capacity[h],
                     used=self._used(h)) for h, s in self.services.items()]

    def host_resources(self, node):
        self._hit("host_resources", node)
        host = node.split(".")[0]
        return self.capacity[host], self._used(host), Resources(8, 8192, 80)

    # -- moving
    def _new_migration(self, server, host, kind):
        mig = {"id": str(next(self.ids)), "server": server.id, "source": server.host, "dest": None,
               "wanted": host, "status": "accepted" if kind == "live-migration" else "pre-migrating",
               "type": kind, "polls": 0, "original": server.status, "enabled_at_schedule": None}
        self.migrations.append(mig)
        return mig

    def migrate_server(self, sid, host=None):
        self._hit("migrate_server", sid, host)
        if host and not self.supports("2.56"):
            raise errors.PreconditionFailed("needs 2.56")
        server = self.servers[sid]
        self._new_migration(server, host, "migration")
        self.servers[sid] = server.replace(task_state="resize_prep")

    def live_migrate_server(self, sid, host=None):
        self._hit("live_migrate_server", sid, host)
        server = self.servers[sid]
        self._new_migration(server, host, "live-migration")
        self.servers[sid] = server.replace(task_state="migrating")

    def confirm_resize(self, sid):
        self._hit("confirm_resize", sid)
        mig = self._active(sid)
        mig["status"] = "confirming"

    def revert_resize(self, sid):
        self._hit("revert_resize", sid)

    def abort_migration(self, sid, mid):
        self._hit("abort_migration", sid, mid)
        mig = next(m for m in self.migrations if m["id"] == mid)
        mig["status"] = "cancelled"
        self.servers[sid] = self.servers[sid].replace(task_state=None)

    def force_complete_migration(self, sid, mid):
        self._hit("force_complete_migration", sid, mid)
        next(m for m in self.migrations if m["id"] == mid)["polls"] = 10 ** 6

    def _active(self, sid):
        return [m for m in self.migrations if m["server"] == sid][-1]

    def _schedule(self, mig):
        server = self.servers[mig["server"]]
        enabled = [h for h, s in self.services.items() if s.enabled and s.up]
        mig["enabled_at_schedule"] = enabled
        need = server.flavor.resources
        candidates = [h for h in enabled if h != server.host
                      and (self.capacity[h] - self._used(h)).fits(need)]
        if mig["wanted"]:
            candidates = [h for h in candidates if h == mig["wanted"]]
        if self.no_valid_host or not candidates:
            mig["status"] = "error"
            self.faults[server.id] = "No valid host was found."
            self.servers[server.id] = server.replace(task_state=None)
            return
        mig["dest"] = candidates[0]

    def _tick(self):
        """Advance every unfinished migration one step (called on each poll)."""
        for mig in self.migrations:
            sid = mig["server"]
            server = self.servers[sid]
            status = mig["status"]
            if status in ("error", "failed", "cancelled", "completed", "confirmed", "finished"):
                continue
            if mig["dest"] is None:
                self._schedule(mig)
                continue
            mig["polls"] += 1
            if mig["type"] == "live-migration":
                if self.fail_live:
                    # A failure that raises (pre-checks, pre_live_migration) marks the record
                    # "error" and writes a reason; "failed" is the hypervisor's rollback, which
                    # writes none (lifecycle.no_reason_coming).
                    mig["status"] = "error"
                    self.faults[sid] = self.fail_live
                    self.servers[sid] = server.replace(task_state=None)
                elif mig["polls"] <= self.live_polls:
                    mig["status"] = "running"
                else:
                    mig["status"] = "completed"
                    self.servers[sid] = server.replace(host=mig["dest"], task_state=None,
                                                       hypervisor_hostname=f"{mig['dest']}.fake.local")
            else:
                if status == "pre-migrating":
                    mig["status"] = "migrating"
                elif status == "migrating":
                    mig["status"] = "finished"
                    self.servers[sid] = server.replace(host=mig["dest"], status="VERIFY_RESIZE",
                                                       task_state=None)
                elif status == "confirming":
                    mig["status"] = "confirmed"
                    self.servers[sid] = server.replace(status=mig["original"])

    def _as_model(self, mig):
        running = mig["status"] == "running"
        return Migration(id=mig["id"], server_id=mig["server"], source_host=mig["source"],
                         dest_host=mig["dest"], status=mig["status"], migration_type=mig["type"],
                         memory_total_bytes=1000 if running else None,
                         memory_remaining_bytes=(1000 - 400 * mig["polls"]) if running else None)

    def list_migrations(self, server_id=None, **_):
        self._hit("list_migrations", server_id)
        self._tick()
        rows = [self._as_model(m) for m in self.migrations if server_id in (None, m["server"])]
        return sorted(rows, key=lambda m: int(m.id), reverse=True)

    def list_server_migrations(self, sid):
        self._hit("list_server_migrations", sid)
        return [self._as_model(m) for m in self.migrations
                if m["server"] == sid and m["type"] == "live-migration" and m["status"] == "running"]


@pytest.fixture
def cloud():
    return FakeCloud()


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "state" / "journal.sqlite")


def run(cloud, journal, server, host, **kw):
    kw.setdefault("poll_interval", 0)
    return mover.move(cloud, journal, server, host, **kw)


def no_sleep(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    no_sleep(monkeypatch)


def enabled_map(cloud):
    return {h: (s.status, s.disabled_reason) for h, s in cloud.services.items()}


# ---------------------------------------------------------------------------- native

def test_native_cold_move_lands_confirms_and_reports(cloud, journal):
    vm = cloud.boot("vm1", status="SHUTOFF")
    result = run(cloud, journal, "vm1", "compute3")
    assert result.ok and result.changed
    assert result.summary == "vm1 was migrated from compute1 to compute3 and has a status of SHUTOFF"
    assert (result.mode, result.strategy) == ("cold", "native")
    assert result.before["host"] == "compute1" and result.after["host"] == "compute3"
    assert ("migrate_server", vm.id, "compute3") in cloud.calls
    assert ("confirm_resize", vm.id) in cloud.calls
    assert not any(c[0] == "disable_service" for c in cloud.calls)
    assert journal.runs()[0]["status"] == "ok"
    assert result.to_dict()["summary"] == result.summary


def test_native_live_move_lands(cloud, journal):
    cloud.boot("vm1")
    snaps = []
    result = run(cloud, journal, "vm1", "compute2.fake.local", progress=snaps.append)
    assert result.ok, result.error
    assert result.mode == "live" and result.dest == "compute2"
    assert result.summary.endswith("to compute2 and has a status of ACTIVE")
    assert any(s.memory_remaining_bytes for s in snaps), "live progress bytes reach the callback"


def test_no_confirm_leaves_verify_resize(cloud, journal):
    vm = cloud.boot("vm1", status="SHUTOFF")
    result = run(cloud, journal, vm.id, "compute2", confirm=False)
    assert result.ok and result.after["status"] == "VERIFY_RESIZE"
    assert not any(c[0] == "confirm_resize" for c in cloud.calls)


def test_already_on_target_is_a_noop(cloud, journal):
    cloud.boot("vm1", host="compute2")
    result = run(cloud, journal, "vm1", "compute2")
    assert result.ok and not result.changed
    assert not any(c[0] in ("migrate_server", "live_migrate_server") for c in cloud.calls)
    assert journal.runs() == []


def test_check_mode_changes_nothing(cloud, journal):
    cloud.boot("vm1")
    result = run(cloud, journal, "vm1", "compute2", check_mode=True, strategy="isolate")
    assert result.ok and result.changed and result.check_mode
    assert "would be migrated from compute1 to compute2" in result.summary
    mutating = {"migrate_server", "live_migrate_server", "disable_service", "enable_service", "confirm_resize"}
    assert not any(c[0] in mutating for c in cloud.calls)


def test_auto_mode_refuses_other_states(cloud, journal):
    cloud.boot("vm1", status="SUSPENDED")
    with pytest.raises(errors.PreconditionFailed, match="SUSPENDED"):
        run(cloud, journal, "vm1", "compute2")


def test_live_on_shutoff_is_refused_before_any_change(cloud, journal):
    cloud.boot("vm1", status="SHUTOFF")
    with pytest.raises(errors.PreconditionFailed, match="use --cold"):
        run(cloud, journal, "vm1", "compute2", mode="live")
    assert journal.runs() == []


def test_disabled_and_down_targets_are_refused(cloud, journal):
    cloud.boot("vm1")
    cloud.services["compute2"] = dataclasses.replace(cloud.services["compute2"], status="disabled",
                                                     disabled_reason="maintenance")
    cloud.services["compute3"] = dataclasses.replace(cloud.services["compute3"], state="down")
    with pytest.raises(errors.PreconditionFailed, match="compute2 is disabled \\(maintenance\\)"):
        run(cloud, journal, "vm1", "compute2")
    with pytest.raises(errors.PreconditionFailed, match="compute3 is down"):
        run(cloud, journal, "vm1", "compute3")


def test_unknown_and_ambiguous_inputs(cloud, journal):
    cloud.boot("twin")
    cloud.boot("twin", host="compute2")
    with pytest.raises(errors.Ambiguous, match="2 servers are named 'twin'"):
        run(cloud, journal, "twin", "compute3")
    with pytest.raises(errors.NotFound, match="no server"):
        run(cloud, journal, "ghost", "compute3")
    cloud.boot("vm1")
    with pytest.raises(errors.NotFound, match="no compute host 'compute9'"):
        run(cloud, journal, "vm1", "compute9")


def test_no_capacity_on_target(cloud, journal):
    cloud.boot("big", flavor=Flavor("m1.huge", 16, 512, 1))
    with pytest.raises(errors.NoCapacity, match="vcpus 16 needed"):
        run(cloud, journal, "big", "compute2")


# ---------------------------------------------------------------------------- isolate

def test_isolate_schedules_with_only_target_enabled_and_restores_everything(cloud, journal):
    cloud.services["compute3"] = dataclasses.replace(cloud.services["compute3"], status="disabled",
                                                     disabled_reason="ops: broken disk")
    cloud.services["compute4"] = Service(id="svc-compute4", host="compute4")
    cloud.capacity["compute4"] = Resources(8, 8192, 80)
    before = enabled_map(cloud)
    vm = cloud.boot("vm1")
    result = run(cloud, journal, "vm1", "compute2", strategy="isolate", reason="test")
    assert result.ok, result.error
    assert result.strategy == "isolate"
    mig = cloud.migrations[-1]
    assert mig["enabled_at_schedule"] == ["compute2"]
    assert ("live_migrate_server", vm.id, None) in cloud.calls, "isolate never names the host"
    assert enabled_map(cloud) == before, "every service exactly as before"
    assert sorted(result.disabled_services) == ["compute1", "compute4"]
    # re-enabled right after scheduling, before the move finished
    enable_at = max(i for i, c in enumerate(cloud.calls) if c[0] == "enable_service")
    completed_poll = max(i for i, c in enumerate(cloud.calls) if c[0] == "get_server")
    assert enable_at < completed_poll
    kinds = [(e.kind, e.state) for e in journal.events(result.run_id)]
    assert kinds.count(("service.disable", "done")) == 2 and kinds.count(("service.enable", "done")) == 2


def test_isolate_refuses_while_another_isolation_window_is_open(cloud, journal):
    cloud.services["compute3"] = dataclasses.replace(
        cloud.services["compute3"], status="disabled",
        disabled_reason=tagged_reason("0123456789ab", "isolating the target of a migration"))
    before = enabled_map(cloud)
    cloud.boot("vm1")
    with pytest.raises(errors.PreconditionFailed,
                       match=r"another novamove run \(0123456789ab\) has compute3 disabled"):
        run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert enabled_map(cloud) == before and not any(c[0] == "disable_service" for c in cloud.calls)
    # A drained host (our tag, but a drain's) is maintenance, not an isolation window.
    cloud.services["compute3"] = dataclasses.replace(
        cloud.services["compute3"], disabled_reason=tagged_reason("0123456789ab", "drain: kernel"))
    assert run(cloud, journal, "vm1", "compute2", strategy="isolate").ok


def test_isolate_rides_out_an_api_blip_while_re_enabling(cloud, journal, monkeypatch):
    """A failed re-enable would leave the cloud unschedulable until `recover`: a transient
    error there is retried (enabling is safe to repeat)."""
    monkeypatch.setattr("novamove.retry.time.sleep", lambda s: None)
    before = enabled_map(cloud)
    cloud.boot("vm1")
    real, blips = cloud.enable_service, {"left": 2}

    def flaky_enable(service):
        if blips["left"]:
            blips["left"] -= 1
            raise errors.Unreachable("cannot reach the cloud API (PUT os-services): refused")
        return real(service)
    cloud.enable_service = flaky_enable
    result = run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert result.ok, result.error
    assert blips["left"] == 0 and enabled_map(cloud) == before


def test_auto_uses_isolate_below_2_56_for_cold(journal):
    cloud = FakeCloud(microversion=(2, 53))
    cloud.boot("vm1", status="SHUTOFF")
    result = run(cloud, journal, "vm1", "compute3")
    assert result.ok and result.strategy == "isolate"
    assert cloud.migrations[-1]["enabled_at_schedule"] == ["compute3"]
    assert all(s.enabled for s in cloud.services.values())


def test_native_refused_below_2_56_for_cold(journal):
    cloud = FakeCloud(microversion=(2, 53))
    cloud.boot("vm1", status="SHUTOFF")
    with pytest.raises(errors.PreconditionFailed, match="needs compute API 2.56"):
        run(cloud, journal, "vm1", "compute3", strategy="native")


def test_isolate_restores_services_when_the_migrate_call_fails(cloud, journal):
    cloud.boot("vm1")
    before = enabled_map(cloud)

    def refuse(sid, host=None):
        raise errors.PreconditionFailed("live migration: conflict (409)")
    cloud.live_migrate_server = refuse
    with pytest.raises(errors.MoveFailed, match="Nova refused the live migration of vm1 to compute2: conflict \\(409\\)"):
        run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert enabled_map(cloud) == before
    assert journal.runs()[0]["status"] == "failed"


def test_isolate_restores_services_on_ctrl_c_while_waiting_for_the_scheduler(cloud, journal):
    cloud.boot("vm1")
    before = enabled_map(cloud)
    cloud.interrupt_on = "list_migrations"
    original = cloud.live_migrate_server

    def arm(sid, host=None):
        original(sid, host)
        cloud.interrupt_on = "list_migrations"
    cloud.interrupt_on = None
    cloud.live_migrate_server = arm
    with pytest.raises(errors.Interrupted):
        run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert enabled_map(cloud) == before
    assert journal.runs()[0]["status"] == "interrupted"


def test_isolate_no_valid_host_is_a_failure_with_novas_reason(cloud, journal):
    cloud.boot("vm1")
    cloud.no_valid_host = True
    before = enabled_map(cloud)
    result = run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert not result.ok and result.exit_code == errors.EXIT_FAILED
    assert "No valid host" in result.error
    assert enabled_map(cloud) == before


def test_recover_after_kill_reenables_only_what_the_run_disabled(cloud, journal):
    """Simulate SIGKILL in the middle of isolate: the journal has the intents, nothing re-enabled."""
    vm = cloud.boot("vm1")
    cloud.services["compute3"] = dataclasses.replace(cloud.services["compute3"], status="disabled",
                                                     disabled_reason="ops: keep off")
    run_id = "deadbeef0001"
    journal.start_run(run_id, "migrate", server_id=vm.id, server_name="vm1", source="compute1",
                      dest="compute2", mode="live", strategy="isolate")
    # the process died after disabling compute1 (done) and announcing compute4 (intent only)
    e = journal.intent(run_id, "service.disable", "compute1", service_id="svc-compute1")
    cloud.disable_service(cloud.services["compute1"], tagged_reason(run_id, None))
    journal.done(e)
    journal.intent(run_id, "service.disable", "compute3", service_id="svc-compute3")
    with journal._connect() as db:  # the dead process's pid
        db.execute("UPDATE runs SET pid=? WHERE id=?", (2 ** 22 + 12345, run_id))
    reports = recovery.recover(cloud, journal)
    assert reports[0]["services_enabled"] == ["compute1"]
    assert cloud.services["compute1"].enabled
    assert cloud.services["compute3"].disabled_reason == "ops: keep off", "not ours: untouched"
    assert journal.get_run(run_id)["status"] == "recovered"
    assert recovery.recover(cloud, journal) == []


def test_recover_dry_run_lists_what_it_would_undo_and_changes_nothing(cloud, journal):
    """`recover --dry-run`: the reads of a recover, no write to the cloud or the journal."""
    vm = cloud.boot("vm1")
    run_id = "deadbeef0002"
    journal.start_run(run_id, "migrate", server_id=vm.id, server_name="vm1", source="compute1",
                      dest="compute2", mode="live", strategy="isolate")
    e = journal.intent(run_id, "service.disable", "compute1", service_id="svc-compute1")
    cloud.disable_service(cloud.services["compute1"], tagged_reason(run_id, None))
    journal.done(e)
    cloud.disable_service(cloud.services["compute3"], tagged_reason("0123456789ab", None))  # a lost run
    with journal._connect() as db:
        db.execute("UPDATE runs SET pid=? WHERE id=?", (2 ** 22 + 12345, run_id))
    before_events = len(journal.events(run_id))
    cloud.calls.clear()
    reports = recovery.recover(cloud, journal, dry_run=True)
    writes = [c for c in cloud.calls if not c[0].startswith(("get_", "list_", "find_", "server_fault"))]
    assert writes == [], writes
    assert not cloud.services["compute1"].enabled and not cloud.services["compute3"].enabled
    assert journal.get_run(run_id)["status"] == "running" and len(journal.events(run_id)) == before_events
    assert reports[0]["services_enabled"] == ["compute1"]
    assert "would re-enable compute1" in reports[0]["summary"]
    assert "dry run: nothing changed" in reports[0]["summary"]
    assert "compute3" in reports[1]["summary"] and "--break-lock" in reports[1]["summary"]
    [lock] = recovery.recover(cloud, journal, "0123456789ab", break_lock=True, dry_run=True)
    assert "would re-enable compute3" in lock["summary"] and not cloud.services["compute3"].enabled
    assert [r["id"] for r in journal.runs()] == [run_id], "no run of its own either"
    # the real recover then does what the dry run listed
    assert recovery.recover(cloud, journal)[0]["services_enabled"] == ["compute1"]


# ---------------------------------------------------------------------------- failures and timeouts

def test_live_rollback_is_reported_as_failure(cloud, journal):
    cloud.boot("vm1")
    cloud.fail_live = "compute_live_migration: Migration pre-check error: boom"
    result = run(cloud, journal, "vm1", "compute2")
    assert not result.ok and not result.changed
    assert result.exit_code == errors.EXIT_FAILED
    assert "boom" in result.error and "vm1 is on compute1" in result.error
    assert result.migration_status == "error"
    assert journal.runs()[0]["status"] == "failed"


def test_failure_reason_recorded_late_by_nova_is_still_reported(cloud, journal, monkeypatch):
    """Nova marks the migration failed before it records the fault: a reason that appears on
    a later try is reported."""
    no_sleep(monkeypatch)
    cloud.boot("vm1")
    cloud.fail_live = "compute_live_migration: late reason"
    real, tries = cloud.server_fault, []

    def late(sid, since=None):
        tries.append(sid)
        return real(sid, since) if len(tries) >= 3 else None
    cloud.server_fault = late
    result = run(cloud, journal, "vm1", "compute2")
    assert not result.ok and "late reason" in result.error and len(tries) == 3


def test_live_timeout_aborts(cloud, journal, monkeypatch):
    cloud.boot("vm1")
    cloud.live_polls = 10 ** 6
    clock = itertools.count(0, 5.0)
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    result = run(cloud, journal, "vm1", "compute2", timeout=30, on_timeout="abort")
    assert not result.ok and result.exit_code == errors.EXIT_TIMEOUT
    assert "aborted" in result.error and result.migration_status == "cancelled"
    assert any(c[0] == "abort_migration" for c in cloud.calls)


def test_live_timeout_force_complete_lands(cloud, journal, monkeypatch):
    cloud.boot("vm1")
    cloud.live_polls = 10 ** 6
    clock = itertools.count(0, 5.0)
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    result = run(cloud, journal, "vm1", "compute2", timeout=30, on_timeout="force-complete")
    assert result.ok, result.error
    assert any(c[0] == "force_complete_migration" for c in cloud.calls)


def test_live_timeout_leave(cloud, journal, monkeypatch):
    cloud.boot("vm1")
    cloud.live_polls = 10 ** 6
    clock = itertools.count(0, 5.0)
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    result = run(cloud, journal, "vm1", "compute2", timeout=30, on_timeout="leave")
    assert not result.ok and "left running" in result.error
    assert not any(c[0] in ("abort_migration", "force_complete_migration") for c in cloud.calls)


def test_no_wait_returns_once_scheduled(cloud, journal):
    cloud.boot("vm1")
    result = run(cloud, journal, "vm1", "compute3", wait=False)
    assert result.ok and result.migration_id
    assert "is being migrated from compute1 to compute3" in result.summary


def test_requests_per_move_do_not_grow_with_computes(journal):
    counts = {}
    for n in (3, 8):
        cloud = FakeCloud(computes=[f"compute{i}" for i in range(1, n + 1)])
        cloud.boot("vm1")
        counts[n] = run(cloud, journal, "vm1", "compute2").api_requests
    assert counts[3] == counts[8]


# ---------------------------------------------------------------------------- journal

def test_journal_file_is_private_and_records_runs(tmp_path):
    j = Journal(tmp_path / "deep" / "j.sqlite")
    assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600
    j.start_run("r1", "migrate", server_id="s", source="a", dest="b")
    e = j.intent("r1", "service.disable", "a", service_id="x")
    j.done(e, extra=1)
    assert j.events("r1")[0].state == "done" and j.events("r1")[0].data == {"service_id": "x", "extra": 1}
    assert [r["id"] for r in j.unfinished_runs()] == ["r1"]
    j.finish_run("r1", "ok", summary="moved")
    assert j.unfinished_runs() == [] and j.last_move("s")["source"] == "a"


def test_reason_tag_round_trip():
    assert reason_run_id(tagged_reason("abc123", "maint")) == "abc123"
    assert reason_run_id("ops: something") is None
    assert reason_run_id(None) is None
    assert len(tagged_reason("r", "x" * 400)) == 255


def test_sigterm_while_isolated_restores_services_and_journals_interrupted(cloud, journal):
    import signal
    cloud.boot("vm1")
    before = enabled_map(cloud)
    original = cloud.live_migrate_server

    def then_sigterm(sid, host=None):
        original(sid, host)
        os.kill(os.getpid(), signal.SIGTERM)
    cloud.live_migrate_server = then_sigterm
    with pytest.raises(errors.Interrupted):
        run(cloud, journal, "vm1", "compute2", strategy="isolate")
    assert enabled_map(cloud) == before
    assert journal.runs()[0]["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_recover_leaves_drain_runs_to_the_drain(cloud, journal):
    journal.start_run("drain00001", "drain", source="compute1")
    reports = recovery.recover(cloud, journal)
    assert "novamove drain compute1" in reports[0]["summary"]
    assert journal.get_run("drain00001")["status"] == "running"
    # It only looked (at the computes, for tags left behind); it changed nothing.
    assert [c[0] for c in cloud.calls] == ["list_compute_services"]
