"""Capacity-aware placement of many servers: the drain planner.

Pure logic over novamove.model values: no API calls, no clock, no randomness, so a plan is
reproducible from the same cloud snapshot and cheap to test. The engine gathers a
`CloudState` through the cloud adapter, asks `plan_drain` for a `DrainPlan`, and runs it.

What the planner honours (the same things Nova's scheduler would check, so that a planned move
is one the scheduler accepts):
- capacity: placement inventory x allocation ratio - reserved - usages (`Host.free`), minus what
  earlier steps of the same plan already put on a host;
- hard server-group policies: anti-affinity (no two members on one host) and affinity (only the
  hosts already holding members: Nova's ServerGroupAffinityFilter checks `group.hosts`, which
  includes the source, so an affinity group can only move onto a host where members already live);
- availability zone: a server stays in its source host's zone;
- disabled or down compute services, the drained hosts themselves, and `--to` restrictions.

Destinations are chosen the way Nova's default RAM weigher does (spread: most free RAM first),
which also spreads the moves over many destinations so per-host caps hurt less.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Collection, Iterable, Mapping, Optional, Sequence

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Host, Plan, PlanStep, Resources, Server, ServerGroup

MODES = ("auto", LIVE, COLD)
ORDERS = ("largest", "smallest", "name", "id")

# Nova's compute API guards (nova/compute/api.py check_instance_state): live_migrate accepts
# ACTIVE and PAUSED, migrate (cold) accepts ACTIVE and STOPPED (SHUTOFF in the API).
LIVE_STATUSES = frozenset({"ACTIVE", "PAUSED"})
COLD_STATUSES = frozenset({"ACTIVE", "SHUTOFF"})

HARD_AFFINITY = "affinity"
HARD_ANTI_AFFINITY = "anti-affinity"

# Why a server that sits on the host cannot be moved, by status (operator-facing, one line).
_STATUS_REASONS = {
    "ERROR": "status ERROR: Nova refuses to move it; repair or reset its state first",
    "SHELVED": "status SHELVED: unshelve it or offload it instead of moving it",
    "SHELVED_OFFLOADED": "status SHELVED_OFFLOADED: it is not running on any host",
    "VERIFY_RESIZE": "status VERIFY_RESIZE: confirm or revert its pending resize first",
    "RESIZE": "status RESIZE: a resize/migration is already in progress",
    "MIGRATING": "status MIGRATING: a live migration is already in progress",
    "SUSPENDED": "status SUSPENDED: Nova moves only ACTIVE, PAUSED or SHUTOFF servers",
    "BUILD": "status BUILD: still being built",
    "REBUILD": "status REBUILD: being rebuilt",
    "DELETED": "status DELETED",
    "SOFT_DELETED": "status SOFT_DELETED: restore it first",
    "RESCUE": "status RESCUE: unrescue it first",
}


@dataclass(frozen=True)
class Check:
    """One pre-check result shown by `--dry-run` and stored in the plan."""
    name: str
    ok: bool
    detail: str = ""


@dataclass
class DrainStep(PlanStep):
    """A PlanStep plus what `apply` re-checks when the step runs (the cloud may have changed)."""
    status: str = ""                       # server status when planned
    groups: tuple[str, ...] = ()           # hard-policy server groups the destination honours


@dataclass
class DrainPlan(Plan):
    """A drain plan: data, saved as JSON by novamove.engine.batch.drain and applied later."""
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()          # --to (empty: any eligible host)
    mode: str = "auto"
    order: str = "largest"
    reason: Optional[str] = None           # operator text added to our disabled reason
    max_parallel: int = 4
    max_per_host: int = 2
    checks: list[Check] = field(default_factory=list)
    cloud: Optional[str] = None            # the cloud it was made on (compute endpoint): apply checks it

    @property
    def moves(self) -> list[DrainStep]:
        return [s for s in self.steps if s.dest is not None]

    @property
    def skipped(self) -> list[DrainStep]:
        return [s for s in self.steps if s.dest is None]


@dataclass
class CloudState:
    """What the planner sees of the cloud: gathered by the engine, or built by tests/benchmarks.

    `servers` must include every server on the sources; for server-group constraints it must
    also include the other members of their groups (including all servers is always right).
    """
    hosts: Sequence[Host]
    servers: Sequence[Server]
    groups: Sequence[ServerGroup] = ()


def move_mode(server: Server, mode: str) -> tuple[Optional[str], Optional[str]]:
    """(live|cold, None) for a server Nova can move in `mode`, else (None, why not)."""
    status = (server.status or "").upper()
    if server.task_state:
        return None, f"busy: task_state {server.task_state}"
    if mode == "auto":
        if status in LIVE_STATUSES:
            return LIVE, None
        if status in COLD_STATUSES:
            return COLD, None
    elif mode == LIVE:
        if status in LIVE_STATUSES:
            return LIVE, None
        if status in COLD_STATUSES:
            return None, f"status {status}: a live migration needs ACTIVE or PAUSED (use --mode auto or cold)"
    elif mode == COLD:
        if status in COLD_STATUSES:
            return COLD, None
        if status in LIVE_STATUSES:
            return None, f"status {status}: a cold migration needs ACTIVE or SHUTOFF (use --mode auto or live)"
    else:
        raise UsageError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    return None, _STATUS_REASONS.get(status, f"status {status}: Nova moves only ACTIVE, PAUSED or SHUTOFF servers")


def need_of(server: Server) -> Resources:
    return server.flavor.resources_for(server.volume_backed) if server.flavor else Resources()


_NO_NEED = Resources()


class _NeedMemo:
    """need_of with one Resources per (flavor, volume-backed) instead of one per server.

    Building a frozen Resources costs microseconds and a big drain has thousands of servers of
    a handful of flavors. Keyed by the flavor object's id, so the memo must not outlive the
    servers it was filled from (one per plan_drain call); Resources are immutable, so servers
    of one flavor can share one.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[int, bool], Resources] = {}

    def __call__(self, server: Server) -> Resources:
        flavor = server.flavor
        if flavor is None:
            return _NO_NEED
        key = (id(flavor), server.volume_backed)
        need = self._memo.get(key)
        if need is None:
            need = self._memo[key] = flavor.resources_for(server.volume_backed)
        return need


