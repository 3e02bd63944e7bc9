"""Test helpers for the rebalance planner: random clouds, a replay against a simulated
Placement, and the exact optimum of the same problem from a MILP solver (SciPy's HiGHS).

The optimum is of *the same problem*: the same servers may move (the planner's own verdicts,
`novamove.rebalance.movable`), each stays in its zone, hard anti-affinity holds, capacity holds
in the final state. By default it ignores the planner's *peak rule* (a destination checked at
its peak: what it holds now plus everything moved into it, nothing moved out counted as gone;
a host a hard anti-affinity member leaves takes no other member), which the planner keeps so
that any order of the moves, several at once, is safe. `peak=True` adds it (one row per host
and resource, and per group and host): the planner's own problem, an ordering-free sufficient
condition for "valid at every intermediate step". Without it, the spread optimum's plan is
checked for a valid order (`ordered`: moves one at a time, each holding its allocation on both
hosts, run whenever its destination has room; True means the optimum is reachable through valid
intermediate states, so the peak rule is what keeps a plan above it).
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Optional

from novamove.model import Flavor, Host, Resources, Server, ServerGroup, Service
from novamove.planner import HARD_AFFINITY, HARD_ANTI_AFFINITY, CloudState
from novamove.rebalance import RebalancePlan, _Hosts, movable, usage_of
from novamove.planner import _NeedMemo

FLAVORS = [Flavor("nano", 1, 512, 1), Flavor("small", 2, 2048, 10), Flavor("medium", 4, 4096, 20),
           Flavor("large", 8, 8192, 40), Flavor("pinned", 2, 2048, 10, dedicated_cpus=True)]


def random_cloud(rng: random.Random, n_hosts: int, fill: float, zones: int = 1, scale: int = 1,
                 groups: int = 2, pcpu_hosts: float = 0.3, skewed: bool = True
                 ) -> tuple[CloudState, dict[str, str]]:
    """Hosts of a few sizes, servers booted onto them skewed (a few hosts hold most), some in
    anti-affinity/affinity/soft groups, some with intents, some stopped or in ERROR."""
    hosts = []
    for i in range(n_hosts):
        size = rng.choice([1, 1, 2])
        zone = f"az{i % zones}"
        pcpus = 8 * size if rng.random() < pcpu_hosts else 0
        size *= scale
        cap = Resources(16 * size, 16384 * size, 200 * size, pcpus)
        hosts.append(Host(f"h{i:02d}", Service(id=f"s{i}", host=f"h{i:02d}", zone=zone),
                          capacity=cap, used=Resources()))
    used = {h.name: Resources() for h in hosts}
    servers: list[Server] = []
    weights = [rng.random() ** (3 if skewed else 1) for _ in hosts]
    target = fill * sum(h.capacity.memory_mb for h in hosts)
    total = 0.0
    n = 0
    attempts = 0
    while total < target and attempts < 4000:
        attempts += 1
        flavor = rng.choice(FLAVORS)
        need = flavor.resources
        h = rng.choices(hosts, weights)[0]
        if not (used[h.name] + need).__class__ or not h.capacity.fits(used[h.name] + need):
            continue
        used[h.name] = used[h.name] + need
        total += need.memory_mb
        status = rng.choices(["ACTIVE", "SHUTOFF", "ERROR", "PAUSED"], [80, 14, 3, 3])[0]
        servers.append(Server(id=f"v{n:03d}", name=f"vm{n:03d}", status=status, host=h.name,
                              flavor=flavor, zone=h.service.zone))
        n += 1
    hosts = [Host(h.name, h.service, capacity=h.capacity, used=used[h.name]) for h in hosts]
    group_list = []
    policies = [HARD_ANTI_AFFINITY, HARD_AFFINITY, "soft-anti-affinity", "soft-affinity"]
    for g in range(groups):
        policy = policies[g % len(policies)]
        if policy == HARD_ANTI_AFFINITY:
            # a valid group: members on distinct hosts
            seen, members = set(), []
            for s in rng.sample(servers, min(len(servers), 6)):
                if s.host not in seen:
                    seen.add(s.host)
                    members.append(s.id)
        elif policy == HARD_AFFINITY:
            host_name = rng.choice(hosts).name
            members = [s.id for s in servers if s.host == host_name][:3]
        else:
            members = [s.id for s in rng.sample(servers, min(len(servers), 4))]
        group_list.append(ServerGroup(f"g{g}", f"group{g}", policy, tuple(members)))
    intents = {}
    for s in servers:
        roll = rng.random()
        if roll < 0.04:
            intents[s.id] = "skip"
        elif roll < 0.06:
            intents[s.id] = "stop"
        elif roll < 0.10:
            intents[s.id] = "live"
        elif roll < 0.12:
            intents[s.id] = "cold"
    return CloudState(hosts=hosts, servers=servers, groups=group_list), intents


def replay(state: CloudState, plan: RebalancePlan, order: Optional[list] = None) -> list[str]:
    """Run the plan against a simulated Placement, step by step (in `order`, default the plan's):
    a move holds its allocation on both hosts until it ends, as Nova's migration allocation
    does. Returns every violation seen at any intermediate state (empty: a valid plan)."""
    cap = {h.name: h.capacity for h in state.hosts}
    used = {h.name: h.used for h in state.hosts}
    where = {s.id: s.host for s in state.servers}
    hard = [g for g in state.groups if g.policy == HARD_ANTI_AFFINITY]
    problems: list[str] = []
    steps = order if order is not None else plan.steps
    # worst case of any parallel execution: every move in flight at once
    peak = dict(used)
    for st in steps:
        peak[st.dest] = peak[st.dest] + st.need
    for name, p in peak.items():
        if not cap[name].fits(p):
            problems.append(f"{name} overfilled if the moves run together: {cap[name].shortfall(p)}")
    for st in steps:
        if where[st.server_id] != st.source:
            problems.append(f"{st.server_id} is not on {st.source}")
        used[st.dest] = used[st.dest] + st.need          # the move starts: both hosts hold it
        if not cap[st.dest].fits(used[st.dest]):
            problems.append(f"{st.dest} overfilled by {st.server_id}")
        in_flight = dict(where)
        for g in hard:
            hosts_now = [in_flight[m] for m in g.members if in_flight.get(m)]
            hosts_now.append(st.dest) if st.server_id in g.members else None
            if len(hosts_now) != len(set(hosts_now)):
                problems.append(f"anti-affinity {g.id} broken by {st.server_id} -> {st.dest}")
        used[st.source] = used[st.source] - st.need      # the move ends
        where[st.server_id] = st.dest
    for g in state.groups:
        if g.policy == HARD_AFFINITY:
            if len({where[m] for m in g.members if m in where}) > 1:
                problems.append(f"affinity {g.id} split")
    return problems


def lowerable_max(state: CloudState, plan: RebalancePlan) -> float:
    """The plan's maximum as the planner measures it (and the spread optimum does): over the
    hosts in scope holding a server that may move or none at all, and those taking a server; a
    host whose servers all stay and that takes nothing is left out (no plan lowers it)."""
    return max(counted_usage(state, plan).values(), default=0.0)


def counted_usage(state: CloudState, plan: RebalancePlan) -> dict[str, float]:
    """{host: usage after the plan} for the hosts `lowerable_max` counts."""
    stays = {s.server_id for s in plan.unmovable}
    takes = {s.dest for s in plan.steps}
    usage = final_usage(state, plan)
    return {h: usage[h] for h in plan.hosts if h in takes or not any(
        s.host == h and s.id in stays for s in state.servers) or any(
        s.host == h and s.id not in stays for s in state.servers)}


def final_usage(state: CloudState, plan: RebalancePlan) -> dict[str, float]:
    used = {h.name: h.used for h in state.hosts}
    for st in plan.steps:
        used[st.dest] = used[st.dest] + st.need
        used[st.source] = used[st.source] - st.need
    caps = {h.name: h.capacity for h in state.hosts}
    return {n: usage_of(_v(caps[n]), _v(used[n])) for n in used if n in plan.hosts}


def _v(r: Resources) -> list[float]:
    return [r.vcpus, r.memory_mb, r.disk_gb, r.pcpus]


def optimum(state: CloudState, goal: str, intents: dict[str, str], time_limit: float = 10,
            peak: bool = False) -> dict:
    """Spread is planned zone by zone (servers keep their zone): so is its optimum.

    spread returns {"max_usage": the optimum (or, out of time, HiGHS's bound: below it),
    "incumbent": the best max usage HiGHS found (= max_usage when proven), "moves": the fewest
    moves reaching `incumbent`, "proven": both stages solved to optimality (the first also when
    HiGHS, out of time, then proves no plan gets 0.01 point below its incumbent), "ordered": the
    fewest-moves plan found has a valid order, "peak_ok": it keeps the peak rule}."""
    if goal == "pack":
        return _optimum(state, goal, intents, time_limit, peak)
    out = {"max_usage": 0.0, "incumbent": 0.0, "moves": 0, "proven": True, "ordered": True, "peak_ok": True}
    for sub in _zones(state):
        got = _optimum(sub, goal, intents, time_limit, peak)
        out = {"max_usage": max(out["max_usage"], got["max_usage"]),
               "incumbent": max(out["incumbent"], got["incumbent"]),
               "moves": out["moves"] + got["moves"], "proven": out["proven"] and got["proven"],
               "ordered": out["ordered"] and got["ordered"], "peak_ok": out["peak_ok"] and got["peak_ok"]}
    return out


def fewest_moves(state: CloudState, intents: dict[str, str], levels: dict,
                 time_limit: float = 10, peak: bool = False) -> dict:
    """The fewest moves that bring every host of each zone to `levels[zone]` percent or below:
    {"moves": n, "proven": bool}. Out of time the count is HiGHS's bound on it (rounded up),
    which is at most the true fewest: a yardstick never in the planner's favour."""
    total, proven = 0, True
    for sub in _zones(state):
        m = _Milp(sub, "spread", intents, peak)
        got = m.fewest_moves(levels[sub.hosts[0].service.zone], time_limit)
        total += got[0]
        proven = proven and got[1]
    return {"moves": total, "proven": proven}


def _zones(state: CloudState):
    for zone in sorted({h.service.zone for h in state.hosts}, key=str):
        names = {h.name for h in state.hosts if h.service.zone == zone}
        yield CloudState([h for h in state.hosts if h.name in names],
                         [s for s in state.servers if s.host in names], state.groups)


class _Milp:
    """The problem as a MILP: x[kind, host] (how many servers of a kind end on a host it may be
    on), y[host] (pack: the host is kept), z (spread: the most loaded host's usage, percent).
    A kind is the servers of one host that are interchangeable here (same needs, same hosts
    allowed, same hard anti-affinity groups): one integer per kind and host instead of one
    binary per server and host, the same optimum without the symmetry that keeps HiGHS from
    proving it."""

    def __init__(self, state: CloudState, goal: str, intents: dict[str, str], peak: bool = False) -> None:
        import numpy as np
        from scipy.sparse import lil_matrix
        model = _Hosts(state.hosts, state.servers, state.groups, _NeedMemo())
        hosts = [h.name for h in state.hosts]
        hi = {h: i for i, h in enumerate(hosts)}
        servers = [s for s in state.servers if s.host in hi]
        ids = {s.id: i for i, s in enumerate(servers)}
        anti = [{ids[m] for m in g.members if m in ids} for g in state.groups if g.policy == HARD_ANTI_AFFINITY]
        sneed = [_v(model.need(s)) for s in servers]
        kinds: dict[tuple, list[int]] = {}
        for si, s in enumerate(servers):
            mode, _ = movable(s, intents.get(s.id), model)
            if mode is None:
                allowed = (s.host,)
            else:
                allowed = tuple(h.name for h in state.hosts if h.service.zone == model.zone[s.host]
                                and (h.name == s.host or model.destination_ok[h.name]))
            key = (s.host, tuple(sneed[si]), allowed, tuple(gi for gi, g in enumerate(anti) if si in g))
            kinds.setdefault(key, []).append(si)
        kind_list = list(kinds.values())
        khost = [servers[members[0]].host for members in kind_list]
        kallowed = [key[2] for key in kinds]
        need = [sneed[members[0]] for members in kind_list]
        count = [len(members) for members in kind_list]
        n_servers = len(servers)
        var = [(ki, hi[h]) for ki, hs in enumerate(kallowed) for h in hs]
        nx, ny = len(var), len(hosts)
        cap = [_v(h.capacity) for h in state.hosts]
        by_kind: dict[int, list[int]] = {}
        by_host: dict[int, list[int]] = {}
        for k, (ki, hj) in enumerate(var):
            by_kind.setdefault(ki, []).append(k)
            by_host.setdefault(hj, []).append(k)
        rows: list[dict[int, float]] = []
        lo, up = [], []
        for ki in range(len(kind_list)):                  # each server on exactly one host
            rows.append({k: 1.0 for k in by_kind.get(ki, [])}), lo.append(count[ki]), up.append(count[ki])
        member_kinds = [{ki for ki, members in enumerate(kind_list) if set(members) & g} for g in anti]
        for kis in member_kinds:
            for hj in range(ny):
                r = {k: 1.0 for k in by_host.get(hj, []) if var[k][0] in kis}
                if r:
                    rows.append(r), lo.append(-np.inf), up.append(1)
        # A host none of whose servers may move ("fixed": a down compute, only skip-tagged
        # servers) is measured only if it takes a server, as the planner measures it (it lowers
        # the hosts it can lower, below one it cannot): y[host] = 1 when it takes one.
        fixed = {hj for hj in range(ny) if any(khost[ki] == hosts[hj] for ki in range(len(kind_list)))
                 and all(kallowed[ki] == (khost[ki],) for ki in range(len(kind_list)) if khost[ki] == hosts[hj])}
        for hj in range(ny):
            load = [sum(need[ki][f] * count[ki] for ki in range(len(kind_list))
                        if kallowed[ki] == (hosts[hj],)) for f in range(4)]
            for f in range(4):
                r = {k: need[var[k][0]][f] for k in by_host.get(hj, []) if need[var[k][0]][f]}
                room = 0.0
                if goal == "pack":
                    r[nx + hj] = -max(cap[hj][f], 0)    # used only if the host is kept
                elif cap[hj][f] > 0:
                    r[nx + ny] = -cap[hj][f] / 100.0     # sum need <= z% of capacity
                    if hj in fixed and load[f]:          # ... unless a fixed host takes nothing
                        r[nx + hj] = load[f]
                        room = load[f]
                rows.append(r), lo.append(-np.inf), up.append(room)
            if goal != "pack" and hj in fixed:
                r = {k: 1.0 for k in by_host.get(hj, []) if kallowed[var[k][0]] != (hosts[hj],)}
                r[nx + hj] = -n_servers
                rows.append(r), lo.append(-np.inf), up.append(0)
        if peak:
            # The peak rule: what a host holds now plus everything moved into it fits its
            # capacity; a host a hard anti-affinity member is on now takes no other member.
            for hj in range(ny):
                here = [sum(sneed[si][f] for si in range(n_servers) if servers[si].host == hosts[hj])
                        for f in range(4)]
                moved_in = [k for k in by_host.get(hj, []) if khost[var[k][0]] != hosts[hj]]
                for f in range(4):
                    r = {k: need[var[k][0]][f] for k in moved_in if need[var[k][0]][f]}
                    if r:
                        rows.append(r), lo.append(-np.inf), up.append(max(cap[hj][f] - here[f], 0.0))
            for kis in member_kinds:
                for hj in range(ny):
                    if any(khost[ki] == hosts[hj] for ki in kis):
                        r = {k: 1.0 for k in by_host.get(hj, []) if var[k][0] in kis
                             and khost[var[k][0]] != hosts[hj]}
                        if r:
                            rows.append(r), lo.append(-np.inf), up.append(0)
        if goal == "pack":
            # a host may be counted empty only if nothing is on it
            for hj in range(ny):
                r = {k: 1.0 for k in by_host.get(hj, [])}
                r[nx + hj] = -n_servers
                rows.append(r), lo.append(-np.inf), up.append(0)
        a = lil_matrix((len(rows), nx + ny + 1))
        for i, r in enumerate(rows):
            for k, v in r.items():
                a[i, k] = v
        self.a, self.lo, self.up = a.tocsr(), np.array(lo, float), np.array(up, float)
        self.nx, self.ny, self.goal = nx, ny, goal
        self.integrality = np.concatenate([np.ones(nx + ny), [0]])
        self.lb = np.zeros(nx + ny + 1)
        self.ub = np.concatenate([[count[ki] for ki, _ in var], np.ones(ny), [np.inf if goal != "pack" else 0]])
        self.moving = np.zeros(nx + ny + 1)              # 1 per server x puts off its host
        for k, (ki, hj) in enumerate(var):
            if hosts[hj] != khost[ki]:
                self.moving[k] = 1
        self.var, self.kinds, self.servers, self.hosts, self.need, self.cap = var, kind_list, servers, hosts, sneed, cap
        self.anti = anti

    def moves_of(self, x) -> list[tuple[int, int, int]]:
        """(server, from host, to host) indices of the moves a solution makes (the servers of a
        kind, interchangeable, taken in turn)."""
        hi = {h: j for j, h in enumerate(self.hosts)}
        moves, taken = [], {}
        for k, (ki, hj) in enumerate(self.var):
            members = self.kinds[ki]
            a = hi[self.servers[members[0]].host]
            for _ in range(int(round(x[k])) if hj != a else 0):
                si = members[taken.setdefault(ki, 0)]
                taken[ki] += 1
                moves.append((si, a, hj))
        return moves

    def ordered(self, x) -> bool:
        """A valid order of the solution's moves exists (found by running, one at a time, any
        move whose destination has room for it now and holds no member of its hard
        anti-affinity groups; a move holds its allocation on both hosts until it ends)."""
        used = [[0.0] * 4 for _ in self.hosts]
        on = {}
        for si, s in enumerate(self.servers):
            j = self.hosts.index(s.host)
            on[si] = j
            used[j] = [u + n for u, n in zip(used[j], self.need[si])]
        pending = self.moves_of(x)
        while pending:
            for i, (si, a, b) in enumerate(pending):
                room = all(used[b][f] + self.need[si][f] <= self.cap[b][f] + 1e-9 for f in range(4))
                clash = any(si in g and any(on[o] == b for o in g if o != si) for g in self.anti)
                if room and not clash:
                    used[a] = [u - n for u, n in zip(used[a], self.need[si])]
                    used[b] = [u + n for u, n in zip(used[b], self.need[si])]
                    on[si] = b
                    del pending[i]
                    break
            else:
                return False
        return True

    def peak_ok(self, x) -> bool:
        """The solution keeps the peak rule (see the module's docstring)."""
        load = [[0.0] * 4 for _ in self.hosts]
        for si, s in enumerate(self.servers):
            j = self.hosts.index(s.host)
            load[j] = [u + n for u, n in zip(load[j], self.need[si])]
        taken = set()
        for si, a, b in self.moves_of(x):
            load[b] = [u + n for u, n in zip(load[b], self.need[si])]
            taken.add((si, b))
        if any(load[j][f] > self.cap[j][f] + 1e-9 for j in range(len(self.hosts)) for f in range(4)
               if self.cap[j][f] > 0 or load[j][f] > 0):
            return False
        for g in self.anti:
            for si, b in taken:
                if si in g and any(self.hosts[b] == self.servers[o].host for o in g if o != si):
                    return False
        return True

    def solve(self, c, ub, time_limit: float):
        from scipy.optimize import Bounds, LinearConstraint, milp
        return milp(c, constraints=LinearConstraint(self.a, self.lo, self.up),
                    integrality=self.integrality, bounds=Bounds(self.lb, ub),
                    options={"time_limit": time_limit})

    def fewest_moves(self, level: float, time_limit: float, solution: Optional[list] = None) -> tuple[int, bool]:
        ub = self.ub.copy()
        ub[self.nx + self.ny] = level + 1e-6
        res = self.solve(self.moving, ub, time_limit)
        if solution is not None and res.x is not None:
            solution.append(res.x)
        if res.status == 0:
            return int(round(res.fun)), True
        bound = getattr(res, "mip_dual_bound", None)
        assert bound is not None and math.isfinite(bound), res.message
        return int(math.ceil(bound - 1e-6)), False


# Out of time on the lowest maximum, HiGHS is asked whether any plan gets this many points
# below its incumbent: "infeasible" proves the incumbent optimal to within it.
PROOF_GAP = 0.01


def _optimum(state: CloudState, goal: str, intents: dict[str, str], time_limit: float,
             peak: bool = False) -> dict:
    """The exact optimum by MILP: pack -> most hosts emptied; spread -> lowest max usage, then
    the fewest moves reaching it. Returns {"empty": n} or {"max_usage": z, "moves": m, ...}."""
    import numpy as np

    m = _Milp(state, goal, intents, peak)
    nx, ny = m.nx, m.ny
    if goal == "pack":
        c = np.concatenate([np.zeros(nx), np.ones(ny), [0]])
        res = m.solve(c, m.ub, time_limit)
        # Out of time, HiGHS's dual bound still caps what any plan can empty: the comparison
        # is then against that cap (never in the planner's favour).
        bound = getattr(res, "mip_dual_bound", None)
        if res.status == 0:
            return {"empty": int(round(ny - res.fun)), "proven": True}
        assert bound is not None and math.isfinite(bound), res.message
        return {"empty": int(ny - math.ceil(bound - 1e-6)), "proven": False}
    # Stage 1: the lowest max usage alone (no term for moves: the bound HiGHS reports out of
    # time is then a bound on z itself, below the true optimum).
    c = np.zeros(nx + ny + 1)
    c[nx + ny] = 1
    res = m.solve(c, m.ub, time_limit)
    assert res.x is not None, res.message
    incumbent = float(res.x[nx + ny])
    z_low = incumbent if res.status == 0 else min(incumbent, float(res.mip_dual_bound))
    proven = res.status == 0
    if not proven and incumbent - z_low > PROOF_GAP:
        # Out of time with a gap: is there any plan PROOF_GAP below the incumbent at all? A
        # feasibility question (no objective) is often settled where the optimization is not.
        ub = m.ub.copy()
        ub[nx + ny] = incumbent - PROOF_GAP
        check = m.solve(np.zeros(nx + ny + 1), ub, time_limit)
        if check.status == 2:
            z_low, proven = incumbent - PROOF_GAP, True
        elif check.x is not None:            # a better plan: the incumbent it is (bound unchanged)
            incumbent = float(max(check.x[nx + ny], z_low))
    # Stage 2: the fewest moves that reach the incumbent (the optimum when proven).
    found: list = []
    moves, moves_proven = m.fewest_moves(incumbent, time_limit, found)
    x = found[0] if found else res.x
    return {"max_usage": z_low, "incumbent": incumbent, "moves": moves,
            "proven": proven and moves_proven, "ordered": m.ordered(x), "peak_ok": m.peak_ok(x)}


def pairs(it):
    return itertools.pairwise(it)


__all__ = ["random_cloud", "replay", "final_usage", "optimum", "fewest_moves", "lowerable_max", "counted_usage", "math"]
