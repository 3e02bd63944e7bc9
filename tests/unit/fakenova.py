"""One in-memory Nova for the unit tests: what the engine needs of the cloud adapter
(novamove.cloud.protocol.CloudAPI; tests/unit/test_cloud_protocol.py checks it implements every
member with the adapter's signatures).

It behaves like nova 34 where the engine's tests need it to:
- live and cold migrations progress one step per listing of changed migrations (LIVE_STEPS,
  COLD_STEPS); a cold one ends in VERIFY_RESIZE until confirmed or reverted;
- evacuate is refused with ComputeServiceInUse (400) while the source's service is up; only
  ACTIVE / SHUTOFF / ERROR servers with no task are evacuated; evacuation records go accepted ->
  pre-migrating -> done, one step per listing; at 2.95 a server lands SHUTOFF if asked;
- forced_down cannot be cleared while `done` evacuation records remain (`restart_compute`
  cleans them up -> `completed`, as nova-compute does when it starts);
- Nova's clock is this machine's plus `skew`, and moves a second on every heartbeat read; a
  host not forced down whose state is "up" reports (its `updated_at` is now), unless `silent`
  (powered off, but Nova has not noticed yet); `alive` ones report whatever Nova shows.

Faults: `transient` (verb -> how many Unreachable to raise first), `fail_servers` (their moves
and evacuations end in error), `refuse`, `flicker_servers`, `lie_servers`, `lost_answer`,
`lost_before`; hooks: `on_list` (every migration or evacuation listing), `on_disable`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from datetime import datetime, timedelta, timezone

from novamove import errors
from novamove.engine.campaign.intents import INTENT_KEY
from novamove.model import (ConsumerAllocations, Flavor, Host, Migration, ResourceProvider, Resources, Server,
                            ServerGroup, ServerState, Service)

SMALL = Flavor("small", vcpus=1, ram=512, disk=1)
ENDED = ("completed", "confirmed", "error", "cancelled", "reverted")


class FakeNova:
    LIVE_STEPS = ["queued", "preparing", "running", "running", "completed"]
    COLD_STEPS = ["pre-migrating", "migrating", "post-migrating", "finished"]
    EVACUATION_STEPS = ["accepted", "pre-migrating", "done"]
    CAPACITY = Resources(64, 65536, 1000)

    def __init__(self, hosts=("c1", "c2", "c3", "c4"), live_ticks=None, microversion=(2, 96), capacity=None):
        self.services = {h: Service(id=f"svc-{h}", host=h, zone="nova") for h in hosts}
        self.servers: dict[str, Server] = {}
        self.tags: dict[str, set[str]] = {}
        self.groups: list[ServerGroup] = []
        self.traits: dict[str, set[str]] = {}     # compute host -> its provider's placement traits
        self.zones: dict[str, set[str]] = {}      # availability zone aggregates: zone -> hosts
        self.migrations: list[dict] = []          # live and cold moves
        self.records: list[dict] = []             # evacuations
        self.ids = itertools.count(1)
        self.calls: list[str] = []
        self.actions: list[tuple] = []            # ("stop" | "start", server)
        self.mv = microversion
        self.cap = None                            # the user's ceiling (--os-compute-api-version)
        self.capacity = capacity or self.CAPACITY
        self.identity = None
        self.fault = "NoValidHost: fake scheduler said no"     # what server_fault says
        self.fail_servers: set[str] = set()        # their migrations and evacuations end in error
        self.refuse: dict[str, set[str]] = {}      # server -> destinations whose moves end in error
        self.flicker_servers: set[str] = set()     # "error" for a poll mid-move, then fine
        self.lie_servers: set[str] = set()         # Nova says completed, server stays
        self.lost_answer: set[str] = set()         # evacuate POST applied but the answer is lost
        self.lost_before: set[str] = set()         # evacuate POST never reached Nova (503)
        self.transient: dict[str, int] = {}        # verb -> how many Unreachable to raise first
        self.max_in_progress = 0
        self.max_in_flight = 0
        self.max_per_source: dict[str, int] = {}
        self.max_per_dest: dict[str, int] = {}
        self.on_list = None                        # hook called on every migrations/evacuations listing
        self.on_disable = None                     # hook called after a service is disabled
        self.skew = timedelta(0)                   # Nova's clock minus this machine's
        self.heartbeat = {h: 0 for h in hosts}
        self.last_report = {h: self.now - timedelta(hours=1) for h in hosts}
        self.silent: set[str] = set()
        self.alive: set[str] = set()
        self.placement: dict[str, dict] = {}       # doctor: consumer -> allocations (see below)
        self.updated: dict[str, str] = {}          # doctor: server -> Nova's `updated`
        self.bump_on_delete: set[str] = set()
        self.tick_on_get = False                   # get_server advances the migrations (doctor's read-backs)
        self.requests = RequestCount()             # what the adapter would send (see _cost)
        self._known_providers: set[str] = set()    # the adapter caches a provider's uuid
        self._depth = 0                            # > 0 inside a counted call (its inner calls are free)
        self.stall_servers: set[str] = set()       # live moves that never converge (fakevirt:converge=never)
        self.post_copy = False                     # force-complete switches to "running (post-copy)"
        self.force_completed: list[str] = []       # migration ids force-completed

    cloud_name = "fake"

    # ------------------------------------------------------------------ arranging (tests)
    def add(self, sid, host, status="ACTIVE", groups=(), flavor=SMALL, task=None, tags=()):
        self.servers[sid] = Server(id=sid, name=f"vm-{sid}", status=status, host=host,
                                   hypervisor_hostname=f"{host}.fake", flavor=flavor, task_state=task,
                                   server_groups=tuple(groups), zone="nova")
        self.tags[sid] = set(tags)
        self.allocate(sid, host, {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk})

    def tag(self, sid, intent):
        """The campaign intent tag on a server (as Server.tags shows it)."""
        self.servers[sid] = self.servers[sid].replace(tags=(f"{INTENT_KEY}={intent}",))

    def down(self, host):
        """Nova shows the host's service down (it stopped reporting)."""
        self.services[host] = dataclasses.replace(self.services[host], state="down")

    def evacuations_of(self, sid):
        return [r for r in self.records if r["server"] == sid]

    @property
    def moves(self):
        return self.migrations

    def restart_compute(self, host):
        """nova-compute starts again: destroys evacuated local copies, records -> completed."""
        for r in self.records:
            if r["source"] == host and r["status"] == "done":
                r["status"] = "completed"
        self.alive = self.alive | {host}

    def reporting(self, host):
        return host in self.alive or (self.services[host].state == "up" and host not in self.silent)

    @property
    def now(self):
        """Nova's clock (what cloud_now answers, unless a test takes that away)."""
        return datetime.now(timezone.utc) + self.skew

    def _maybe_fail(self, verb, call=None):
        self.calls.append(call or verb)
        if self.transient.get(verb):
            self.transient[verb] -= 1
            raise errors.Unreachable(f"{verb}: the cloud API is unavailable (503)")

    # ------------------------------------------------------------------ versions, clock
    @property
    def microversion(self):
        top = min(self.mv, self.cap) if self.cap else self.mv
        return f"{top[0]}.{top[1]}"

    def supports(self, microversion):
        a, b = microversion.split(".")
        return (int(a), int(b)) <= (min(self.mv, self.cap) if self.cap else self.mv)

    def capped(self, microversion):
        a, b = microversion.split(".")
        wanted = (int(a), int(b))
        return bool(self.cap) and self.cap < wanted <= self.mv

    def cloud_now(self):
        return self.now

    def hypervisor_uptime(self, host):
        return None                                # its hypervisors report no uptime

    # ------------------------------------------------------------------ services and hosts
    def _reported(self, svc):
        now = self.now.replace(tzinfo=None).isoformat()
        return dataclasses.replace(svc, updated_at=now if self.reporting(svc.host) else None)

    def list_compute_services(self):
        self._maybe_fail("list_compute_services")
        return [self._reported(s) for s in self.services.values()]

    def _used(self):
        """Each host's used resources, one pass over the servers (large fakes stay quick)."""
        used: dict[str, list] = {}
        for x in self.servers.values():
            r = x.flavor.resources
            u = used.setdefault(x.host, [0, 0, 0])
            u[0] += r.vcpus
            u[1] += r.memory_mb
            u[2] += r.disk_gb
        return used

    def compute_hosts(self, with_resources=True):
        used = self._used()
        return [Host(name=h, service=self._reported(s), hypervisor_hostname=f"{h}.fake",
                     capacity=self.capacity, used=Resources(*used.get(h, (0, 0, 0))))
                for h, s in self.services.items()]

    def hypervisors(self):
        return [{"id": str(i), "hypervisor_hostname": f"{h}.fake", "host": h, "state": s.state,
                 "status": s.status} for i, (h, s) in enumerate(self.services.items(), 1)]

    def host_resources(self, hypervisor_hostname):
        host = hypervisor_hostname[:-len(".fake")] if hypervisor_hostname.endswith(".fake") else hypervisor_hostname
        if host not in self.services:
            raise errors.NotFound(f"no resource provider {hypervisor_hostname!r}")
        used = self._used().get(host, (0, 0, 0))
        return self.capacity, Resources(*used), self.capacity

    def host_usage(self, hypervisor_hostname):
        return self.host_resources(hypervisor_hostname)[1]

    def provider_traits(self, hypervisor_hostname):
        self._maybe_fail("provider_traits")
        host = hypervisor_hostname.split(".")[0]
        # schedulable as soon as enabled (no COMPUTE_STATUS_DISABLED); `traits` (pre-flight) and
        # `host_traits` (rebalance's tests): {service host: traits}
        return set(self.traits.get(host, ())) | set(getattr(self, "host_traits", {}).get(host, ()))

    def zone_hosts(self, zone):
        """Availability zone aggregates: `zones` {zone: hosts}; "nova" (the default) has none."""
        self._maybe_fail("zone_hosts")
        return set(self.zones[zone]) if zone in self.zones else None

    def aggregate_hosts(self, name):
        if name != "rack1":
            raise errors.NotFound(f"no host aggregate named {name!r}")
        return ["c1", "c2"]

    def disable_service(self, service, reason):
        self._maybe_fail("disable_service")
        self.services[service.host] = dataclasses.replace(self.services[service.host], status="disabled",
                                                          disabled_reason=reason)
        if self.on_disable:
            self.on_disable(service.host)
        return self.services[service.host]

    def enable_service(self, service):
        self._maybe_fail("enable_service")
        self.services[service.host] = dataclasses.replace(self.services[service.host], status="enabled",
                                                          disabled_reason=None)
        return self.services[service.host]

    def set_service_forced_down(self, service, forced_down):
        self._maybe_fail("set_service_forced_down", f"forced_down={forced_down}")
        if not forced_down and any(r["source"] == service.host and r["status"] == "done" for r in self.records):
            raise errors.PreconditionFailed("refused by the cloud (400): Unable to force up host as `done` "
                                            "evacuation migration records remain")
        self.services[service.host] = dataclasses.replace(self.services[service.host], forced_down=forced_down,
                                                          state="down" if forced_down else "up")
        return self.services[service.host]

    def compute_service_heartbeat(self, host):
        self.skew += timedelta(seconds=1)
        if self.reporting(host):
            self.heartbeat[host] += 1
            self.last_report[host] = self.now
        return self.last_report[host].isoformat()

    # ------------------------------------------------------------------ servers
    def list_servers_on_host(self, host):
        self._maybe_fail("list_servers_on_host")
        return [s for s in self.servers.values() if s.host == host]

    def list_server_groups(self):
        self._maybe_fail("list_server_groups")
        return list(self.groups)

    def get_server(self, server_id):
        self._maybe_fail("get_server")
        if self.tick_on_get:
            self._tick_migrations()
        if server_id not in self.servers:
            raise errors.NotFound(f"server {server_id}: not found")
        return self.servers[server_id]

    def find_servers(self, name_or_id):
        return [s for s in self.servers.values() if name_or_id in (s.id, s.name)]

    def server_fault(self, server_id, since=None):
        return self.fault

    def server_ids_tagged(self, host, tag):
        return {sid for sid, t in self.tags.items() if tag in t and self.servers[sid].host == host}

    def stop_server(self, server_id):
        self.actions.append(("stop", server_id))
        self.servers[server_id] = self.servers[server_id].replace(status="SHUTOFF")

    def start_server(self, server_id):
        self.actions.append(("start", server_id))
        self.servers[server_id] = self.servers[server_id].replace(status="ACTIVE")

    # ------------------------------------------------------------------ live and cold moves
    def _start(self, sid, host, kind):
        s = self.servers[sid]
        if host is None:                           # the scheduler chooses
            host = self._schedule(s)
        assert s.host != host, "moving to the host it is on"
        if s.task_state:
            raise errors.PreconditionFailed("conflict (409): Cannot migrate while in task_state migrating")
        self.migrations.append({"id": str(next(self.ids)), "server": sid, "source": s.host, "dest": host,
                                "kind": kind, "step": 0, "status": "accepted", "orig_status": s.status})
        self.servers[sid] = s.replace(task_state="migrating", status="MIGRATING" if kind == "live" else "RESIZE")
        # Placement as Nova does it: the migration's consumer takes the source, the server the dest.
        held = self.placement.get(sid)
        if held is not None:
            mid = self.migrations[-1]["id"]
            self.placement[f"mig-{mid}"] = {"alloc": dict(held["alloc"]), "gen": 1, "project": held["project"],
                                            "user": held["user"]}
            held["alloc"] = {f"rp-{host}": dict(next(iter(held["alloc"].values()), {}))}
            held["gen"] += 1

    def _schedule(self, server):
        """Nova's scheduler, as far as the fake goes: the first enabled, up compute but the
        server's own with room for its flavor (NoValidHost: a 400, as Nova answers at 2.30)."""
        for h in self.compute_hosts():
            if h.name != server.host and h.service.enabled and h.service.up \
                    and not h.free.shortfall(server.flavor.resources):
                return h.name
        raise errors.PreconditionFailed("No valid host was found (400)")

    def live_migrate_server(self, server_id, host=None):
        self._maybe_fail("live_migrate_server")
        assert self.servers[server_id].status in ("ACTIVE", "PAUSED")
        self._start(server_id, host, "live")

    def migrate_server(self, server_id, host=None):
        self._maybe_fail("migrate_server")
        assert self.servers[server_id].status in ("ACTIVE", "SHUTOFF")
        self._start(server_id, host, "cold")

    def confirm_resize(self, server_id):
        m = self._current(server_id)
        assert self.servers[server_id].status == "VERIFY_RESIZE"
        m["status"] = "confirming"
        self.servers[server_id] = self.servers[server_id].replace(task_state="resize_confirming")

    def revert_resize(self, server_id):
        self._current(server_id)["status"] = "reverting"

    def abort_migration(self, server_id, migration_id):
        m = next(m for m in self.migrations if m["id"] == migration_id)
        m["status"] = "cancelled"
        self.servers[server_id] = self.servers[server_id].replace(task_state=None, status=m["orig_status"])

    def force_complete_migration(self, server_id, migration_id):
        m = next(m for m in self.migrations if m["id"] == migration_id)
        if m["status"] != "running":
            raise errors.PreconditionFailed(f"conflict (409): migration {migration_id} is {m['status']}")
        self.force_completed.append(migration_id)
        m["step"] = max(m["step"], len(self.LIVE_STEPS) - 2)      # completes on the next step
        if m.get("stalling"):
            m["stalling"] = False
            if self.post_copy:
                m["status"], m["post_copy"] = "running (post-copy)", True

    def _current(self, sid):
        return [m for m in self.migrations if m["server"] == sid][-1]

    def _tick_migrations(self):
        for m in self.migrations:
            sid, st = m["server"], m["status"]
            if sid not in self.servers:
                # Deleted by its owner: Nova marks the migration it was in as failed.
                if st not in ENDED:
                    m["status"] = "error"
                continue
            if st in ENDED and not m.get("flicker"):
                continue
            m["flicker"] = False
            if st == "confirming":
                m["status"] = "confirmed"
                self._placement_end(m, back=False)
                self.servers[sid] = self.servers[sid].replace(status=m["orig_status"], task_state=None)
                continue
            if st == "reverting":
                m["status"] = "reverted"
                self._placement_end(m, back=True)
                self.servers[sid] = self.servers[sid].replace(status=m["orig_status"], task_state=None,
                                                              host=m["source"],
                                                              hypervisor_hostname=f"{m['source']}.fake")
                continue
            if st == "finished":
                continue
            steps = self.LIVE_STEPS if m["kind"] == "live" else self.COLD_STEPS
            if m["kind"] == "live" and sid in self.stall_servers and m["status"] == "running" \
                    and "forced" not in m and m.setdefault("stalling", True):
                m["polls"] = m.get("polls", 0) + 1
                continue                    # stuck at the same remaining memory until forced or aborted
            if m.pop("post_copy", False):
                m["forced"] = True
                continue                    # one poll in post-copy, then it completes
            m["step"] += 1
            if (sid in self.fail_servers or m["dest"] in self.refuse.get(sid, ())) and m["step"] == 2:
                m["status"] = "error"
                self._placement_end(m, back=True)
                self.servers[sid] = self.servers[sid].replace(status=m["orig_status"], task_state=None)
                continue
            if sid in self.flicker_servers and m["step"] == 2 and "flickered" not in m:
                m["status"], m["flicker"], m["flickered"] = "error", True, True
                continue                    # the server keeps its task state: the move goes on
            m["status"] = steps[min(m["step"], len(steps) - 1)]
            if m["status"] == "completed":
                self._placement_end(m, back=False)
                host = m["source"] if sid in self.lie_servers else m["dest"]
                self.servers[sid] = self.servers[sid].replace(host=host, task_state=None, status=m["orig_status"],
                                                              hypervisor_hostname=f"{host}.fake")
            elif m["status"] == "finished":
                self.servers[sid] = self.servers[sid].replace(host=m["dest"], task_state=None,
                                                              hypervisor_hostname=f"{m['dest']}.fake",
                                                              status="VERIFY_RESIZE")
        live = [m for m in self.migrations if m["status"] not in ENDED]
        self.max_in_progress = max(self.max_in_progress, len(live))
        for key, seen in (("source", self.max_per_source), ("dest", self.max_per_dest)):
            counts: dict[str, int] = {}
            for m in live:
                counts[m[key]] = counts.get(m[key], 0) + 1
            for h, n in counts.items():
                seen[h] = max(seen.get(h, 0), n)

    def _placement_end(self, m, back: bool):
        """A migration ended: its consumer's allocations go; reverted or failed, the server's
        allocation returns to the source."""
        mig = self.placement.pop(f"mig-{m['id']}", None)
        held = self.placement.get(m["server"])
        if back and mig is not None and held is not None:
            held["alloc"], held["gen"] = mig["alloc"], held["gen"] + 1

    def _migration(self, m):
        return Migration(id=m["id"], server_id=m["server"], source_host=m["source"], dest_host=m["dest"],
                         status=m["status"], migration_type="live-migration" if m["kind"] == "live" else "migration")

    def list_migrations_changed_since(self, since, host=None):
        self._maybe_fail("list_migrations_changed_since")
        self._tick_migrations()
        if self.on_list:
            self.on_list()
        return [self._migration(m) for m in self.migrations]

    def list_migrations(self, *, server_id=None, host=None, status=None, migration_type=None, limit=None):
        rows = [self._migration(m) for m in reversed(self.migrations)
                if (not server_id or m["server"] == server_id) and (not host or host in (m["source"], m["dest"]))
                and (not status or m["status"] == status)]
        rows = [r for r in rows if not migration_type or r.migration_type == migration_type]
        return rows[:limit] if limit else rows

    def list_server_migrations(self, server_id):
        # Nova's in-progress list for this call leaves "running (post-copy)" out.
        return [dataclasses.replace(self._migration(m), memory_total_bytes=self.MEMORY,
                                    memory_remaining_bytes=self._remaining(m))
                for m in self.migrations if m["server"] == server_id and m["kind"] == "live"
                and m["status"] in ("queued", "preparing", "running", "post-migrating")]

    MEMORY = 2048 * 1024 * 1024

    def _remaining(self, m):
        """A converging move halves what is left at every poll; a stalling one stays near half,
        growing now and then (the guest dirties memory as fast as it is copied)."""
        if m.get("stalling") is not None:
            return self.MEMORY // 2 + (m.get("polls", 0) % 3) * self.MEMORY // 50
        return self.MEMORY >> (m["step"] + 1)

    # ------------------------------------------------------------------ evacuations
    def evacuate_server(self, server_id, host, *, target_state=None):
        self._maybe_fail("evacuate_server", f"evacuate {server_id} -> {host}")
        if server_id in self.lost_before:
            self.lost_before.discard(server_id)
            raise errors.Unreachable("evacuation: the cloud API is unavailable (503)")
        s = self.servers[server_id]
        src = self.services[s.host]
        if src.state == "up" and not src.forced_down:
            raise errors.PreconditionFailed(f"evacuation: refused by the cloud (400): Compute service of "
                                            f"{s.host} is still in use.")
        if s.task_state or s.status not in ("ACTIVE", "SHUTOFF", "ERROR"):
            raise errors.PreconditionFailed("evacuation: conflict (409): Cannot 'evacuate' instance")
        assert host != s.host
        self.records.append({"id": str(next(self.ids)), "server": server_id, "source": s.host, "dest": host,
                             "step": 0, "status": "accepted", "orig": s.status,
                             "stopped": target_state == "stopped", "created_at": "2099-01-01T00:00:00"})
        self.servers[server_id] = s.replace(task_state="rebuilding")
        if server_id in self.lost_answer:
            self.lost_answer.discard(server_id)
            raise errors.Unreachable("evacuation: the cloud API is unavailable (504)")

    def _tick_evacuations(self):
        for r in self.records:
            if r["status"] in ("done", "completed", "failed"):
                continue
            r["step"] += 1
            sid = r["server"]
            if sid in self.fail_servers and r["step"] == 2:
                r["status"] = "failed"
                self.servers[sid] = self.servers[sid].replace(task_state=None, status="ERROR",
                                                              fault="late group check failed")
                continue
            r["status"] = self.EVACUATION_STEPS[min(r["step"], 2)]
            if r["status"] == "done":
                status = "SHUTOFF" if (r["stopped"] or r["orig"] == "SHUTOFF") and r["orig"] != "ERROR" else "ACTIVE"
                self.servers[sid] = self.servers[sid].replace(host=r["dest"], task_state=None, status=status)
        live = [r for r in self.records if r["status"] in ("accepted", "pre-migrating")]
        self.max_in_flight = max(self.max_in_flight, len(live))
        for h in {r["dest"] for r in live}:
            self.max_per_dest[h] = max(self.max_per_dest.get(h, 0), sum(r["dest"] == h for r in live))

    def list_evacuations(self, source_host=None, since=None, server_id=None):
        self._maybe_fail("list_evacuations")
        if server_id is None:
            self._tick_evacuations()
            if self.on_list:
                self.on_list()
        rows = [r for r in self.records if (not source_host or r["source"] == source_host)
                and (not server_id or r["server"] == server_id)]
        return [Migration(id=r["id"], server_id=r["server"], source_host=r["source"], dest_host=r["dest"],
                          status=r["status"], migration_type="evacuation", created_at=r["created_at"])
                for r in sorted(rows, key=lambda r: -int(r["id"]))]

    def evacuation_fault(self, server_id, since=None):
        return "RescheduledException: late group check failed"

    # ------------------------------------------------------------------ doctor's reads and repairs
    # Placement as {consumer: {"alloc": {rp: resources}, "gen": n, "project", "user"}}: add()
    # allocates each server on its host's provider (rp-HOST, named HOST.fake); tests arrange
    # the rest (a migration's consumer is mig-ID). `updated` / migrations' "updated": Nova's
    # timestamps (two hours ago unless a test says). `bump_on_delete`: consumers a concurrent
    # writer changes between the doctor's read and its delete (the delete gets a 409).
    OLD = "2026-01-01T00:00:00Z"

    def allocate(self, consumer, host, resources=None, project="p1", user="u1"):
        rec = self.placement.setdefault(consumer, {"alloc": {}, "gen": 0, "project": project, "user": user})
        rec["alloc"][f"rp-{host}"] = dict(resources or {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1})
        rec["gen"] += 1

    def _old(self):
        return (self.now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def list_all_servers(self):
        self._maybe_fail("list_all_servers")
        return [ServerState(id=s.id, name=s.name, status=s.status, host=s.host, node=s.hypervisor_hostname,
                            vm_state=s.vm_state or ("stopped" if s.status == "SHUTOFF" else "active"),
                            task_state=s.task_state, power_state=s.power_state if s.power_state is not None
                            else (4 if s.status == "SHUTOFF" else 1),
                            updated=self.updated.get(s.id) or self._old())
                for s in self.servers.values()]

    def list_all_migrations(self):
        self._maybe_fail("list_all_migrations")
        return [dataclasses.replace(self._migration(m), uuid=f"mig-{m['id']}",
                                    created_at=m.get("created") or self._old(),
                                    updated_at=m.get("updated") or self._old())
                for m in reversed(self.migrations)]

    def list_resource_providers(self):
        self._maybe_fail("list_resource_providers")
        return [ResourceProvider(f"rp-{h}", f"{h}.fake", 1, f"rp-{h}") for h in self.services]

    def provider_allocations(self, provider_uuid):
        self._maybe_fail("provider_allocations")
        return {c: dict(r["alloc"][provider_uuid]) for c, r in self.placement.items() if provider_uuid in r["alloc"]}

    def consumer_allocations(self, consumer):
        self._maybe_fail("consumer_allocations")
        r = self.placement.get(consumer)
        if r is None or not r["alloc"]:
            return ConsumerAllocations(consumer, {}, None)
        return ConsumerAllocations(consumer, {rp: dict(x) for rp, x in r["alloc"].items()}, r["gen"],
                                   r["project"], r["user"])

    def delete_consumer_allocations(self, consumer, generation, *, project_id, user_id):
        self._maybe_fail("delete_consumer_allocations")
        r = self.placement.get(consumer)
        if consumer in self.bump_on_delete and r is not None:
            r["gen"] += 1
        if r is None or r["gen"] != generation:
            raise errors.PreconditionFailed(f"delete allocations of consumer {consumer}: conflict (409): "
                                            "consumer generation conflict")
        r["alloc"], r["gen"] = {}, r["gen"] + 1

    def reset_server_state(self, server_id, state):
        self._maybe_fail("reset_server_state")
        s = self.servers[server_id]
        self.actions.append(("reset-state", server_id))
        self.servers[server_id] = s.replace(vm_state=state, task_state=None,
                                            status="ACTIVE" if state == "active" else "ERROR")


# ------------------------------------------------------------------ request counting
# The adapter's RequestCounter counts HTTP requests; the fake counts, at the Protocol boundary,
# the requests the adapter would send for each call (list pages of Nova's default
# [api] max_limit, per-host Placement reads, the provider uuid looked up once per host).

PAGE = 1000


class RequestCount:
    """`count` as the adapter's RequestCounter has it; `by_verb` for the benches and tests."""

    def __init__(self):
        self.count = 0
        self.by_verb: dict[str, int] = {}

    def add(self, verb: str, n: int) -> None:
        self.count += n
        self.by_verb[verb] = self.by_verb.get(verb, 0) + n


def _pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))