@dataclass
class _Unit:
    """Servers that must land on one host together (a hard-affinity group's members), or one."""
    servers: list[Server]
    modes: list[str]
    need: Resources
    zone: Optional[str]
    anti_groups: tuple[str, ...]
    affinity_group: Optional[str] = None


class _Placer:
    """Spread placement with lazily updated max-heaps of free RAM, one heap per zone.

    Choosing a host is O(log H) while the best host fits; hosts rejected by a constraint are
    set aside and pushed back, and the scan stops as soon as the heap top has too little RAM
    (nothing below it can have more).
    """

    def __init__(self, hosts: Iterable[Host]):
        self.free: dict[str, list[float]] = {}
        self.zone_of: dict[str, Optional[str]] = {}
        self.version: dict[str, int] = {}
        self.heaps: dict[Optional[str], list[tuple[float, float, str, int]]] = {}
        for h in hosts:
            # Host.free, without building a Resources per host (the same subtractions).
            c, u = h.capacity, h.used
            vcpus, mem = c.vcpus - u.vcpus, c.memory_mb - u.memory_mb
            self.free[h.name] = [vcpus, mem, c.disk_gb - u.disk_gb, c.pcpus - u.pcpus]
            zone = h.service.zone
            self.zone_of[h.name] = zone
            self.version[h.name] = 0
            self.heaps.setdefault(zone, []).append((-mem, -vcpus, h.name, 0))
        for heap in self.heaps.values():
            heapq.heapify(heap)

    def fits(self, name: str, need: Resources) -> bool:
        v, m, d, p = self.free[name]
        return need.vcpus <= v and need.memory_mb <= m and need.disk_gb <= d and need.pcpus <= p

    def take(self, name: str, need: Resources) -> None:
        f = self.free[name]
        f[0] -= need.vcpus
        f[1] -= need.memory_mb
        f[2] -= need.disk_gb
        f[3] -= need.pcpus
        self.version[name] += 1
        heapq.heappush(self.heaps[self.zone_of[name]], (-f[1], -f[0], name, self.version[name]))

    def choose(self, need: Resources, zone: Optional[str], banned: set[str]) -> Optional[str]:
        zones = [zone] if zone is not None else list(self.heaps)
        best: Optional[tuple[float, float, str]] = None
        for z in zones:
            got = self._choose_in(self.heaps.get(z, []), need, banned)
            if got is not None:
                f = self.free[got]
                key = (-f[1], -f[0], got)
                if best is None or key < best:
                    best = key
        return best[2] if best else None

    def _choose_in(self, heap: list, need: Resources, banned: set[str]) -> Optional[str]:
        # Entries are unique (name, version), so the heap's pop order depends only on their
        # keys: the entries set aside can be pushed back in any order.
        aside = []
        found = None
        while heap:
            neg_mem, _, name, ver = heap[0]
            if ver != self.version[name]:
                heapq.heappop(heap)          # stale entry: the host's free space changed
                continue
            if -neg_mem < need.memory_mb:
                break                        # max-heap on RAM: nothing further down fits
            if name not in banned and self.fits(name, need):
                found = name                 # left in the heap: take() makes the entry stale
                break
            aside.append(heapq.heappop(heap))
        for entry in aside:
            heapq.heappush(heap, entry)
        return found


