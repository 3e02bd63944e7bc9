"""The doctor's verdicts on synthetic snapshots (pure: no cloud, no clock but the snapshot's).

Each drift class is detected from the drift that causes it; healthy work, in flight or just
ended during the scan, is never a finding; thresholds hold; the finding keys are stable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from novamove import errors
from novamove.engine import tags
from novamove.engine.doctor import CLASSES, Options, Snapshot, detect, safe_classes, unknown_classes
from novamove.engine.doctor.findings import Finding
from novamove.engine.doctor.scan import run_states
from novamove.model import Migration, ResourceProvider, ServerState, Service

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
R = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
HOUR = 3600


def ago(seconds: float) -> str:            # servers' `updated`: ...Z
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def nova_ago(seconds: float) -> str:       # migrations and services: naive, microseconds, UTC
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")


class World:
    """Three computes c0..c2 (nodes c0.fake.., providers rp-c0..), everything settled."""

    def __init__(self, hosts: int = 3):
        self.services = [Service(id=f"u{i}", host=f"c{i}", updated_at=nova_ago(5)) for i in range(hosts)]
        self.services_again = None
        self.hypervisors = [{"id": f"rp-c{i}", "hypervisor_hostname": f"c{i}.fake", "host": f"c{i}",
                             "state": "up", "status": "enabled"} for i in range(hosts)]
        self.providers = [ResourceProvider(f"rp-c{i}", f"c{i}.fake", 1, f"rp-c{i}") for i in range(hosts)]
        self.allocations: dict[str, dict] = {p.uuid: {} for p in self.providers}
        self.servers: list[ServerState] = []
        self.migrations: list[Migration] = []
        self.rechecked: dict = {}
        self.runs: dict = {}
        self.forced_by_us: frozenset = frozenset()

    def server(self, sid: str, host: str = "c0", *, alloc: bool = True, updated: float | None = 2 * HOUR,
               **kw) -> ServerState:
        fields = dict(id=sid, name=f"vm-{sid}", status="ACTIVE", host=host, node=f"{host}.fake",
                      vm_state="active", task_state=None, power_state=1,
                      updated=None if updated is None else ago(updated))
        fields.update(kw)
        s = ServerState(**fields)
        self.servers.append(s)
        if alloc:
            self.alloc(sid, host)
        return s

    def migration(self, mid: str, sid: str, status: str, src: str = "c0", dst: str = "c1", *,
                  kind: str = "live-migration", age: float = 2 * HOUR, created: float | None = None,
                  uuid: str | None = "auto") -> Migration:
        m = Migration(id=mid, server_id=sid, source_host=src, dest_host=dst, status=status, migration_type=kind,
                      uuid=f"mig-{mid}" if uuid == "auto" else uuid,
                      created_at=nova_ago(created if created is not None else age + 60), updated_at=nova_ago(age))
        self.migrations.append(m)
        return m

    def alloc(self, consumer: str, host_or_rp: str, resources=R) -> None:
        rp = host_or_rp if host_or_rp.startswith("rp-") else f"rp-{host_or_rp}"
        self.allocations.setdefault(rp, {})[consumer] = dict(resources)

    def unalloc(self, consumer: str) -> None:
        for held in self.allocations.values():
            held.pop(consumer, None)

    def snap(self) -> Snapshot:
        return Snapshot(now=NOW, servers=list(self.servers), migrations=list(self.migrations),
                        services=list(self.services), hypervisors=self.hypervisors, providers=list(self.providers),
                        allocations=self.allocations, services_again=self.services_again,
                        rechecked=self.rechecked, runs=self.runs, forced_by_us=self.forced_by_us)

    def findings(self, **opts) -> list[Finding]:
        return detect(self.snap(), Options(**opts))


def classes(found: list[Finding]) -> list[str]:
    return sorted(f.klass for f in found)


def one(found: list[Finding], klass: str) -> Finding:
    hits = [f for f in found if f.klass == klass]
    assert len(hits) == 1, (klass, [f.to_dict() for f in found])
    return hits[0]


def healthy_world() -> World:
    w = World()
    for i in range(6):
        w.server(f"s{i}", f"c{i % 3}")
    w.migration("1", "s1", "completed", "c0", "c1")          # an old move that went well
    w.migration("2", "s2", "confirmed", "c1", "c2", kind="migration")
    w.migration("3", "s0", "reverted", "c0", "c1", kind="resize")
    return w


# ---------------------------------------------------------------------- healthy work

def test_a_healthy_cloud_has_no_finding():
    assert healthy_world().findings() == []


def test_moves_in_flight_are_not_findings():
    w = healthy_world()
    # live: the server consumer holds the destination, the migration's consumer the source
    # (the server's `updated` stays where the move began, hours ago for a long one)
    w.server("live", "c0", alloc=False, task_state="migrating", status="MIGRATING", updated=5 * HOUR)
    m = w.migration("10", "live", "running", "c0", "c1", age=2, created=5 * HOUR)   # long, but progressing
    w.alloc("live", "c1")
    w.alloc(m.uuid, "c0")
    # cold: the same split while it copies
    w.server("cold", "c1", alloc=False, task_state="resize_migrating", status="RESIZE", updated=4)
    m = w.migration("11", "cold", "migrating", "c1", "c2", kind="migration", age=4)
    w.alloc("cold", "c2")
    w.alloc(m.uuid, "c1")
    # a resize waiting for its confirm, younger than --older-than
    w.server("wait", "c2", alloc=False, status="VERIFY_RESIZE", vm_state="resized", updated=60)
    m = w.migration("12", "wait", "finished", "c0", "c2", kind="resize", age=60)
    w.alloc("wait", "c2")
    w.alloc(m.uuid, "c0")
    # an evacuation rebuilding on its destination
    w.server("evac", "c1", task_state="rebuild_spawning", status="REBUILD", updated=10)
    w.migration("13", "evac", "pre-migrating", "c2", "c1", kind="evacuation", age=10)
    # queued live migration, no record yet updated since
    w.server("queued", "c2", task_state="migrating", status="MIGRATING", updated=1)
    w.migration("14", "queued", "queued", "c2", "c0", age=1)
    # queued for an hour behind others (max_concurrent_live_migrations): still healthy
    w.server("behind", "c2", task_state="migrating", status="MIGRATING", updated=HOUR)
    w.migration("15", "behind", "queued", "c2", "c0", age=HOUR)
    assert w.findings() == []


def test_a_move_that_ends_while_the_scan_reads_is_not_drift():
    w = healthy_world()
    # the servers were read while it moved, the migrations after it completed (10 s ago)
    w.server("x", "c0", alloc=False, task_state="migrating", status="MIGRATING", updated=30)
    m = w.migration("20", "x", "completed", "c0", "c1", age=10)
    w.alloc("x", "c1")
    w.alloc(m.uuid, "c0")           # Nova drops it right after the status
    assert w.findings() == []
    assert w.findings(settle=5) != []   # the settle time is what keeps it out


# ---------------------------------------------------------------------- each class

def test_verify_resize_older_than_the_threshold():
    w = healthy_world()
    w.server("vr", "c1", status="VERIFY_RESIZE", vm_state="resized", updated=3 * HOUR)
    w.migration("30", "vr", "finished", "c0", "c1", kind="resize", age=3 * HOUR)
    w.alloc("mig-30", "c0")
    f = one(w.findings(), "verify-resize-forgotten")
    assert (f.server_id, f.host, f.repairable, f.safe) == ("vr", "c1", True, False)
    assert f.fix == "openstack server resize confirm vr" and f.evidence["migration_id"] == "30"
    assert w.findings(older_than=4 * HOUR) == []


def test_older_than_zero_flags_every_verify_resize_and_a_wrong_host_is_not_confirmed():
    w = healthy_world()
    w.server("young", "c1", status="VERIFY_RESIZE", updated=5)
    w.migration("31", "young", "finished", "c0", "c1", kind="resize", age=5)
    w.alloc("mig-31", "c0")
    assert w.findings() == []
    f = one(w.findings(older_than=0), "verify-resize-forgotten")
    assert f.server_id == "young" and f.repairable
    w.server("nodate", "c1", status="VERIFY_RESIZE", updated=None)          # no migration, no date
    assert [f.server_id for f in w.findings(older_than=0)] == ["young", "nodate"] and w.findings() == []
    w2 = healthy_world()
    w2.server("odd", "c0", status="VERIFY_RESIZE", updated=5)          # Nova has it on the source
    w2.migration("32", "odd", "finished", "c0", "c1", kind="resize", age=5)
    f = one(w2.findings(older_than=0), "verify-resize-forgotten")
    assert not f.repairable and "check where" in f.fix


def test_task_state_moving_with_no_migration_in_progress():
    w = healthy_world()
    w.server("st", "c0", task_state="migrating", updated=2 * HOUR)
    w.migration("40", "st", "failed", "c0", "c1", age=2 * HOUR)
    f = one(w.findings(), "task-state-stuck")
    assert f.server_id == "st" and f.repairable and f.fix == "openstack server set --state active st"
    assert "failed" in f.detail


def test_a_stuck_task_state_of_a_stopped_server_is_never_reset_to_active():
    w = healthy_world()
    w.server("off", "c0", task_state="resize_migrating", vm_state="stopped", power_state=4, status="SHUTOFF")
    w.migration("41", "off", "error", "c0", "c1", kind="migration")
    f = one(w.findings(), "task-state-stuck")
    assert not f.repairable and "restarting nova-compute" in f.fix


def test_a_stuck_task_state_without_any_record_or_on_the_wrong_host_is_operator_work():
    w = healthy_world()
    w.server("norec", "c0", task_state="migrating")
    w.server("wrong", "c1", task_state="migrating")
    w.migration("42", "wrong", "failed", "c0", "c1")     # failed: belongs on c0, Nova says c1
    found = [f for f in w.findings() if f.klass == "task-state-stuck"]
    assert sorted(f.server_id for f in found) == ["norec", "wrong"] and not any(f.repairable for f in found)


def test_rebuilding_counts_as_moving_only_after_an_evacuation():
    w = healthy_world()
    w.server("rb", "c0", task_state="rebuilding")          # a rebuild in place
    assert w.findings() == []
    w.server("ev", "c1", task_state="rebuild_spawning")
    w.migration("43", "ev", "done", "c2", "c1", kind="evacuation")
    assert one(w.findings(), "task-state-stuck").server_id == "ev"


def test_a_non_terminal_migration_older_than_the_threshold_while_its_server_is_not_moving():
    w = healthy_world()
    w.server("ms", "c0", alloc=False)
    m = w.migration("50", "ms", "running", "c0", "c1", age=5 * HOUR)
    w.alloc("ms", "c1")
    w.alloc(m.uuid, "c0")
    found = w.findings()
    f = one(found, "migration-stuck")
    assert f.server_id == "ms" and f.evidence["holds_allocations_on"] == ["c0.fake"] and not f.repairable
    assert "UPDATE migrations" in f.fix
    assert "migration-stuck" not in classes(w.findings(older_than=6 * HOUR))


def test_a_live_migration_in_its_post_migration_clean_up_is_not_stuck():
    # The destination cleared the task state 4 s ago; the source's clean-up has not yet set the
    # record `completed` (its last progress update 30 s ago): the move just ended, not drift.
    w = healthy_world()
    w.server("post", "c1", updated=4)
    w.migration("52", "post", "running", "c0", "c1", age=30)
    assert w.findings(older_than=0, settle=10) == []
    assert classes(w.findings(older_than=0, settle=3)) == ["migration-stuck"]


def test_a_finished_migration_whose_server_left_verify_resize_is_stuck():
    w = healthy_world()
    w.server("fin", "c1")
    w.migration("51", "fin", "finished", "c0", "c1", kind="migration")
    assert one(w.findings(), "migration-stuck").evidence["migration_status"] == "finished"


def test_a_server_not_where_its_latest_migration_says():
    w = healthy_world()
    w.server("back", "c0")
    w.migration("60", "back", "completed", "c0", "c1")          # went to c1, Nova says c0
    w.server("away", "c1", alloc=False)
    w.alloc("away", "c1")
    w.migration("61", "away", "failed", "c0", "c1")             # failed, Nova says c1
    found = [f for f in w.findings() if f.klass == "server-not-where-migration-says"]
    assert sorted(f.server_id for f in found) == ["away", "back"]
    assert all(f.repairable is False for f in found)
    w2 = healthy_world()
    w2.server("ok", "c1")
    w2.migration("63", "ok", "completed", "c0", "c1", age=HOUR)  # latest: on its destination
    w2.migration("62", "ok", "reverted", "c0", "c1")          # older (Nova lists newest first)
    assert w2.findings() == []


def test_allocations_held_by_an_ended_migrations_consumer():
    w = healthy_world()
    w.alloc("mig-1", "c0")                          # migration 1 completed two hours ago
    f = one(w.findings(), "migration-allocation-leaked")
    assert (f.server_id, f.repairable, f.safe) == ("s1", True, True)
    assert f.fix == "openstack resource provider allocation delete mig-1" and f.evidence["providers"] == ["c0.fake"]
    w.rechecked["mig-1"] = {}                       # gone when looked at again
    assert w.findings() == []


def test_a_server_allocation_on_another_node_or_none():
    w = healthy_world()
    w.server("else", "c0", alloc=False)
    w.alloc("else", "c2")
    w.server("both", "c1")
    w.alloc("both", "c2")                           # its own node and another
    w.server("none", "c2", alloc=False)
    found = w.findings()
    elsewhere = sorted(f.server_id for f in found if f.klass == "server-allocation-elsewhere")
    assert elsewhere == ["both", "else"]
    f = one(found, "server-allocation-missing")
    assert f.server_id == "none" and "heal_allocations --instance none" in f.fix


def test_nested_and_sharing_providers_are_not_another_node():
    w = healthy_world()
    w.providers.append(ResourceProvider("rp-c0-gpu", "c0.fake_pgpu", 1, "rp-c0", "rp-c0"))
    w.providers.append(ResourceProvider("rp-nfs", "shared-disk", 1, "rp-nfs"))
    w.server("gpu", "c0")
    w.alloc("gpu", "rp-c0-gpu", {"VGPU": 1})
    w.alloc("gpu", "rp-nfs", {"DISK_GB": 10})
    assert w.findings() == []
    w.providers.append(ResourceProvider("rp-c1-gpu", "c1.fake_pgpu", 1, "rp-c1", "rp-c1"))
    w.alloc("gpu", "rp-c1-gpu", {"VGPU": 1})                # a child of another node
    assert one(w.findings(), "server-allocation-elsewhere").evidence["providers"] == ["c0.fake", "c1.fake",
                                                                                       "shared-disk"]
    w.server("only-shared", "c2", alloc=False)
    w.alloc("only-shared", "rp-nfs", {"DISK_GB": 10})
    assert one(w.findings(), "server-allocation-missing").server_id == "only-shared"


def test_an_evacuated_server_keeps_its_failed_hosts_allocation_until_that_host_is_back():
    w = healthy_world()
    w.services[0] = Service(id="u0", host="c0", state="down", forced_down=True, status="disabled",
                            updated_at=nova_ago(HOUR))
    w.unalloc("s0")
    w.unalloc("s3")
    w.server("evacuated", "c1")
    w.alloc("evacuated", "c0")                      # Nova frees it when c0's nova-compute starts
    w.migration("80", "evacuated", "done", "c0", "c1", kind="evacuation")
    w.servers = [s for s in w.servers if s.host != "c0"]
    assert w.findings() == []
    w.services[0] = Service(id="u0", host="c0", status="disabled", updated_at=nova_ago(5))   # back, still held
    assert one(w.findings(), "server-allocation-elsewhere").server_id == "evacuated"


def test_allocations_of_an_unknown_consumer():
    w = healthy_world()
    w.alloc("deleted-server", "c1")
    f = one(w.findings(), "consumer-unknown")
    assert f.evidence["consumer"] == "deleted-server" and f.repairable and not f.safe and f.host == "c1"
    w.rechecked["deleted-server"] = {}             # deleted during the scan: gone on the second look
    assert w.findings() == []


def test_below_compute_259_migration_consumers_cannot_be_told_from_strangers():
    w = World()
    w.server("s0", "c0")
    w.migration("1", "s0", "running", "c0", "c1", uuid=None, age=5)
    w.server("s0b", "c1", task_state="migrating")
    w.alloc("some-migration-consumer", "c0")
    assert "consumer-unknown" not in classes(w.findings())


def test_forced_down_while_reporting_needs_two_reads():
    w = healthy_world()
    w.services[1] = Service(id="u1", host="c1", state="down", forced_down=True, updated_at=nova_ago(40))
    assert "compute-forced-down-reporting" not in classes(w.findings())            # one read
    w.services_again = [s if s.host != "c1" else Service(id="u1", host="c1", state="down", forced_down=True,
                                                         updated_at=nova_ago(8)) for s in w.services]
    f = one(w.findings(), "compute-forced-down-reporting")
    assert f.host == "c1" and f.evidence["updated_at"] == [nova_ago(40), nova_ago(8)]
    assert not f.repairable                     # nobody here forced it down: not novamove's to clear
    w.forced_by_us = frozenset({"c1"})
    assert one(w.findings(), "compute-forced-down-reporting").repairable
    w.forced_by_us = frozenset()
    assert "compute-down-holding-servers" not in classes(w.findings())
    w.services_again = list(w.services)                                             # it stopped
    assert classes(w.findings()) == ["compute-down-holding-servers"]


def test_a_compute_down_and_enabled_that_still_holds_servers():
    w = healthy_world()
    w.services[2] = Service(id="u2", host="c2", state="down", updated_at=nova_ago(HOUR))
    w.services_again = list(w.services)
    f = one(w.findings(), "compute-down-holding-servers")
    assert f.host == "c2" and f.evidence["servers"] == 2 and "novamove evacuate c2" in f.fix
    w.services[2] = Service(id="u2", host="c2", state="down", status="disabled", updated_at=nova_ago(HOUR))
    w.services_again = list(w.services)
    assert w.findings() == []
    w.services[2] = Service(id="u2", host="c2", state="down", updated_at=nova_ago(HOUR))
    w.services_again = [s if s.host != "c2" else Service(id="u2", host="c2", state="down",
                                                         updated_at=nova_ago(1)) for s in w.services]
    assert w.findings() == []                                                   # it reports again
    empty = World()
    empty.services[0] = Service(id="u0", host="c0", state="down", updated_at=nova_ago(HOUR))
    assert empty.findings() == []


def disabled(w: World, host: str, reason: str) -> None:
    i = next(i for i, s in enumerate(w.services) if s.host == host)
    w.services[i] = Service(id=f"u{i}", host=host, status="disabled", disabled_reason=reason, updated_at=nova_ago(5))


def test_an_isolation_window_left_by_a_run_that_is_over():
    w = healthy_world()
    disabled(w, "c1", tags.tagged_reason("aaaaaaaaaaaa", None))
    f = one(w.findings(), "compute-isolation-left")
    # run unknown here: it may be at work on another machine; recover --break-lock is the way
    assert not f.repairable and not f.safe and "--break-lock" in f.fix
    w.runs["aaaaaaaaaaaa"] = "dead"
    f = one(w.findings(), "compute-isolation-left")
    assert f.safe and f.fix == "openstack compute service set --enable c1 nova-compute"
    w.runs["aaaaaaaaaaaa"] = "alive"
    assert w.findings() == []


def test_drain_tags_live_dead_failed_and_finished():
    w = healthy_world()
    disabled(w, "c1", tags.drain_reason("bbbbbbbbbbbb", "kernel", NOW + timedelta(seconds=60)))
    assert w.findings() == []                                                   # a drain at work
    disabled(w, "c1", tags.drain_reason("bbbbbbbbbbbb", "kernel", NOW - timedelta(seconds=600)))
    f = one(w.findings(), "compute-tag-dead-run")
    # a dead run's tag: re-enabled only when the class is named (it ends that drain)
    assert f.repairable and not f.safe and "novamove undrain c1" in f.fix
    w.runs["bbbbbbbbbbbb"] = "alive"                                            # late renewing, but at work
    assert w.findings() == []
    del w.runs["bbbbbbbbbbbb"]
    disabled(w, "c1", tags.drain_reason("bbbbbbbbbbbb", "kernel"))              # finished: no lease
    f = one(w.findings(), "compute-held")
    assert (f.level, f.repairable, f.safe) == ("info", False, False)
    w.runs["bbbbbbbbbbbb"] = "failed"
    assert classes(w.findings()) == ["compute-tag-dead-run"]
    disabled(w, "c2", tags.tagged_reason("cccccccccccc", "evacuate: failed host"))
    assert "novamove unfence c2" in one(w.findings(), "compute-held").fix
    disabled(w, "c0", "disabled by an operator")                                # not ours
    assert len(w.findings()) == 2


def test_a_server_in_error_whose_last_fault_came_from_a_migration():
    w = healthy_world()
    w.server("err", "c0", status="ERROR", vm_state="error", fault_message="Unexpected error",
             fault_created=ago(2 * HOUR))
    w.migration("70", "err", "error", "c0", "c1", age=2 * HOUR - 30, created=2 * HOUR + 60)
    w.server("words", "c1", status="ERROR", vm_state="error", fault_message="Live migration failed: timeout",
             fault_created=ago(10 * HOUR))
    w.migration("71", "words", "failed", "c1", "c2", age=20 * HOUR)
    w.server("other", "c2", status="ERROR", vm_state="error", fault_message="disk full",
             fault_created=ago(HOUR))
    w.migration("72", "other", "completed", "c1", "c2", age=30 * HOUR)        # long before
    w.migration("73", "words", "failed", "c1", "c2", age=20 * HOUR + 5, created=30 * HOUR)
    w.server("wordy", "c2", status="ERROR", vm_state="error", fault_message="could not resize the volume",
             fault_created=ago(HOUR))
    w.migration("74", "wordy", "completed", "c1", "c2", age=30 * HOUR)        # went well, long before
    found = [f for f in w.findings() if f.klass == "server-error-after-migration"]
    assert sorted(f.server_id for f in found) == ["err", "words"]
    assert next(f for f in found if f.server_id == "err").evidence["migration_id"] == "70"


# ---------------------------------------------------------------------- every class, options, keys

def drifted_world() -> World:
    w = healthy_world()
    w.server("vr", "c1", status="VERIFY_RESIZE", updated=3 * HOUR)
    w.migration("30", "vr", "finished", "c0", "c1", kind="resize", age=3 * HOUR)
    w.server("st", "c0", task_state="migrating")
    w.server("ms", "c0")
    w.migration("50", "ms", "running", "c0", "c1", age=5 * HOUR)
    w.server("back", "c0")
    w.migration("60", "back", "completed", "c0", "c1")
    w.alloc("mig-1", "c0")
    w.server("else", "c0", alloc=False)
    w.alloc("else", "c2")
    w.server("none", "c2", alloc=False)
    w.alloc("ghost", "c1")
    w.server("err", "c0", status="ERROR", fault_message="migration failed", fault_created=ago(2 * HOUR))
    w.migration("70", "err", "error", "c0", "c1")
    w.hypervisors.append({"id": "rp-c3", "hypervisor_hostname": "c3.fake", "host": "c3"})
    for host in ("c3", "c4", "c5", "c6", "c7"):
        w.services.append(Service(id=f"u-{host}", host=host, updated_at=nova_ago(5)))
    w.services[3] = Service(id="u-c3", host="c3", forced_down=True, state="down", updated_at=nova_ago(30))
    w.services[4] = Service(id="u-c4", host="c4", state="down", updated_at=nova_ago(HOUR))
    w.server("on-dead", "c4", alloc=False, node=None)
    disabled(w, "c5", tags.tagged_reason("dddddddddddd", None))
    disabled(w, "c6", tags.drain_reason("eeeeeeeeeeee", "x", NOW - timedelta(hours=1)))
    disabled(w, "c7", tags.drain_reason("ffffffffffff", "x"))
    w.services_again = [s if s.host != "c3" else Service(id="u-c3", host="c3", forced_down=True, state="down",
                                                         updated_at=nova_ago(2)) for s in w.services]
    return w


def test_every_class_is_detected_and_every_finding_has_the_stable_keys():
    found = drifted_world().findings()
    assert set(classes(found)) == set(CLASSES)
    for f in found:
        d = f.to_dict()
        assert list(d) == ["class", "server_id", "host", "detail", "evidence", "fix", "repairable", "safe", "level"]
        assert d["class"] in CLASSES and d["detail"] and d["fix"] and (d["server_id"] or d["host"])
        assert not d["safe"] or d["repairable"]


def test_scope_by_host_and_by_server():
    w = drifted_world()
    by_host = w.findings(hosts=frozenset({"c4"}))
    assert classes(by_host) == ["compute-down-holding-servers"]
    by_server = w.findings(servers=frozenset({"vm-back", "st"}))
    assert sorted(f.server_id for f in by_server) == ["back", "st"]


@pytest.mark.parametrize("bad", [-1, float("nan"), "10"])
def test_a_bad_threshold_is_a_usage_error(bad):
    with pytest.raises(errors.UsageError, match="older-than"):
        Options(older_than=bad)


def test_the_class_registry():
    assert safe_classes() == ["migration-allocation-leaked", "compute-isolation-left"]
    assert unknown_classes(["task-state-stuck", "nope"]) == ["nope"]
    assert all(c.explain and c.repair in ("safe", "one-way", "named", "operator", "none") for c in CLASSES.values())
    with pytest.raises(ValueError):
        Finding("no-such-class", "d", "f")
    with pytest.raises(ValueError):
        Finding("compute-held", "d", "f", host="c1", safe=True)


def test_run_states_from_the_journal():
    class Journal:
        rows = {"r1": {"status": "running", "pid": 0}, "r2": {"status": "failed"}, "r3": {"status": "ok"},
                "r4": {"status": "interrupted"}}

        def get_run(self, run_id):
            return self.rows.get(run_id)
    assert run_states(Journal(), ["r1", "r2", "r3", "r4", "r5"]) == {"r1": "dead", "r2": "failed",
                                                                      "r3": "finished", "r4": "dead"}


def test_the_verdicts_do_no_io():
    """detect.py, snapshot.py and findings.py import nothing that reaches a cloud, a file or a clock."""
    import ast
    import novamove.engine.doctor as pkg
    from pathlib import Path
    allowed = {"__future__", "dataclasses", "datetime", "typing", "novamove", "novamove.errors", "novamove.model",
               "novamove.engine", "novamove.engine.doctor.findings", "novamove.engine.doctor.snapshot",
               "novamove.engine.times"}
    for name in ("detect.py", "snapshot.py", "findings.py"):
        tree = ast.parse((Path(pkg.__file__).parent / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= allowed, (name, imported - allowed)
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "novamove.engine"
                 for a in n.names}
        assert names <= {"tags"}, names
        assert "now(" not in (Path(pkg.__file__).parent / name).read_text().replace("cloud_now(", "")