def _placement(fake: FakeNova, node: str) -> int:
    """Inventories + usages of one provider, and its uuid the first time."""
    first = node not in fake._known_providers
    fake._known_providers.add(node)
    return 2 + first


def _cost(fake: FakeNova, verb: str, args: tuple, kwargs: dict) -> int:
    if verb in _FREE:
        return 0
    if verb == "hypervisors":
        return _pages(len(fake.services))
    if verb == "compute_hosts":
        n = _pages(len(fake.services)) + 1
        if kwargs.get("with_resources", args[0] if args else True):
            n += sum(_placement(fake, f"{h}.fake") for h in fake.services)
        return n
    if verb == "host_resources":
        return _placement(fake, kwargs.get("hypervisor_hostname", args[0] if args else ""))
    if verb == "host_usage":        # usages only
        return _placement(fake, kwargs.get("hypervisor_hostname", args[0] if args else "")) - 1
    if verb == "list_servers_on_host":
        host = kwargs.get("host", args[0] if args else "")
        return _pages(sum(s.host == host for s in fake.servers.values()))
    if verb in ("list_all_servers", "find_servers"):
        return _pages(len(fake.servers))
    if verb == "list_server_groups":
        return len(fake.groups) // PAGE + 1        # offset pages until a short one
    return 1


_FREE = {"supports", "capped", "cloud_now"}         # answered from what the adapter holds


def _counted(verb: str, fn):
    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        if self._depth == 0:
            self.requests.add(verb, _cost(self, verb, args, kwargs))
        self._depth += 1
        try:
            return fn(self, *args, **kwargs)
        finally:
            self._depth -= 1
    return call


def _count_protocol_calls() -> None:
    import inspect

    from novamove.cloud.protocol import CloudAPI
    for name, member in vars(CloudAPI).items():
        if not name.startswith("_") and inspect.isfunction(member) and inspect.isfunction(getattr(FakeNova, name, None)):
            setattr(FakeNova, name, _counted(name, getattr(FakeNova, name)))


_count_protocol_calls()
