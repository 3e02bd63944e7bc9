"""Planning a campaign stage by stage over a simulated cloud (N+K), fast enough for 10,000 hosts;
and the naive per-stage replanning it is measured against.
"""


from __future__ import annotations

import dataclasses
import gc
import heapq
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional, Sequence

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Host, Resources, Server, ServerGroup
from novamove.engine.tags import is_campaign_tag, lease_of, reason_run_id
from novamove.planner import CloudState, DrainStep, move_mode, plan_drain
from novamove.engine.campaign.intents import (GATE_SECONDS, HOOK_SECONDS, MOVE_SECONDS, SKIP, STOP,
                                              campaign_owns, intents_of, order_hosts)
from novamove.engine.campaign.planning import (CampaignPlan, HostPlan, Stage, _fmt, drain_seconds, estimate,
                                               host_plan)


# ------------------------------------------------------------------------------- the campaign

class _Sim:
    """The cloud as the stages leave it: servers indexed by host, hosts' usage updated as
    moves land, and per zone a lazily updated max-heap of free RAM over the hosts that can
    receive (enabled, up). Each stage is planned over a small CloudState: the stage's servers,
    their group mates, and the candidate destinations (the most free RAM first, which is what
    the planner's spread placement picks from), not the whole cloud."""

    def __init__(self, state: CloudState):
        self.hosts: dict[str, Host] = {h.name: h for h in state.hosts}
        self.on_host: dict[str, dict[str, Server]] = {}
        self.where: dict[str, Server] = {}
        self.moved_to: dict[str, str] = {}     # server id -> host, for servers moved by the plan
        for s in state.servers:
            self.where[s.id] = s
            if s.host:
                self.on_host.setdefault(s.host, {})[s.id] = s
        self.groups = list(state.groups)
        self.groups_of: dict[str, list[ServerGroup]] = {}
        for g in self.groups:
            for m in g.members:
                self.groups_of.setdefault(m, []).append(g)
        self.version: dict[str, int] = {}
        self.heaps: dict[Optional[str], list] = {}
        self.neg_mem: dict[str, float] = {}              # the key of each host's current heap entry
        self.zone_hosts: dict[Optional[str], set[str]] = {}   # receiving hosts per zone
        self.receiving = 0
        total = [0.0, 0.0, 0.0, 0.0]
        for h in state.hosts:
            if h.service.enabled and h.service.up:
                self.receiving += 1
                f = h.free
                for i, v in enumerate((f.vcpus, f.memory_mb, f.disk_gb, f.pcpus)):
                    total[i] += max(v, 0)
                self.version[h.name] = 0
                self.neg_mem[h.name] = -f.memory_mb
                self.heaps.setdefault(h.zone, []).append((-f.memory_mb, h.name, 0))
                self.zone_hosts.setdefault(h.zone, set()).add(h.name)
        for heap in self.heaps.values():
            heapq.heapify(heap)
        self.total = total

    def current(self, s: Server) -> Server:
        """The server with the host the plan so far put it on (built only when needed)."""
        host = self.moved_to.get(s.id)
        return s if host is None or host == s.host else s.replace(host=host)

    def servers_on(self, host: str) -> list[Server]:
        servers = self.on_host.get(host, {}).values()
        if not self.moved_to:            # before the first stage: every server is where it was
            return list(servers)
        return [self.current(s) for s in servers]

    def free_total(self, out: Sequence[str]) -> tuple[int, Resources]:
        """Hosts that can receive with `out` out of service, and their free space in all."""
        t = list(self.total)
        n = self.receiving
        for name in out:
            if name in self.version:
                n -= 1
                f = self.hosts[name].free
                for i, v in enumerate((f.vcpus, f.memory_mb, f.disk_gb, f.pcpus)):
                    t[i] -= max(v, 0)
        return n, Resources(*t)

    def top(self, zone: Optional[str], count: int, exclude: set[str]) -> list[str]:
        """The `count` receiving hosts of `zone` (None: every zone) with the most free RAM."""
        zones = [zone] if zone in self.heaps else (list(self.heaps) if zone is None else [])
        out: list[str] = []
        for z in zones:
            allowed = self.zone_hosts[z] - exclude
            if len(allowed) <= 2 * count:
                # Few hosts to choose from (the early stages, when most hosts are still to be
                # emptied): rank them directly instead of popping the heap through all the
                # excluded ones and pushing them back. Same keys as the heap, same answer.
                ranked = heapq.nsmallest(count, ((self.neg_mem[n], n) for n in allowed))
                out.extend(n for _, n in ranked)
                continue
            heap = self.heaps[z]
            aside = []
            got = 0
            while heap and got < count:
                entry = heapq.heappop(heap)
                if entry[2] != self.version[entry[1]]:
                    continue                 # stale: the host's free space changed
                aside.append(entry)
                if entry[1] not in exclude:
                    out.append(entry[1])
                    got += 1
            for entry in aside:
                heapq.heappush(heap, entry)
        return out

    def sub_state(self, hosts: Sequence[str], leave: set[str], candidates: Optional[set[str]] = None) -> CloudState:
        servers: dict[str, Server] = {}
        groups: dict[str, ServerGroup] = {}
        for h in hosts:
            for s in self.on_host.get(h, {}).values():
                if s.id in leave:
                    continue
                servers[s.id] = self.current(s)
                for g in self.groups_of.get(s.id, ()):
                    groups[g.id] = g
        for g in groups.values():
            for m in g.members:
                if m not in servers and m in self.where:
                    servers[m] = self.current(self.where[m])
        if candidates is None:
            host_list = list(self.hosts.values())
        else:
            # Hosts of group mates stay in view (affinity can only go there).
            names = set(candidates) | set(hosts) | {s.host for s in servers.values() if s.host in self.hosts}
            host_list = [self.hosts[n] for n in names]
        return CloudState(hosts=host_list, servers=list(servers.values()), groups=list(groups.values()))

    def zone_counts(self, hosts: Sequence[str], leave: set[str]) -> dict[Optional[str], int]:
        counts: dict[Optional[str], int] = {}
        for h in hosts:
            z = self.hosts[h].zone
            counts[z] = counts.get(z, 0) + sum(1 for sid in self.on_host.get(h, {}) if sid not in leave)
        return counts

    def apply(self, moves: Sequence[DrainStep]) -> None:
        """Move the servers of `moves` and update the hosts' usage and free-RAM heaps."""
        delta: dict[str, list[float]] = {}
        on_host, moved_to, where = self.on_host, self.moved_to, self.where
        for st in moves:
            sid, source, dest, n = st.server_id, st.source, st.dest, st.need
            here = on_host.get(source)
            s = here.pop(sid, None) if here is not None else None
            moved_to[sid] = dest
            on_host.setdefault(dest, {})[sid] = s if s is not None else where[sid]
            src = delta.get(source)
            if src is None:
                src = delta[source] = [0.0, 0.0, 0.0, 0.0]
            dst = delta.get(dest)
            if dst is None:
                dst = delta[dest] = [0.0, 0.0, 0.0, 0.0]
            vcpus, mem, disk, pcpus = n.vcpus, n.memory_mb, n.disk_gb, n.pcpus
            src[0] -= vcpus
            src[1] -= mem
            src[2] -= disk
            src[3] -= pcpus
            dst[0] += vcpus
            dst[1] += mem
            dst[2] += disk
            dst[3] += pcpus
        total, hosts, version = self.total, self.hosts, self.version
        for name, d in delta.items():
            h = hosts[name]
            c, u = h.capacity, h.used
            old = (c.vcpus - u.vcpus, c.memory_mb - u.memory_mb, c.disk_gb - u.disk_gb, c.pcpus - u.pcpus)
            used = Resources(u.vcpus + d[0], u.memory_mb + d[1], u.disk_gb + d[2], u.pcpus + d[3])
            hosts[name] = Host(h.name, h.service, h.hypervisor_hostname, c, used)
            if name in version:
                for i in range(4):
                    total[i] += max(old[i] - d[i], 0) - max(old[i], 0)
                version[name] += 1
                neg_mem = self.neg_mem[name] = d[1] - old[1]
                heapq.heappush(self.heaps[h.service.zone], (neg_mem, name, version[name]))


