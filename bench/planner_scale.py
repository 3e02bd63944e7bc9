#!/usr/bin/env python3
"""Planner scale: drain plan for 10 hosts on a synthetic 10,000-host / 200,000-server cloud.

Goal (issue 5): <= 2 s and <= 500 MB. Figures printed, all measured in this one run:
- planner wall time (median of --repeat runs, no tracing active);
- peak memory: the whole process's max RSS (model + planner, from getrusage) and the
  planner's own peak Python allocations (tracemalloc, in a separate traced run);
- the same job done by naive baselines in the same process: a plain first-fit scan and a
  full-scan spread (what the planner computes, without its heaps/indexes), with ratios.

Usage: .venv/bin/python bench/planner_scale.py [--hosts 10000] [--servers 200000] [--drain 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novamove.model import Flavor, Host, Resources, Server, ServerGroup, Service  # noqa: E402
from novamove.planner import (HARD_AFFINITY, HARD_ANTI_AFFINITY, CloudState, move_mode,  # noqa: E402
                              need_of, plan_drain)

FLAVORS = [Flavor("m1.tiny", 1, 512, 1), Flavor("m1.small", 1, 2048, 20), Flavor("m1.medium", 2, 4096, 40),
           Flavor("m1.large", 4, 8192, 80), Flavor("m1.xlarge", 8, 16384, 160)]
FLAVOR_WEIGHTS = [10, 40, 30, 15, 5]
STATUSES = ["ACTIVE"] * 85 + ["SHUTOFF"] * 10 + ["PAUSED"] * 2 + ["ERROR"] * 2 + ["SHELVED"]


def synthetic_cloud(n_hosts: int, n_servers: int, seed: int = 42) -> CloudState:
    """Hosts in 4 zones (2% disabled, 1% down), servers spread randomly, 1% of them in
    anti-affinity groups of 3 and 0.2% in affinity pairs. Allocation ratios 4x CPU, 1.5x RAM."""
    rnd = random.Random(seed)
    hosts = []
    for i in range(n_hosts):
        name = f"cmp{i:05d}"
        r = rnd.random()
        svc = Service(id=str(i), host=name, zone=f"az{i % 4}",
                      status="disabled" if r < 0.02 else "enabled", state="down" if 0.02 <= r < 0.03 else "up")
        hosts.append(Host(name, svc, f"{name}.example.org", capacity=Resources(64 * 4, 262144 * 1.5, 2000)))
    used = {h.name: [0.0, 0.0, 0.0] for h in hosts}
    servers = []
    groups = []
    names = [h.name for h in hosts]
    i = 0
    while i < n_servers:
        r = rnd.random()
        if r < 0.0033 and i + 3 <= n_servers:      # anti-affinity trio on three distinct hosts
            gid = f"anti-{len(groups)}"
            members = [f"srv{i + k:06d}" for k in range(3)]
            groups.append(ServerGroup(gid, gid, HARD_ANTI_AFFINITY, tuple(members)))
            placed_on = rnd.sample(names, 3)
        elif r < 0.0043 and i + 2 <= n_servers:    # affinity pair on one host
            gid = f"aff-{len(groups)}"
            members = [f"srv{i + k:06d}" for k in range(2)]
            groups.append(ServerGroup(gid, gid, HARD_AFFINITY, tuple(members)))
            placed_on = [rnd.choice(names)] * 2
        else:
            gid, members, placed_on = None, [f"srv{i:06d}"], [rnd.choice(names)]
        for sid, h in zip(members, placed_on):
            f = rnd.choices(FLAVORS, FLAVOR_WEIGHTS)[0]
            u = used[h]
            u[0] += f.vcpus
            u[1] += f.ram
            u[2] += f.disk
            servers.append(Server(id=sid, name=f"vm-{sid}", status=rnd.choice(STATUSES), host=h,
                                  flavor=f, server_groups=(gid,) if gid else ()))
        i += len(members)
    hosts = [Host(h.name, h.service, h.hypervisor_hostname, h.capacity, Resources(*used[h.name])) for h in hosts]
    return CloudState(hosts=hosts, servers=servers, groups=groups)


def naive_plan(state: CloudState, sources: list[str], spread: bool) -> dict[str, str]:
    """The obvious implementation: for each server, scan every host (and every group member).

    first-fit: take the first host that passes; spread: scan them all, keep the most free RAM.
    Same rules as the planner for status, zone, disabled/down, capacity and anti-affinity
    (affinity groups are placed member by member, which is all a naive loop does).
    """
    src = set(sources)
    zone = {h.name: h.zone for h in state.hosts}
    free = {h.name: [h.free.vcpus, h.free.memory_mb, h.free.disk_gb] for h in state.hosts}
    ok_hosts = [h.name for h in state.hosts if h.name not in src and h.service.enabled and h.service.up]
    groups = {g.id: g for g in state.groups}
    where = {s.id: s.host for s in state.servers}
    out: dict[str, str] = {}
    on_src = sorted((s for s in state.servers if s.host in src), key=lambda s: -need_of(s).memory_mb)
    for s in on_src:
        mode, why = move_mode(s, "auto")
        if why:
            continue
        need = need_of(s)
        banned = set()
        for gid in s.server_groups:
            if groups[gid].policy == HARD_ANTI_AFFINITY:
                banned |= {out.get(m, where[m]) for m in groups[gid].members if m != s.id}
        best = None
        for h in ok_hosts:
            f = free[h]
            if (zone[h] != zone[s.host] or h in banned or need.vcpus > f[0] or need.memory_mb > f[1]
                    or need.disk_gb > f[2]):
                continue
            if not spread:
                best = h
                break
            if best is None or f[1] > free[best][1]:
                best = h
        if best:
            out[s.id] = best
            f = free[best]
            f[0] -= need.vcpus
            f[1] -= need.memory_mb
            f[2] -= need.disk_gb
    return out


def timed_cpu(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and median CPU (process_time) seconds of `repeat` runs, and the last result."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--servers", type=int, default=200000)
    ap.add_argument("--drain", type=int, default=10, help="how many hosts to drain")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()

    t0 = time.perf_counter()
    state = synthetic_cloud(args.hosts, args.servers)
    build_s = time.perf_counter() - t0
    # Drain the 10 busiest enabled hosts of zone az0 (the hardest: most servers to place).
    per_host: dict[str, int] = {}
    for s in state.servers:
        per_host[s.host] = per_host.get(s.host, 0) + 1
    candidates = [h.name for h in state.hosts if h.zone == "az0" and h.service.enabled and h.service.up]
    sources = sorted(candidates, key=lambda n: -per_host.get(n, 0))[:args.drain]

    plan_s, plan_cpu, plan = timed_cpu(lambda: plan_drain(state, sources), args.repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    plan_drain(state, sources)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    ff_s, ff_cpu, ff = timed_cpu(lambda: naive_plan(state, sources, spread=False), 1)
    sp_s, sp_cpu, sp = timed_cpu(lambda: naive_plan(state, sources, spread=True), 1)

    figures = {
        "hosts": args.hosts, "servers": args.servers, "drained_hosts": len(sources),
        "servers_on_drained": len(plan.steps), "planned_moves": len(plan.moves), "skipped": len(plan.skipped),
        "model_build_s": round(build_s, 3),
        "plan_s_median": round(plan_s, 4), "plan_cpu_s_median": round(plan_cpu, 4),
        "process_peak_rss_mb": round(rss_mb, 1),
        "planner_peak_alloc_mb": round(traced_peak / 2**20, 2),
        "naive_first_fit_s": round(ff_s, 4), "naive_first_fit_moves": len(ff),
        "naive_spread_scan_s": round(sp_s, 4), "naive_spread_scan_moves": len(sp),
        "naive_first_fit_cpu_s": round(ff_cpu, 4), "naive_spread_scan_cpu_s": round(sp_cpu, 4),
        "ratio_vs_first_fit": round(ff_s / plan_s, 1),
        "ratio_vs_spread_scan": round(sp_s / plan_s, 1),
        "ratio_vs_first_fit_cpu": round(ff_cpu / plan_cpu, 1) if plan_cpu else None,
        "ratio_vs_spread_scan_cpu": round(sp_cpu / plan_cpu, 1) if plan_cpu else None,
        "goal_time_ok": plan_s <= 2.0, "goal_memory_ok": rss_mb <= 500,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"synthetic cloud: {args.hosts} hosts, {args.servers} servers, {len(state.groups)} hard groups "
              f"(built in {build_s:.2f} s)")
        print(f"drain {len(sources)} hosts: {figures['servers_on_drained']} servers, "
              f"{figures['planned_moves']} planned, {figures['skipped']} skipped")
        print(f"planner:            {plan_s * 1000:8.1f} ms (median of {args.repeat}; CPU {plan_cpu * 1000:.1f} ms)")
        print(f"naive first-fit:    {ff_s * 1000:8.1f} ms  ({figures['ratio_vs_first_fit']}x the planner), "
              f"{len(ff)} placed")
        print(f"naive spread scan:  {sp_s * 1000:8.1f} ms  ({figures['ratio_vs_spread_scan']}x the planner), "
              f"{len(sp)} placed")
        print(f"memory: process peak RSS {rss_mb:.0f} MB (model + planner); planner's own peak "
              f"allocations {figures['planner_peak_alloc_mb']} MB (tracemalloc)")
        print(f"goal <= 2 s: {'met' if figures['goal_time_ok'] else 'MISSED'}; "
              f"goal <= 500 MB: {'met' if figures['goal_memory_ok'] else 'MISSED'}")
    return 0 if figures["goal_time_ok"] and figures["goal_memory_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
