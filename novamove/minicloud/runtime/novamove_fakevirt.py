"""novamove's own fake virt driver for the minicloud's nova-compute processes.

Nova's FakeDriver with what novamove needs to test against a real control plane:

* a hypervisor hostname that differs from the service host (``compute1.fake.local`` for service
  host ``compute1``), as in real clouds where one is an FQDN and the other a short name;
* a finite, configurable inventory, so "no capacity" and capacity-aware plans are real;
* live migrations and cold migrations that take time, report memory progress on the migration
  record the way the libvirt driver does, and can be aborted or force-completed;
* a host uptime (``get_host_uptime``, what the hypervisor API's ``uptime`` shows) in the format
  of the ``uptime`` command libvirt's driver runs, minutes and all. The fake host "boots" when
  its nova-compute process starts, so a restart of the compute is a reboot of the host; that is
  what a campaign's ``--gate restart`` reads to tell a new process from the old one's heartbeat;
* guests that outlive their nova-compute, as on a real hypervisor: each compute keeps its guests
  in ``<state_path>/fakevirt-guests.json`` (novamove_guestbook.GuestBook, rewritten atomically on
  every change, read back when the driver starts). A stopped or SIGKILLed compute's guests still
  "run", so an unfenced evacuation shows the guest on two hosts, and when that compute starts
  again Nova's own init_host cleanup (_destroy_evacuated_instances) destroys the evacuated ones.

Settings come from environment variables (fixed per compute process) and may be overridden at
run time by a JSON control file, so a test can make migrations slow without restarting computes:

  NOVAMOVE_FAKE_VCPUS, NOVAMOVE_FAKE_MEMORY_MB, NOVAMOVE_FAKE_DISK_GB      inventory
  NOVAMOVE_FAKE_NODE_SUFFIX                  hypervisor hostname suffix (".fake.local")
  NOVAMOVE_FAKE_LIVE_MIGRATION_SECONDS       duration of a live migration (default 0.5)
  NOVAMOVE_FAKE_LIVE_MIGRATION_HOLD          1: a live migration that has copied everything
                                             waits (still "running") until this is 0 again, so
                                             a test can act while a migration surely runs
  NOVAMOVE_FAKE_COLD_MIGRATION_SECONDS       extra time spent in migrate_disk_and_power_off
  NOVAMOVE_FAKE_LIVE_MIGRATION_ROLLBACK      1: every live migration fails at the end and rolls
                                             back to the source, as libvirt does when the
                                             migration job fails (migration status "failed")
  NOVAMOVE_FAKE_COLD_MIGRATION_ROLLBACK      1: every cold migration fails on the source while
                                             copying the disk; Nova puts the server back as it
                                             was (migration status "error", an instance fault)
  NOVAMOVE_FAKE_EVACUATION_SECONDS           time an evacuation spends on the destination
  NOVAMOVE_FAKE_EVACUATION_FAIL              1: every evacuation fails on the destination
  NOVAMOVE_FAKE_PERMIT_POST_COPY             1: force-complete switches to post-copy as if
                                             [libvirt] live_migration_permit_post_copy were set
                                             (that option, set in nova.conf, does the same)
  NOVAMOVE_FAKEVIRT_CONTROL                  path of the JSON control file with the same keys
                                             in lower case without the prefix, e.g.
                                             {"live_migration_seconds": 8}

Per server, metadata ``fakevirt:converge`` makes a live migration not converge, as a busy guest
that dirties memory faster than the link copies it: ``never`` climbs to about half copied and
then stays there, the remaining memory wobbling up and down; ``slow`` crawls at 0.05 % of the
guest's memory a second (1.5 % in 30 s: below novamove's default stall threshold; it would end
after about 33 minutes). Both go on until Nova's force-complete (then, with post-copy permitted, the
record shows libvirt's "running (post-copy)" for a moment before it completes; without, the
guest is "paused" and the copy completes) or abort (the migration ends "cancelled" on the
source).

Per compute, the control file's "providers" key (or NOVAMOVE_FAKE_PROVIDERS, the same JSON) gives
chosen computes extra placement inventory and traits, reported through update_provider_tree as a
real driver reports PCPU or COMPUTE_SECURITY_TPM_2_0, so flavors that need them boot there and
Nova's refusals elsewhere are real:

  {"providers": {"compute2": {"inventory": {"PCPU": 8, "MEMORY_MB": 4096},
                              "traits": ["COMPUTE_SECURITY_TPM_2_0", "CUSTOM_GOLD"]}}}

An inventory entry is a total (or a dict of placement inventory fields); it adds a resource
class or replaces one of VCPU/MEMORY_MB/DISK_GB. Traits are added to the ones Nova sets; traits
this process added earlier and no longer listed are taken off again. Nova pushes the tree to
placement on every claim and every update_available_resource period (60 s), so a change shows
after the next boot or move on that compute, or at once after a restart of its nova-compute.
"""