def plan_drain(state: CloudState, sources: Sequence[str], *, targets: Sequence[str] = (),
               mode: str = "auto", order: str = "largest", reason: Optional[str] = None,
               max_parallel: int = 4, max_per_host: int = 2,
               created_at: Optional[str] = None,
               avoid: Optional[Mapping[str, Collection[str]]] = None) -> DrainPlan:
    """Plan a destination for every server on `sources` (the hosts being emptied).

    `avoid` {server id: hosts}: destinations not to choose for that server (Nova refused them
    for it earlier in the same drain).

    Bad input (unknown host, a source named in --to, bad mode/order/caps) raises before any
    planning; a server that cannot be placed becomes a step with `dest=None` and a reason.
    """
    sources = tuple(dict.fromkeys(sources))
    targets = tuple(dict.fromkeys(targets))
    _validate(state, sources, targets, mode, order, max_parallel, max_per_host)
    hosts = {h.name: h for h in state.hosts}
    source_set = set(sources)

    checks: list[Check] = []
    eligible = _eligible_hosts(state.hosts, source_set, set(targets), checks)

    # Only the servers on the sources are moved; group constraints need every member's host.
    on_sources = [s for s in state.servers if s.host in source_set]
    groups = {g.id: g for g in state.groups}
    hard_groups_of = _hard_groups_by_server(on_sources, groups)
    relevant_members: set[str] = set()
    for gids in hard_groups_of.values():
        for gid in gids:
            relevant_members.update(groups[gid].members)
    member_host = {s.id: s.host for s in state.servers if s.id in relevant_members}
    # Hosts that hold members of each hard group (the drained hosts are being emptied).
    group_hosts: dict[str, set[str]] = {}
    for gids in hard_groups_of.values():
        for gid in gids:
            if gid not in group_hosts:
                group_hosts[gid] = {member_host[m] for m in groups[gid].members
                                    if member_host.get(m) and member_host[m] not in source_set}

    steps: dict[str, DrainStep] = {}
    units: list[_Unit] = []
    affinity_units: dict[str, _Unit] = {}
    need_of_server = _NeedMemo()
    unmovable_mode = LIVE if mode == LIVE else COLD
    for server in on_sources:
        step_mode, why = move_mode(server, mode)
        gids = hard_groups_of.get(server.id, ())
        step = DrainStep(server_id=server.id, server_name=server.name, source=server.host or "",
                         dest=None, mode=step_mode or unmovable_mode,
                         skip_reason=why, need=need_of_server(server), status=server.status, groups=gids)
        steps[server.id] = step
        if why:
            continue
        src = hosts.get(server.host)
        zone = src.service.zone if src is not None else server.zone
        anti: tuple[str, ...] = ()
        aff: Optional[str] = None
        if gids:                  # most servers are in no hard group: skip the scans
            anti = tuple(g for g in gids if groups[g].policy == HARD_ANTI_AFFINITY)
            aff = next((g for g in gids if groups[g].policy == HARD_AFFINITY), None)
        if aff is not None and aff in affinity_units:
            u = affinity_units[aff]
            u.servers.append(server)
            u.modes.append(step_mode)
            u.need = u.need + step.need
            u.anti_groups = tuple(dict.fromkeys(u.anti_groups + anti))
            continue
        u = _Unit([server], [step_mode], step.need, zone, anti, aff)
        units.append(u)
        if aff is not None:
            affinity_units[aff] = u

    placer = _Placer(hosts[n] for n in eligible)
    # Hardest first: affinity units (few hosts allowed), then by size, so big servers are not
    # left without room by small ones.
    units.sort(key=lambda u: (u.affinity_group is None, -u.need.memory_mb, -u.need.vcpus,
                              -u.need.disk_gb, u.servers[0].name, u.servers[0].id))
    for u in units:
        dest = _place(u, placer, eligible, group_hosts, avoid)
        for server in u.servers:
            step = steps[server.id]
            if dest is None:
                step.skip_reason = _why_unplaced(u, placer, eligible, group_hosts, hosts, source_set, avoid)
            else:
                step.dest = dest
        if dest is not None:
            placer.take(dest, u.need)
            for gid in u.anti_groups:
                group_hosts[gid].add(dest)
            if u.affinity_group:
                group_hosts[u.affinity_group].add(dest)

    ordered = _ordered(list(steps.values()), order)
    moves = [s for s in ordered if s.dest]
    skipped = [s for s in ordered if not s.dest]
    checks.append(Check("servers", True,
                        f"{len(ordered)} on {', '.join(sources)}: {len(moves)} to move "
                        f"({sum(s.mode == LIVE for s in moves)} live, {sum(s.mode == COLD for s in moves)} cold), "
                        f"{len(skipped)} skipped"))
    if skipped:
        checks.append(Check("skipped", False, "; ".join(f"{s.server_name}: {s.skip_reason}" for s in skipped[:5])
                            + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")))
    return DrainPlan(kind="drain", source=sources[0] if len(sources) == 1 else ",".join(sources),
                     steps=moves + skipped, created_at=created_at, sources=sources, targets=targets,
                     mode=mode, order=order, reason=reason, max_parallel=max_parallel,
                     max_per_host=max_per_host, checks=checks)


def _validate(state: CloudState, sources: Sequence[str], targets: Sequence[str], mode: str,
              order: str, max_parallel: int, max_per_host: int) -> None:
    if not sources:
        raise UsageError("name at least one host to drain")
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}: expected one of {', '.join(ORDERS)}")
    if max_parallel < 1 or max_per_host < 1:
        raise UsageError("--max-parallel and --max-per-host must be at least 1")
    names = {h.name for h in state.hosts}
    for name in list(sources) + list(targets):
        if name not in names:
            # Operators often type the hypervisor hostname; say which name to use instead.
            by_node = {h.hypervisor_hostname: h.name for h in state.hosts if h.hypervisor_hostname}
            hint = f" (its compute service host is {by_node[name]!r})" if name in by_node else ""
            raise NotFound(f"no compute host named {name!r}{hint}")
    both = set(sources) & set(targets)
    if both:
        raise UsageError(f"host {sorted(both)[0]!r} is both drained and a --to destination")


def _eligible_hosts(hosts: Sequence[Host], sources: set[str], targets: set[str],
                    checks: list[Check]) -> list[str]:
    eligible, disabled, down = [], [], []
    for h in hosts:
        if h.name in sources or (targets and h.name not in targets):
            continue
        if not h.service.enabled:
            disabled.append(h.name)
        elif not h.service.up:
            down.append(h.name)
        else:
            eligible.append(h.name)
    for name in sorted(sources):
        checks.append(Check(f"source {name}", True, "will be disabled, then emptied"))
    detail = f"{len(eligible)} eligible" + (f": {', '.join(_few(eligible))}" if eligible else "")
    if disabled:
        detail += f"; excluded disabled: {', '.join(_few(disabled))}"
    if down:
        detail += f"; excluded down: {', '.join(_few(down))}"
    checks.append(Check("destinations", bool(eligible), detail))
    if targets and (disabled or down):
        checks.append(Check("--to", False, "some --to hosts are disabled or down: "
                            + ", ".join(sorted(disabled + down))))
    return eligible


def _few(names: list[str], n: int = 5) -> list[str]:
    names = sorted(names)
    return names if len(names) <= n else names[:n] + [f"... ({len(names) - n} more)"]


def _hard_groups_by_server(servers: Sequence[Server], groups: dict[str, ServerGroup]) -> dict[str, tuple[str, ...]]:
    """Hard-policy groups of each server, from the server's own list and the groups' member lists."""
    ids = {s.id for s in servers}
    out: dict[str, list[str]] = {}
    for s in servers:
        for gid in s.server_groups:
            if gid in groups and groups[gid].policy in (HARD_AFFINITY, HARD_ANTI_AFFINITY):
                out.setdefault(s.id, []).append(gid)
    for g in groups.values():
        if g.policy not in (HARD_AFFINITY, HARD_ANTI_AFFINITY):
            continue
        for m in g.members:
            if m in ids and g.id not in out.get(m, ()):
                out.setdefault(m, []).append(g.id)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _place(u: _Unit, placer: _Placer, eligible: list[str], group_hosts: dict[str, set[str]],
           avoid: Optional[Mapping[str, Collection[str]]] = None) -> Optional[str]:
    banned: set[str] = set()
    for gid in u.anti_groups:
        banned |= group_hosts[gid]
    if avoid:
        for server in u.servers:
            banned |= set(avoid.get(server.id, ()))
    if u.affinity_group is not None:
        # Only hosts already holding members pass Nova's affinity filter: choose among them.
        allowed = [h for h in group_hosts[u.affinity_group] if h in placer.free
                   and h not in banned and (u.zone is None or placer.zone_of[h] == u.zone)
                   and placer.fits(h, u.need)]
        if not allowed:
            return None
        return min(allowed, key=lambda h: (-placer.free[h][1], -placer.free[h][0], h))
    return placer.choose(u.need, u.zone, banned)


def _why_unplaced(u: _Unit, placer: _Placer, eligible: list[str], group_hosts: dict[str, set[str]],
                  hosts: dict[str, Host], sources: set[str],
                  avoid: Optional[Mapping[str, Collection[str]]] = None) -> str:
    """Explain a failed placement (runs only on failure, so a full scan is fine)."""
    need = u.need
    want = (f"needs {need.vcpus:g} vCPU, {need.memory_mb:g} MB RAM, {need.disk_gb:g} GB disk"
            + (f", {need.pcpus:g} dedicated CPU (PCPU)" if need.pcpus else ""))
    if not eligible:
        return "no eligible destination (all other hosts disabled, down or excluded by --to)"
    in_zone = [h for h in eligible if u.zone is None or placer.zone_of[h] == u.zone]
    if not in_zone:
        return f"no eligible destination in availability zone {u.zone!r}"
    if u.affinity_group is not None:
        members_at = sorted(group_hosts[u.affinity_group])
        if not members_at:
            return (f"hard affinity group {u.affinity_group}: Nova only accepts hosts already holding "
                    f"members and all of them are on the drained host(s); move the group by hand")
        return (f"hard affinity group {u.affinity_group}: members live on {', '.join(members_at)}, "
                f"none eligible with room ({want})")
    banned: set[str] = set()
    for gid in u.anti_groups:
        banned |= group_hosts[gid]
    fitting = [h for h in in_zone if placer.fits(h, need)]
    refused = {h for server in u.servers for h in (avoid or {}).get(server.id, ())}
    if fitting and refused and all(h in banned or h in refused for h in fitting):
        return (f"Nova refused the destinations with room for it ({', '.join(sorted(refused & set(fitting)))}) "
                "earlier in this drain")
    if fitting and all(h in banned for h in fitting):
        return (f"anti-affinity group {', '.join(u.anti_groups)}: every host with room already holds "
                f"a member")
    return f"no capacity: {want}, no eligible host has that much free"


def _ordered(steps: list[DrainStep], order: str) -> list[DrainStep]:
    if order == "largest":
        key = lambda s: (-s.need.memory_mb, -s.need.vcpus, -s.need.disk_gb, s.server_name, s.server_id)  # noqa: E731
    elif order == "smallest":
        key = lambda s: (s.need.memory_mb, s.need.vcpus, s.need.disk_gb, s.server_name, s.server_id)  # noqa: E731
    elif order == "name":
        key = lambda s: (s.server_name, s.server_id)  # noqa: E731
    else:
        key = lambda s: s.server_id  # noqa: E731
    return sorted(steps, key=key)


# ---------------------------------------------------------------------------------------------
# Plans as data: JSON that an operator can review, keep, and apply later.

PLAN_FORMAT = "novamove-plan/1"


def plan_to_dict(plan: DrainPlan) -> dict:
    """A JSON-ready dict: every field, nothing secret (names and ids only)."""
    if plan.kind == "rebalance":
        from novamove import rebalance_io
        return rebalance_io.plan_to_dict(plan)
    return {
        "format": PLAN_FORMAT,
        "kind": plan.kind,
        "cloud": plan.cloud,
        "created_at": plan.created_at,
        "sources": list(plan.sources),
        "targets": list(plan.targets),
        "mode": plan.mode,
        "order": plan.order,
        "reason": plan.reason,
        "max_parallel": plan.max_parallel,
        "max_per_host": plan.max_per_host,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in plan.checks],
        "steps": [{
            "server_id": s.server_id, "server_name": s.server_name, "source": s.source, "dest": s.dest,
            "mode": s.mode, "skip_reason": s.skip_reason, "status": getattr(s, "status", ""),
            "groups": list(getattr(s, "groups", ())),
            "need": {"vcpus": s.need.vcpus, "memory_mb": s.need.memory_mb, "disk_gb": s.need.disk_gb,
                     "pcpus": s.need.pcpus},
        } for s in plan.steps],
    }