# Reasons of unplaced servers that a wider choice of destinations might cure.
_CAPACITY_REASONS = ("no capacity", "no eligible destination", "anti-affinity group")


def _needs_wider(plan, where: Mapping[str, Server]) -> bool:
    return any(move_mode(where[st.server_id], "auto")[1] is None
               and (st.skip_reason or "").startswith(_CAPACITY_REASONS) for st in plan.skipped)


def _plan_stage(sim: _Sim, group: Sequence[str], pending: set[str], leave: set[str], max_parallel: int,
                max_per_host: int):
    """The stage's drain plan: first among the hosts the campaign will not empty again (a server
    moved onto a later stage's host would move twice), the most free RAM first; wider when
    something does not fit; the whole cloud before a stage is declared not to fit.

    `pending`: this stage's hosts and every later stage's (the caller keeps it up to date
    rather than building a set of all later hosts per stage)."""
    counts = sim.zone_counts(group, leave)
    out = set(group)
    tries = []
    if len(pending) > len(out):          # later stages exist: keep off their hosts first
        tries.append(pending)
    tries.append(out)
    for exclude in tries:
        cand: set[str] = set()
        for z, n in counts.items():
            cand.update(sim.top(z, n + 32, exclude))
        plan = plan_drain(sim.sub_state(group, leave, cand), group, mode="auto", max_parallel=max_parallel,
                          max_per_host=max_per_host)
        if not _needs_wider(plan, sim.where):
            return plan
    return plan_drain(sim.sub_state(group, leave), group, mode="auto", max_parallel=max_parallel,
                      max_per_host=max_per_host)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a campaign is planned.

    Planning a big cloud allocates about a million small objects (steps, heap entries, the
    per-stage views) that live until the plan is returned. Each burst of allocations starts a
    collection, and the oldest generation's walk the whole cloud model every time: about a
    third of the planning time at 200,000 servers, for nothing, since planning makes no
    reference cycles. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_gc_paused()
