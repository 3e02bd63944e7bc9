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
two Placement reads per host a stage touches, one whole read at the start and when a stage is
refused on the view: it grows with the servers moved and the hosts serviced, not with the
hosts in the cloud.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

from novamove.model import Host, Server
from novamove.planner import need_of

T = TypeVar("T")

FRESH_ROUNDS = 4          # plan, re-read the hosts it touched, plan again: at most this many times


class CloudView:
    """The cloud adapter, with `compute_hosts` served from the campaign's model."""

    def __init__(self, cloud: Any, hosts: Sequence[Host], clock: Callable[[], float]):
        self._cloud = cloud
        self._clock = clock
        self._hosts: dict[str, Host] = {h.name: h for h in hosts}
        self._stale = False                      # every host's usage to be read again
        self._fresh: set[str] = set()            # hosts read since the stage began
        self._seen: dict[str, Server] = {}       # servers listed through the view (where, and their flavor)
        self.last_full = clock()
        self.full_reads = 0
        self.usage_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cloud, name)

    # -------------------------------------------------------------- reads

    def compute_hosts(self, with_resources: bool = True) -> list[Host]:
        """The hosts as the view has them: services as listed now, stale usages read again."""
        services = {s.host: s for s in self._cloud.list_compute_services()}
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
        """Placement's numbers for these hosts, read again."""
        for name in names:
            h = self._hosts.get(name)
            if h is None or not h.hypervisor_hostname:
                continue
            capacity, used, _ = self._cloud.host_resources(h.hypervisor_hostname)
            self._hosts[name] = dataclasses.replace(h, capacity=capacity, used=used)
            self._fresh.add(name)
            self.usage_reads += 1

    def begin_stage(self) -> None:
        """What was read for the last stage is not read for this one."""
        self._fresh = set()

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
        servers = self._cloud.list_servers_on_host(host)
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
        return self._cloud.live_migrate_server(server_id, host)

    def migrate_server(self, server_id: str, host: Optional[str] = None) -> None:
        self._moving(server_id, host)
        return self._cloud.migrate_server(server_id, host)

    def revert_resize(self, server_id: str) -> None:
        self._stale = True                         # back to where it came from
        return self._cloud.revert_resize(server_id)

    def disable_service(self, service: Any, reason: str) -> Any:
        svc = self._cloud.disable_service(service, reason)
        self._set_service(svc)
        return svc

    def enable_service(self, service: Any) -> Any:
        svc = self._cloud.enable_service(service)
        self._set_service(svc)
        return svc

    def _set_service(self, svc: Any) -> None:
        h = self._hosts.get(getattr(svc, "host", None))
        if h is not None:
            self._hosts[h.name] = dataclasses.replace(h, service=svc)