import json
import os
import time
import uuid

from oslo_log import log as logging

import nova.conf
from nova import context as nova_context
from nova import exception
from nova import objects
from nova.compute import power_state
from nova.virt import fake
from nova.virt import node as virt_node

# Beside this file in the minicloud's pylib (on the services' PYTHONPATH), not in nova.virt.
from novamove_guestbook import GuestBook, guests_path

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

_MEMORY_BYTES_PER_MB = 1024 * 1024
_BOOTED = time.time()       # this nova-compute process started: the fake host's boot


def uptime_text(seconds: float, now: float) -> str:
    """What procps `uptime` prints after `seconds` of uptime (" 13:36:25 up 2 days,  3:04, ...")."""
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    parts.append(f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min")
    clock = time.strftime("%H:%M:%S", time.gmtime(now))
    return f" {clock} up {', '.join(parts)},  0 users,  load average: 0.00, 0.00, 0.00\n"


def _setting(name: str, default: float) -> float:
    path = os.environ.get("NOVAMOVE_FAKEVIRT_CONTROL")
    if path and os.path.exists(path):
        try:
            with open(path) as f:
                control = json.load(f)
            if name in control:
                return float(control[name])
        except (OSError, ValueError) as exc:
            LOG.warning("ignoring unreadable fakevirt control file %s: %s", path, exc)
    return float(os.environ.get("NOVAMOVE_FAKE_" + name.upper(), default))


# -- live migrations that do not converge (server metadata fakevirt:converge) ----------------
CONVERGE_KEY = "fakevirt:converge"
_NEVER_PLATEAU = 0.55   # a "never" migration copies about this much, then the guest dirties it again
_SLOW_RATE = 0.0005     # a "slow" one copies this fraction of the memory a second


def _convergence(instance) -> str:
    """"never", "slow" or "" (converges normally), from the server's metadata."""
    try:
        value = (instance.metadata or {}).get(CONVERGE_KEY, "")
    except Exception:  # metadata not loaded on this instance object: converge normally
        return ""
    return value if value in ("never", "slow") else ""


def _copied(converge: str, elapsed: float, duration: float) -> float:
    """The fraction copied after `elapsed` seconds (1.0: done)."""
    duration = max(duration, 0.01)
    if converge == "slow":
        return min(1.0, elapsed * _SLOW_RATE)
    if converge == "never":
        climb = min(1.0, elapsed / duration) * _NEVER_PLATEAU
        # A guest dirtying memory as fast as it is copied: the remaining bytes wobble, and now
        # and then grow again, but never come close to the end.
        wobble = 0.04 * (int(elapsed * 2) % 3 - 1) if elapsed > duration else 0.0
        return max(0.0, climb + wobble)
    return min(1.0, elapsed / duration)


def _post_copy_permitted() -> bool:
    """How Nova's libvirt driver decides (live_migration_permit_post_copy), or the fake's own
    switch for tests that cannot restart their computes."""
    try:
        if CONF.libvirt.live_migration_permit_post_copy:
            return True
    except Exception:  # the libvirt options not registered: only the fake's switch counts
        pass
    return bool(_setting("permit_post_copy", 0))

def provider_settings(host: str) -> dict:
    """This compute's {"inventory": {...}, "traits": [...]} from the control file's "providers"
    (else NOVAMOVE_FAKE_PROVIDERS); {} when it has none or the JSON is unreadable."""
    raw = None
    path = os.environ.get("NOVAMOVE_FAKEVIRT_CONTROL")
    if path and os.path.exists(path):
        try:
            with open(path) as f:
                raw = json.load(f).get("providers")
        except (OSError, ValueError, AttributeError) as exc:
            LOG.warning("ignoring unreadable fakevirt control file %s: %s", path, exc)
    if raw is None:
        try:
            raw = json.loads(os.environ.get("NOVAMOVE_FAKE_PROVIDERS") or "{}")
        except ValueError as exc:
            LOG.warning("ignoring unreadable NOVAMOVE_FAKE_PROVIDERS: %s", exc)
            raw = {}
    mine = (raw or {}).get(host) if isinstance(raw, dict) else None
    return mine if isinstance(mine, dict) else {}


def extra_inventory(settings: dict) -> dict:
    """Placement inventory records for the configured resource classes (a total, or a dict)."""
    out = {}
    for rc, value in (settings.get("inventory") or {}).items():
        record = dict(value) if isinstance(value, dict) else {"total": int(value)}
        total = int(record.get("total", 0))
        if total <= 0:
            continue
        out[rc] = {"total": total, "min_unit": 1, "max_unit": int(record.get("max_unit", total)),
                   "step_size": 1, "allocation_ratio": float(record.get("allocation_ratio", 1.0)),
                   "reserved": int(record.get("reserved", 0))}
    return out


class NovamoveFakeDriver(fake.FakeDriver):

    def __init__(self, virtapi, read_only=False):
        # Class attributes on FakeDriver; set per instance before the base class reads them.
        self.vcpus = int(_setting("vcpus", 16))
        self.memory_mb = int(_setting("memory_mb", 16384))
        self.local_gb = int(_setting("disk_gb", 200))
        super().__init__(virtapi, read_only)
        self._live = {}     # instance uuid -> "running" | "abort" | "force"
        # The hypervisor's guests, kept in this compute's own state directory: they survive
        # the nova-compute process (FakeDriver's plain dict dies with it).
        self.instances = GuestBook(guests_path(CONF.state_path), fake.FakeInstance)

    # FakeDriver changes a guest's power state in place; write the book after each such change.
    # (*args: the signatures differ between Nova releases.)
    def power_off(self, *args, **kwargs):
        super().power_off(*args, **kwargs)
        self.instances.save()

    def power_on(self, *args, **kwargs):
        super().power_on(*args, **kwargs)
        self.instances.save()

    def unrescue(self, *args, **kwargs):
        super().unrescue(*args, **kwargs)
        self.instances.save()

    def get_host_uptime(self):
        now = time.time()
        return uptime_text(now - _BOOTED, now)

    def init_host(self, host):
        self._host = host
        suffix = os.environ.get("NOVAMOVE_FAKE_NODE_SUFFIX", ".fake.local")
        nodename = host + suffix
        self._set_nodes([nodename])
        # Persist the node identity like a real single-node driver; without it Nova refuses to
        # start a compute a second time ("No local node identity found").
        if virt_node.read_local_node_uuid() is None:
            virt_node.write_local_node_uuid(self._node_uuid(nodename))
        if self.instances.existed:
            LOG.info("%d guests on %s from %s", len(self.instances), host, self.instances.path)
        else:
            self._adopt_guests(host)
            self.instances.save()   # from now on the book, not Nova's view, is this host's truth

    def _adopt_guests(self, host: str) -> None:
        """A compute of a minicloud made before guest books existed has no book yet: take the
        guests Nova has on this host, in the power state Nova last recorded, so its servers
        survive the upgrade (instead of turning into "power_state pending" servers that Nova
        refuses to migrate). Later starts read the book: the guests the hypervisor really has,
        which after an unfenced evacuation include guests Nova has since put elsewhere."""
        try:
            guests = objects.InstanceList.get_by_host(nova_context.get_admin_context(), host)
        except Exception as exc:  # first start, or the conductor not answering yet
            LOG.info("no guests adopted on %s: %s", host, exc)
            return
        for guest in guests:
            if guest.power_state != power_state.NOSTATE and guest.uuid not in self.instances:
                dict.__setitem__(self.instances, guest.uuid,
                                 fake.FakeInstance(guest.name, guest.power_state, guest.uuid))
        LOG.info("adopted %d guests on %s", len(self.instances), host)

    # FakeDriver derives node UUIDs from uuidsentinel, which is random per process: a restarted
    # compute would then create a second compute node record. Derive them from the name instead.
    @staticmethod
    def _node_uuid(nodename: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, "novamove-minicloud." + nodename))

    def get_available_resource(self, nodename):
        resources = super().get_available_resource(nodename)
        if resources:
            resources["uuid"] = self._node_uuid(nodename)
        return resources

    def get_nodenames_by_uuid(self, refresh=False):
        return {self._node_uuid(n): n for n in self.get_available_nodes()}

    # -- per-compute inventory and traits (the control file's "providers") -----------
    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        super().update_provider_tree(provider_tree, nodename, allocations=allocations)
        self._update_extra_provider(provider_tree, nodename)

    def _update_extra_provider(self, provider_tree, nodename) -> None:
        settings = provider_settings(getattr(self, "_host", None) or CONF.host)
        extra = extra_inventory(settings)
        if extra:
            inventory = dict(provider_tree.data(nodename).inventory)
            inventory.update(extra)
            provider_tree.update_inventory(nodename, inventory)
        wanted = {str(t) for t in settings.get("traits") or ()}
        given = getattr(self, "_given_traits", set())
        dropped = given - wanted
        if dropped:
            provider_tree.remove_traits(nodename, *sorted(dropped))
        if wanted:
            provider_tree.add_traits(nodename, *sorted(wanted))
        self._given_traits = wanted

    # -- cold migration ---------------------------------------------------------------
    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        delay = _setting("cold_migration_seconds", 0)
        if delay > 0:
            time.sleep(delay)
        if _setting("cold_migration_rollback", 0):
            # InstanceFaultRollback is how a real driver says "failed, but the guest is intact on
            # the source": Nova restores the server's state instead of putting it in ERROR.
            raise exception.InstanceFaultRollback(inner_exception=exception.MigrationError(
                reason="disk copy to %s failed (injected by the fakevirt control file)" % dest))
        return super().migrate_disk_and_power_off(
            context, instance, dest, flavor, network_info, block_device_info,
            timeout, retry_interval)

    # -- evacuation (rebuild on a new host) -------------------------------------------
    def rebuild(self, **kwargs):
        """Evacuations take `evacuation_seconds` on the destination (default 0); with
        `evacuation_fail` 1 they fail there (Nova: migration "failed", server ERROR, a fault).
        Then Nova's default rebuild (spawn) runs, as for FakeDriver."""
        if kwargs.get("evacuate"):
            delay = _setting("evacuation_seconds", 0)
            if delay > 0:
                time.sleep(delay)
            if _setting("evacuation_fail", 0):
                raise exception.VirtualInterfaceCreateException(
                    "guest spawn on the destination failed (injected by the fakevirt control file)")
        raise NotImplementedError()

    # -- live migration ---------------------------------------------------------------
    def live_migration(self, context, instance, dest, post_method, recover_method,
                       block_migration=False, migrate_data=None):
        duration = _setting("live_migration_seconds", 0.5)
        migration = getattr(migrate_data, "migration", None) if migrate_data else None
        total = int(instance.flavor.memory_mb) * _MEMORY_BYTES_PER_MB
        converge = _convergence(instance)
        self._live[instance.uuid] = "running"
        start = time.monotonic()
        last_report = 0.0
        try:
            while self._live[instance.uuid] == "running":
                elapsed = time.monotonic() - start
                done = _copied(converge, elapsed, duration)
                if done >= 1.0 and not _setting("live_migration_hold", 0):
                    break
                if migration is not None and elapsed - last_report >= 0.5:
                    self._report_progress(migration, instance, total, done)
                    last_report = elapsed
                time.sleep(0.1)
            outcome = self._live[instance.uuid]
        finally:
            self._live.pop(instance.uuid, None)

        if outcome == "abort":
            LOG.info("fake live migration of %s aborted", instance.uuid)
            recover_method(context, instance, dest, migrate_data, migration_status="cancelled")
            return
        if outcome != "force" and _setting("live_migration_rollback", 0):
            LOG.error("fake live migration of %s failed: injected by the fakevirt control "
                      "file; rolling back to the source", instance.uuid)
            recover_method(context, instance, dest, migrate_data)
            return
        if outcome == "force" and migration is not None:
            self._force_complete(migration, instance, total)
        if migration is not None:
            self._report_progress(migration, instance, total, 1.0)
        post_method(context, instance, dest, block_migration, migrate_data)

    def _force_complete(self, migration, instance, total: int) -> None:
        """What libvirt's monitor does with a force-complete (nova/virt/libvirt/migration.py
        run_tasks): with post-copy permitted, switch to post-copy (the record says so while
        the rest of the memory is pulled by the destination); without, pause the guest so the
        last copy catches up."""
        if _post_copy_permitted():
            LOG.info("fake live migration of %s switching to post-copy", instance.uuid)
            try:
                migration.status = "running (post-copy)"
                migration.save()
            except Exception as exc:  # status is best effort, the migration itself is not
                LOG.warning("could not save the post-copy status: %s", exc)
            time.sleep(_setting("post_copy_seconds", 1.0))
        else:
            LOG.info("fake live migration of %s force-completed: guest paused for the last copy",
                     instance.uuid)
            time.sleep(0.2)

    @staticmethod
    def _report_progress(migration, instance, total: int, done: float) -> None:
        remaining = int(total * max(0.0, 1.0 - done))
        try:
            # Nova's response schema wants these null or >= 1, so zero is reported as null; a
            # fake guest on shared storage has no disk to copy at all.
            migration.memory_total = total or None
            migration.memory_processed = (total - remaining) or None
            migration.memory_remaining = remaining or None
            migration.disk_total = None
            migration.disk_processed = None
            migration.disk_remaining = None
            migration.save()
            instance.progress = int(done * 100)
            instance.save()
        except Exception as exc:  # progress is best effort, the migration itself is not
            LOG.warning("could not save fake migration progress: %s", exc)

    def live_migration_force_complete(self, instance):
        if instance.uuid in self._live:
            self._live[instance.uuid] = "force"

    def live_migration_abort(self, instance):
        if instance.uuid in self._live:
            self._live[instance.uuid] = "abort"

    def post_live_migration(self, context, instance, block_device_info, migrate_data=None):
        # Runs on the source: stop tracking the guest here, as a real driver would.
        self.instances.pop(instance.uuid, None)