def plan_campaign(state: CloudState, hosts: Sequence[str], *, max_hosts: int = 1, order: str = "fewest",
                  intents: Optional[Mapping[str, str]] = None, allow_skip: bool = False,
                  allow_unmovable: bool = False, move_back: bool = False, max_parallel: int = 4,
                  max_per_host: int = 2, move_seconds: float = MOVE_SECONDS,
                  hook_seconds: float = HOOK_SECONDS, gate_seconds: float = GATE_SECONDS,
                  detail_limit: int = 0, run_id: Optional[str] = None) -> CampaignPlan:
    """The whole campaign over `state` (pure): order, per-host intents, stages of at most
    `max_hosts`, the N+K check of every stage and an estimate of the time.

    `intents` {server id: live|cold|stop|skip}; None reads them from the servers' tags.
    `detail_limit` > 0 keeps at most that many destinations' free space per stage (big clouds).
    `run_id`: the campaign being continued (hosts disabled by it are still serviced; a host
    disabled by anyone else is not: their state is theirs).
    """
    if not isinstance(max_hosts, int) or isinstance(max_hosts, bool) or max_hosts < 1:
        raise UsageError(f"max_hosts must be a whole number of at least 1, not {max_hosts!r}")
    known = {h.name for h in state.hosts}
    for h in hosts:
        if h not in known:
            raise NotFound(f"no compute host named {h!r}")
    sim = _Sim(state)
    warnings: list[str] = []
    if intents is None:
        wanted = [s for h in hosts for s in sim.servers_on(h)]
        intents, warnings = intents_of(wanted)
    counts = {h: len(sim.on_host.get(h, {})) for h in hosts}
    ordered = order_hosts(list(dict.fromkeys(hosts)), counts, order)
    host_plans: dict[str, HostPlan] = {}
    problems: list[str] = []
    for h in ordered:
        hp = host_plan(h, sim.servers_on(h), intents, allow_skip=allow_skip, allow_unmovable=allow_unmovable)
        svc = sim.hosts[h].service
        if not svc.enabled and (run_id is None or not campaign_owns(svc.disabled_reason, run_id)):
            hp.serviced = False
            other = reason_run_id(svc.disabled_reason)
            lease = lease_of(svc.disabled_reason)
            hp.why_not = (f"maintenance campaign {other} holds it (its lease runs until {lease:%H:%M:%S} UTC, "
                          f"renewed while it works on it): wait for it, or `novamove campaign stop {other}` "
                          "where it runs" if lease is not None and is_campaign_tag(svc.disabled_reason) else
                          f"disabled by novamove run {other} ({svc.disabled_reason}): finish that run first "
                          f"(`novamove maintain --resume {other}` for a campaign, `novamove undrain {h}` "
                          "for a drain)" if other else
                          f"disabled by someone else ({svc.disabled_reason or 'no reason given'}): "
                          "left as it is")
        elif not svc.up and hp.moves:
            hp.serviced = False
            hp.why_not = "its nova-compute is down and Nova moves no server off a down compute"
        host_plans[h] = hp
        if not hp.serviced:
            warnings.append(f"{h} not serviced: {hp.why_not}")
    serviced = [h for h in ordered if host_plans[h].serviced]
    leave = {sid for sid, i in intents.items() if i in (STOP, SKIP)}
    stages: list[Stage] = []
    pending = set(serviced)              # hosts of this stage and the later ones
    for k in range(0, len(serviced), max_hosts):
        group = serviced[k:k + max_hosts]
        stage = Stage(len(stages) + 1, group)
        plan = _plan_stage(sim, group, pending, leave, max_parallel, max_per_host)
        pending.difference_update(group)
        for st in plan.steps:
            intent = intents.get(st.server_id)
            if st.server_id in leave:
                # Brought into the stage's view as a group mate (its group binds the others'
                # destinations); a stop/skip server itself never moves.
                st.dest, st.skip_reason = None, f"intent {intent}: stays on its host"
                continue
            if intent in (LIVE, COLD) and st.dest:
                _, why = move_mode(sim.where[st.server_id], intent)
                if why:
                    st.dest, st.skip_reason = None, f"intent {intent}: {why}"
                    continue
                st.mode = intent
        stage.moves = plan.moves
        # Servers Nova could move but that found no destination: the stage does not fit.
        stage.unplaced = [st for st in plan.skipped if st.server_id not in leave
                          and move_mode(sim.where[st.server_id], intents.get(st.server_id, "auto")
                                       if intents.get(st.server_id) in (LIVE, COLD) else "auto")[1] is None]
        stage.eligible, total = sim.free_total(group)
        stage.free_total = total
        for hname in group:
            host_plans[hname].stage = stage.index
        if stage.unplaced:
            stage.ok = False
            need = Resources()
            for st in stage.unplaced:
                need = need + st.need
            names = "; ".join(f"{st.server_name} ({st.skip_reason})" for st in stage.unplaced[:3])
            more = f"; and {len(stage.unplaced) - 3} more" if len(stage.unplaced) > 3 else ""
            stage.problem = (f"stage {stage.index} ({', '.join(group)} out of service): "
                             f"{len(stage.unplaced)} of {len(plan.steps)} server(s) find no destination, "
                             f"needing {_fmt(need)} in all; {stage.eligible} host(s) can receive, "
                             f"{_fmt(total)} free in all: {names}{more}")
            problems.append(stage.problem)
        sim.apply(stage.moves)
        dests = {st.dest for st in stage.moves}
        if detail_limit and len(dests) > detail_limit:
            dests = set(sorted(dests)[:detail_limit])
        stage.free_after = {d: sim.hosts[d].free for d in dests}
        if move_back:
            sim.apply([dataclasses.replace(st, source=st.dest, dest=st.source) for st in stage.moves])
        stages.append(stage)
    per_drain = []
    backs = []
    for h in serviced:
        d = drain_seconds(host_plans[h].moves, max_parallel, max_per_host, move_seconds)
        host_plans[h].estimate_seconds = d + hook_seconds + gate_seconds + (d if move_back else 0.0)
        per_drain.append(d)
        backs.append(d if move_back else 0.0)
    moves = [host_plans[h].moves for h in serviced]

    def together(idx: list[int]) -> float:
        return max(max(per_drain[i] for i in idx),
                   drain_seconds(sum(moves[i] for i in idx), max_parallel, max_per_host, move_seconds, len(idx)))
    est = estimate(per_drain, max_hosts, hook_seconds, gate_seconds, backs, together)
    return CampaignPlan(hosts=serviced, host_plans=host_plans, stages=stages, max_hosts=max_hosts,
                        problems=problems, warnings=warnings, estimate_seconds=est, intents=dict(intents))


