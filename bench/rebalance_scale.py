#!/usr/bin/env python3
"""How `novamove rebalance` plans at scale, beside a naive greedy in the same run.

Two synthetic clouds, both unbalanced on purpose (a tenth of the hosts hold about twice their
share), with 4 zones, 2% disabled and 1% down hosts, anti-affinity trios, affinity pairs and
the usual mix of states:
- 10,000 hosts / 200,000 servers (the scale of bench/planner_scale.py), goal <= 10 s;
- 113 hosts / 15,769 servers (the size of the Watcher audit its bug report timed), goal <= 60 s;
both <= 1 GB. For each goal it prints novamove's CPU seconds, peak memory, moves and figures
(max usage, spread, hosts emptied), and the same for the naive greedy:
- spread: move the most loaded host's largest server to the least loaded host with room,
  scanning every host each time, until that no longer lowers the maximum;
- pack: empty hosts least loaded first, first fit over every host.
The naive greedy knows capacity, zones and anti-affinity; it moves servers twice, onto hosts
that gave, and in an order that only works one move at a time (what novamove refuses to do).

    python bench/rebalance_scale.py            # both clouds, both goals
    python bench/rebalance_scale.py --quick    # 2,000 hosts / 40,000 servers and the Watcher size
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novamove.model import Flavor, Host, Resources, Server, ServerGroup, Service  # noqa: E402
from novamove.planner import HARD_AFFINITY, HARD_ANTI_AFFINITY, CloudState, need_of  # noqa: E402
from novamove.rebalance import PACK, SPREAD, plan_rebalance, usage_of  # noqa: E402

FLAVORS = [Flavor("m1.tiny", 1, 512, 1), Flavor("m1.small", 1, 2048, 20), Flavor("m1.medium", 2, 4096, 40),
           Flavor("m1.large", 4, 8192, 80), Flavor("m1.xlarge", 8, 16384, 160)]
FLAVOR_WEIGHTS = [10, 40, 30, 15, 5]
STATUSES = ["ACTIVE"] * 85 + ["SHUTOFF"] * 10 + ["PAUSED"] * 2 + ["ERROR"] * 2 + ["SHELVED"]


def unbalanced_cloud(n_hosts: int, n_servers: int, seed: int = 7) -> CloudState:
    """Hosts sized so the cloud is ~55% used by RAM; a tenth of them weighted 4x."""
    rnd = random.Random(seed)
    mean_ram = sum(f.ram * w for f, w in zip(FLAVORS, FLAVOR_WEIGHTS)) / sum(FLAVOR_WEIGHTS)
    ram = mean_ram * n_servers / n_hosts / 0.55
    cap = Resources(ram / 1024 * 2, ram, ram / 1024 * 20)      # 2 vCPU and 20 GB disk per GB RAM
    hosts, weights = [], []
    for i in range(n_hosts):
        name = f"cmp{i:05d}"
        r = rnd.random()
        svc = Service(id=str(i), host=name, zone=f"az{i % 4}",
                      status="disabled" if r < 0.02 else "enabled", state="down" if 0.02 <= r < 0.03 else "up")
        hosts.append(Host(name, svc, capacity=cap))
        weights.append(4.0 if rnd.random() < 0.1 else 1.0)
    used = {h.name: [0.0, 0.0, 0.0] for h in hosts}
    names = [h.name for h in hosts]
    cum = list(itertools.accumulate(weights))      # choices() would sum the weights every call
    servers, groups = [], []

    def room(h: str, f: Flavor) -> bool:
        u = used[h]
        return u[0] + f.vcpus <= cap.vcpus and u[1] + f.ram <= cap.memory_mb and u[2] + f.disk <= cap.disk_gb

    i = 0
    while i < n_servers:
        r = rnd.random()
        if r < 0.0033:
            gid = f"anti-{len(groups)}"
            members, on, policy = [f"srv{i + k:06d}" for k in range(3)], rnd.sample(names, 3), HARD_ANTI_AFFINITY
        elif r < 0.0043:
            gid = f"aff-{len(groups)}"
            members, policy = [f"srv{i + k:06d}" for k in range(2)], HARD_AFFINITY
            on = [rnd.choices(names, cum_weights=cum)[0]] * 2
        else:
            gid, members, policy = None, [f"srv{i:06d}"], None
            on = [rnd.choices(names, cum_weights=cum)[0]]
        flavors = [rnd.choices(FLAVORS, FLAVOR_WEIGHTS)[0] for _ in members]
        if any(not room(h, f) for h, f in zip(on, flavors)) or (len(set(on)) < len(on) and not room(
                on[0], Flavor("pair", sum(f.vcpus for f in flavors), sum(f.ram for f in flavors),
                              sum(f.disk for f in flavors)))):
            continue                 # a full host: try again elsewhere (never overfilled)
        if gid:
            groups.append(ServerGroup(gid, gid, policy, tuple(members)))
        for sid, h, f in zip(members, on, flavors):
            u = used[h]
            u[0] += f.vcpus
            u[1] += f.ram
            u[2] += f.disk
            servers.append(Server(id=sid, name=f"vm-{sid}", status=rnd.choice(STATUSES), host=h,
                                  flavor=f, server_groups=(gid,) if gid else ()))
        i += len(members)
    hosts = [Host(h.name, h.service, capacity=h.capacity, used=Resources(*used[h.name])) for h in hosts]
    return CloudState(hosts=hosts, servers=servers, groups=groups)


# ---------------------------------------------------------------------------- the naive greedy

def _naive_setup(state: CloudState):
    cap = {h.name: [h.capacity.vcpus, h.capacity.memory_mb, h.capacity.disk_gb] for h in state.hosts}
    used = {h.name: [h.used.vcpus, h.used.memory_mb, h.used.disk_gb] for h in state.hosts}
    zone = {h.name: h.zone for h in state.hosts}
    ok = {h.name for h in state.hosts if h.service.enabled and h.service.up}
    up = {h.name for h in state.hosts if h.service.up}        # Nova moves nothing off a down compute
    on: dict[str, list[Server]] = {h.name: [] for h in state.hosts}
    for s in state.servers:
        on[s.host].append(s)
    anti = {g.id: g for g in state.groups if g.policy == HARD_ANTI_AFFINITY}
    aff = {m for g in state.groups if g.policy == HARD_AFFINITY for m in g.members}
    return cap, used, zone, ok, up, on, anti, aff


def _movable(s: Server, aff: set) -> bool:
    return s.status in ("ACTIVE", "SHUTOFF", "PAUSED") and s.id not in aff


def naive(state: CloudState, goal: str, seconds: float) -> tuple[int, float, int, bool]:
    """(moves, max usage after, hosts empty after, stopped): the naive greedy is stopped after
    `seconds` of CPU (it scans every host for every move) and says so."""
    deadline = time.process_time() + seconds
    cap, used, zone, ok, up, on, anti, aff = _naive_setup(state)
    where = {s.id: s.host for s in state.servers}

    def usage(h):
        return usage_of(cap[h], used[h])

    def fits(h, need):
        u, c = used[h], cap[h]
        return u[0] + need.vcpus <= c[0] and u[1] + need.memory_mb <= c[1] and u[2] + need.disk_gb <= c[2]

    def anti_ok(s, h):
        return all(where[m] != h for gid in s.server_groups if gid in anti for m in anti[gid].members if m != s.id)

    def move(s, src, dst):
        need = need_of(s)
        for i, v in enumerate((need.vcpus, need.memory_mb, need.disk_gb)):
            used[src][i] -= v
            used[dst][i] += v
        on[src].remove(s)
        on[dst].append(s)
        where[s.id] = dst

    moves = 0
    if goal == SPREAD:
        stuck: set[str] = set()
        while time.process_time() < deadline:
            top = max((h for h in cap if h not in stuck), key=usage, default=None)
            if top is None:
                break
            best = None
            if top not in up:
                stuck.add(top)
                continue
            for s in sorted((s for s in on[top] if _movable(s, aff)), key=lambda s: -need_of(s).memory_mb):
                for h in cap:           # scan every host: the least loaded that fits
                    if h == top or h not in ok or zone[h] != zone[top] or not fits(h, need_of(s)) or not anti_ok(s, h):
                        continue
                    if best is None or usage(h) < usage(best[1]):
                        best = (s, h)
                if best:
                    break
            if best is None or usage(best[1]) + 1e-9 >= usage(top) - 2.0:
                stuck.add(top)          # this host cannot be lowered: try the next one
                if len(stuck) > 200:
                    break
                continue
            move(best[0], top, best[1])
            moves += 1
    else:
        kept: set[str] = set()
        for host in sorted(cap, key=usage):
            if time.process_time() > deadline:
                break
            if not on[host] or host in kept or host not in up or not all(_movable(s, aff) for s in on[host]):
                continue
            plan = []
            for s in sorted(on[host], key=lambda s: -need_of(s).memory_mb):
                dest = next((h for h in cap if h != host and h in ok and on[h] and zone[h] == zone[host]
                             and fits(h, need_of(s)) and anti_ok(s, h)), None)
                if dest is None:
                    break
                move(s, host, dest)
                plan.append((s, dest))
                kept.add(dest)
            if len(plan) < len(on[host]) + len(plan) and on[host]:
                for s, dest in reversed(plan):    # could not empty it: put them back
                    move(s, dest, host)
                continue
            moves += len(plan)
    stopped = time.process_time() >= deadline
    return moves, max(usage(h) for h in cap), sum(1 for h in cap if not on[h]), stopped


def measure(label: str, state: CloudState, goal: str, naive_seconds: float) -> None:
    t = time.process_time()              # CPU without tracemalloc, which slows Python several-fold
    plan = plan_rebalance(state, goal=goal)
    cpu = time.process_time() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.process_time()
    n_moves, n_max, n_empty, stopped = naive(state, goal, naive_seconds)
    n_cpu = time.process_time() - t
    print(f"{label} {goal:6}: novamove {cpu:6.2f} s CPU, max RSS so far {rss:5.0f} MB, {len(plan.steps):5} moves, "
          f"max usage {plan.before.max_usage:.1f} -> {plan.after.max_usage:.1f}% (of hosts it can lower "
          f"{plan.before.lowerable_max:.1f} -> {plan.after.lowerable_max:.1f}%), spread "
          f"{plan.before.spread:.1f} -> {plan.after.spread:.1f}, empty {plan.before.hosts_empty} -> "
          f"{plan.after.hosts_empty}")
    print(f"{'':{len(label)}} {'':6}  naive    {n_cpu:6.2f} s CPU,                    {n_moves:5} moves, "
          f"max usage {plan.before.max_usage:.1f} -> {n_max:.1f}%, empty -> {n_empty}"
          + (" (stopped: out of time)" if stopped else "")
          + f"   (novamove/naive CPU {cpu / max(n_cpu, 1e-9):.2f}x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 / 40,000 instead of 10,000 / 200,000")
    ap.add_argument("--naive-seconds", type=float, default=120.0,
                    help="CPU seconds the naive greedy gets per goal before it is stopped")
    args = ap.parse_args()
    big = (2000, 40000) if args.quick else (10000, 200000)
    for hosts, servers in (big, (113, 15769)):
        state = unbalanced_cloud(hosts, servers)
        label = f"{hosts} hosts / {len(state.servers)} servers"
        for goal in (SPREAD, PACK):
            measure(label, state, goal, args.naive_seconds)
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