def plan_from_dict(data: object) -> DrainPlan:  # or a RebalancePlan (kind "rebalance")
    """Rebuild a plan from `plan_to_dict` output; anything malformed is a one-line UsageError."""
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise UsageError(f"not a novamove plan (expected \"format\": \"{PLAN_FORMAT}\")")
    if data.get("kind") == "rebalance":
        from novamove import rebalance_io
        return rebalance_io.plan_from_dict(data)
    try:
        if data["kind"] != "drain":
            raise UsageError(f"unsupported plan kind {data['kind']!r}")
        steps = []
        if not isinstance(data["steps"], list):
            raise UsageError("malformed plan: \"steps\" must be a list of steps")
        for i, raw in enumerate(data["steps"], 1):
            if not isinstance(raw, dict):
                raise UsageError(f"malformed plan: step {i} is not an object")
            need = raw.get("need") or {}
            mode = raw["mode"]
            if mode not in (LIVE, COLD):
                raise UsageError(f"plan step for {raw['server_id']}: bad mode {mode!r}")
            steps.append(DrainStep(
                server_id=str(raw["server_id"]), server_name=str(raw.get("server_name") or raw["server_id"]),
                source=str(raw["source"]), dest=raw.get("dest"), mode=mode, skip_reason=raw.get("skip_reason"),
                need=Resources(float(need.get("vcpus", 0)), float(need.get("memory_mb", 0)),
                               float(need.get("disk_gb", 0)), float(need.get("pcpus", 0))),
                status=str(raw.get("status") or ""), groups=tuple(raw.get("groups") or ())))
        sources = tuple(data["sources"])
        plan = DrainPlan(kind="drain", source=sources[0] if len(sources) == 1 else ",".join(sources),
                         steps=steps, created_at=data.get("created_at"), sources=sources,
                         targets=tuple(data.get("targets") or ()), mode=data.get("mode", "auto"),
                         order=data.get("order", "largest"), reason=data.get("reason"),
                         max_parallel=int(data.get("max_parallel", 4)), max_per_host=int(data.get("max_per_host", 2)),
                         checks=[Check(c["name"], bool(c["ok"]), c.get("detail", "")) for c in data.get("checks", [])],
                         cloud=data.get("cloud"))
    except UsageError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"malformed plan: {type(exc).__name__}: {exc}") from None
    if not plan.sources:
        raise UsageError("malformed plan: no source host")
    if plan.max_parallel < 1 or plan.max_per_host < 1:
        raise UsageError("malformed plan: caps must be at least 1")
    return plan


def save_plan(plan: DrainPlan, path: str) -> None:
    import json
    import os
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(plan_to_dict(plan), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)        # a reader never sees half a plan


def load_plan(path: str) -> DrainPlan:
    import json
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"plan file {path!r} not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read plan {path!r}: {exc}") from None
    return plan_from_dict(data)
