"""The campaign's view of the cloud: read whole once, then kept current cheaply.

A campaign plans every stage over the whole cloud (N+K: can the other hosts take this one's
servers?), and so did its drains; read from Placement each time, that is two requests per host
in the cloud per plan: stages x hosts, millions on a cloud of thousands of hosts. Instead the
view holds every host's capacity and usage from the campaign's first read and keeps it current:

- what the campaign itself changes: a move it starts takes the server's flavor off its source
  and puts it on its destination in the view (a move to a host Nova picks, or of a server the
  view has not seen listed, makes every host's usage read again at the next plan); a service
  it disables or enables is updated;
- the service list (one request, Nova does not page it) is read again at every plan, so a host
  someone else disabled, or that went down, is seen before the plan that depends on it;
- before each stage the hosts the stage's plan touches (its source and the destinations it chose) are read again
  until the plan chooses only hosts read for this stage (`fresh_plan`), so a server someone
  else booted onto a destination is accounted for before the stage moves anything there;
- a stage refused on the view (N+K) is judged again on a whole new read before it waits or is
  refused: the view is never the reason a host is held back for long (see runner.py).

It is the adapter for the campaign and the drains it runs (every other call goes through to
the cloud unchanged), so their plans use it too. What it costs: one service listing per plan,
one Placement read (its usage) per host a stage touches, one whole read at the start and when a stage is
refused on the view: it grows with the servers moved and the hosts serviced, not with the
hosts in the cloud.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Collection, Iterable, Optional, Sequence, TypeVar

from novamove.model import Host, Server
from novamove.planner import need_of

T = TypeVar("T")

FRESH_ROUNDS = 4          # plan, re-read the hosts it touched, plan again: at most this many times
# A listing read through the view (services, a host's servers, server groups) answers again for
# at most this long, and only until the campaign or its drain writes anything (a move, a
# disable...) or a new stage begins: the reads a stage makes in one breath (the plan, the
# take-out, the drain's own plan and checks) share one request. The drain's runner already
# trusts a service listing this long (engine/batch/common.py SERVICES_FRESH).
READ_FRESH = 2.0
# The adapter verbs that change the cloud: each drops every listing the view holds (what is
# read after a write is read from the cloud). tests/unit/test_campaign_requests.py checks that
# every verb of the Protocol is here or in READS, so a new verb is classed when it is added.
WRITES = frozenset({
    "stop_server", "start_server", "disable_service", "enable_service", "set_service_forced_down",
    "migrate_server", "live_migrate_server", "confirm_resize", "revert_resize", "abort_migration",
    "force_complete_migration", "evacuate_server", "delete_consumer_allocations", "reset_server_state"})
READS = frozenset({
    "cloud_name", "identity", "microversion", "supports", "capped", "get_server", "find_servers",
    "server_fault", "list_servers_on_host", "list_server_groups", "server_ids_tagged",
    "list_compute_services", "compute_service_heartbeat", "cloud_now", "hypervisor_uptime", "hypervisors",
    "host_resources", "host_usage", "compute_hosts", "aggregate_hosts", "zone_hosts", "provider_traits", "list_migrations",
    "list_server_migrations", "list_migrations_changed_since", "list_evacuations", "evacuation_fault",
    "list_all_servers", "list_all_migrations", "list_resource_providers", "provider_allocations",
    "consumer_allocations"})
SERVICE_WRITE_KEEPS = ("groups", "servers")   # what a disable or an enable leaves shared
# What any other write (a move, a confirm, a stop...) leaves shared: it changes no service, so a
# service listing read less than READ_FRESH ago still answers (a drain's pre-conditions share the
# gate's and the lease renewal's listings; issue 24).
SERVER_WRITE_KEEPS = ("groups", "services")
SERVICE_VERBS = frozenset({"disable_service", "enable_service", "set_service_forced_down"})


class CloudView:
    """The cloud adapter, with `compute_hosts` served from the campaign's model."""

    def __init__(self, cloud: Any, hosts: Sequence[Host], clock: Callable[[], float]):
        self._cloud = cloud
        self._clock = clock
        self._hosts: dict[str, Host] = {h.name: h for h in hosts}
        self._stale = False                      # every host's usage to be read again
        self._fresh: set[str] = set()            # hosts read since the stage began
        self._seen: dict[str, Server] = {}       # servers listed through the view (where, and their flavor)
        self._listed: dict[tuple, tuple[float, Any]] = {}   # (verb, args) -> (when read, answer)
        self.last_full = clock()
        self.full_reads = 0
        self.usage_reads = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cloud, name)
        if name in READS or not callable(value):
            return value

        keep = SERVICE_WRITE_KEEPS if name in SERVICE_VERBS else SERVER_WRITE_KEEPS

        def write(*args: Any, **kwargs: Any) -> Any:
            self.forget(keep)
            try:
                return value(*args, **kwargs)
            finally:
                self.forget(keep)
        return write

    # -------------------------------------------------------------- listings shared in one breath

    def forget(self, keep: Collection[str] = ("groups",)) -> None:
        """The listings are read from the cloud again, but those of the kinds in `keep`: after a
        server's write (a move...), the servers (no write of a campaign changes a group's
        members, nor a move a service); after a service's write, the services (a host's servers
        are read back by the drain after its own disable, and listed again after every move);
        all for a new stage."""
        self._listed = {k: v for k, v in self._listed.items() if k[0] in keep}

    def _shared(self, key: tuple, read: Callable[[], list]) -> list:
        hit = self._listed.get(key)
        if hit is not None and self._clock() - hit[0] <= READ_FRESH:
            return list(hit[1])
        answer = read()
        self._listed[key] = (self._clock(), list(answer))
        return answer

    def list_compute_services(self) -> list:
        return self._shared(("services",), self._cloud.list_compute_services)

    def services_now(self) -> list:
        """The service list read from the cloud now (a gate's poll: never an earlier answer)."""
        self._listed.pop(("services",), None)
        return self.list_compute_services()

    def list_server_groups(self) -> list:
        return self._shared(("groups",), self._cloud.list_server_groups)

    # -------------------------------------------------------------- reads

    def compute_hosts(self, with_resources: bool = True) -> list[Host]:
        """The hosts as the view has them: services as listed now, stale usages read again."""
        services = {s.host: s for s in self.list_compute_services()}
        if set(services) != set(self._hosts) or self._stale:
            # A compute added or removed (its hypervisor and Placement numbers), or a move the
            # view could not follow: read whole.
            return self.read_all()
        for name, svc in services.items():
            self._hosts[name] = dataclasses.replace(self._hosts[name], service=svc)
        return list(self._hosts.values())

    def read_all(self) -> list[Host]:
        hosts = self._cloud.compute_hosts(with_resources=True)
        self._hosts = {h.name: h for h in hosts}
        self._stale = False
        self._fresh = set(self._hosts)
        self.last_full = self._clock()
        self.full_reads += 1
        return list(hosts)

    def read_usage(self, names: Iterable[str]) -> None:
        """Placement's usage of these hosts, read again: one request a host (their capacity is
        the whole read's; a compute added or removed, or a stage refused on the view, reads
        everything again)."""
        for name in names:
            h = self._hosts.get(name)
            if h is None or not h.hypervisor_hostname:
                continue
            used = self._cloud.host_usage(h.hypervisor_hostname)
            self._hosts[name] = dataclasses.replace(h, used=used)
            self._fresh.add(name)
            self.usage_reads += 1

    def begin_stage(self) -> None:
        """What was read for the last stage is not read for this one."""
        self._fresh = set()
        self.forget(keep=())

    def fresh_plan(self, plan: Callable[[list[Host]], tuple[T, set[str]]]) -> T:
        """`plan(hosts)` -> (result, hosts it touches), made until every host it touches was
        read for this stage (a whole read when that does not settle)."""
        for _ in range(FRESH_ROUNDS):
            result, touched = plan(self.compute_hosts(with_resources=True))
            unread = {h for h in touched if h in self._hosts} - self._fresh
            if not unread:
                return result
            self.read_usage(sorted(unread))
        result, _ = plan(self.read_all())
        return result

    def list_servers_on_host(self, host: str) -> list:
        servers = self._shared(("servers", host), lambda: self._cloud.list_servers_on_host(host))
        for s in servers:
            self._seen[s.id] = s
        return servers

    # -------------------------------------------------------------- what the campaign changes

    def _moving(self, server_id: str, dest: Optional[str]) -> None:
        """The move's allocation as Placement makes it (the destination holds the server, the
        source the migration's, until it ends): the view counts it on the destination from
        now and off the source; the next stage that touches either reads it again."""
        server = self._seen.get(server_id)
        if dest is None or server is None or server.flavor is None or dest not in self._hosts \
                or server.host not in self._hosts:
            self._stale = True                     # Nova chooses, or the view cannot tell
            return
        need = need_of(server)
        src, dst = self._hosts[server.host], self._hosts[dest]
        self._hosts[dst.name] = dataclasses.replace(dst, used=dst.used + need)
        self._hosts[src.name] = dataclasses.replace(src, used=src.used - need)
        self._fresh -= {src.name, dst.name}
        self._seen[server_id] = server.replace(host=dest)

    def live_migrate_server(self, server_id: str, host: Optional[str] = None) -> None:
        self._moving(server_id, host)
        self.forget(SERVER_WRITE_KEEPS)
        return self._cloud.live_migrate_server(server_id, host)

    def migrate_server(self, server_id: str, host: Optional[str] = None) -> None:
        self._moving(server_id, host)
        self.forget(SERVER_WRITE_KEEPS)
        return self._cloud.migrate_server(server_id, host)

    def revert_resize(self, server_id: str) -> None:
        self._stale = True                         # back to where it came from
        self.forget(SERVER_WRITE_KEEPS)
        return self._cloud.revert_resize(server_id)

    def disable_service(self, service: Any, reason: str) -> Any:
        self.forget(SERVICE_WRITE_KEEPS)
        try:
            svc = self._cloud.disable_service(service, reason)
        finally:
            self.forget(SERVICE_WRITE_KEEPS)
        self._set_service(svc)
        return svc

    def enable_service(self, service: Any) -> Any:
        self.forget(SERVICE_WRITE_KEEPS)
        try:
            svc = self._cloud.enable_service(service)
        finally:
            self.forget(SERVICE_WRITE_KEEPS)
        self._set_service(svc)
        return svc

    def service_of(self, host: str) -> Any:
        """`host`'s service as last listed or answered to a write through the view."""
        h = self._hosts.get(host)
        return h.service if h is not None else None

    def _set_service(self, svc: Any) -> None:
        h = self._hosts.get(getattr(svc, "host", None))
        if h is not None:
            self._hosts[h.name] = dataclasses.replace(h, service=svc)