def naive_plan_campaign(state: CloudState, hosts: Sequence[str], *, max_hosts: int = 1) -> list[bool]:
    """The baseline the benchmark compares with: every stage planned with plan_drain over the
    whole cloud rebuilt from scratch (every server, every group). Returns each stage's fit."""
    servers = list(state.servers)
    host_objs = {h.name: h for h in state.hosts}
    oks = []
    for k in range(0, len(hosts), max_hosts):
        group = list(hosts[k:k + max_hosts])
        plan = plan_drain(CloudState(list(host_objs.values()), servers, state.groups), group)
        oks.append(not any(move_mode(s_, "auto")[1] is None for s_ in
                           (x for x in servers if x.id in {st.server_id for st in plan.skipped})))
        moved = {st.server_id: st for st in plan.moves}
        delta: dict[str, Resources] = {}
        new = []
        for s in servers:
            st = moved.get(s.id)
            if st:
                new.append(s.replace(host=st.dest))
                delta[st.source] = delta.get(st.source, Resources()) - st.need
                delta[st.dest] = delta.get(st.dest, Resources()) + st.need
            else:
                new.append(s)
        servers = new
        for name, d in delta.items():
            h = host_objs[name]
            host_objs[name] = dataclasses.replace(h, used=h.used + d)
    return oks

