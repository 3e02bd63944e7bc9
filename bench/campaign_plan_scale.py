#!/usr/bin/env python3
"""Campaign plan scale: the `novamove maintain --all --max-hosts 50 --dry-run` plan of the
synthetic 10,000-host / 200,000-server cloud that bench/planner_scale.py builds, N+K checked at
every stage (200 stages), against a naive re-plan-per-stage baseline measured in the same run.

Goal (issue 11): <= 5 s and <= 1 GB. The naive baseline (every stage planned over the whole
cloud rebuilt from scratch) is run for --naive-stages stages and extrapolated to all stages
(said so in the output) unless --naive-stages 0 runs it all.

Usage: .venv/bin/python bench/campaign_plan_scale.py [--hosts 10000] [--servers 200000]
       [--max-hosts 50] [--naive-stages 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from planner_scale import synthetic_cloud  # noqa: E402
from novamove.engine.campaign.simulate import naive_plan_campaign, plan_campaign  # noqa: F401


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--servers", type=int, default=200000)
    ap.add_argument("--max-hosts", type=int, default=50)
    ap.add_argument("--naive-stages", type=int, default=10, help="stages of the naive baseline (0: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    state = synthetic_cloud(args.hosts, args.servers)
    build_s = time.perf_counter() - t0
    # Every host that a campaign can service (disabled ones are someone else's; down ones
    # holding servers cannot be drained): unmovable servers allowed so that all of them count.
    hosts = [h.name for h in state.hosts]
    t0, c0 = time.perf_counter(), time.process_time()
    plan = plan_campaign(state, hosts, max_hosts=args.max_hosts, allow_unmovable=True, detail_limit=20)
    plan_s, plan_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    moves = sum(len(s.moves) for s in plan.stages)
    unfit = sum(not s.ok for s in plan.stages)

    order = plan.hosts
    stages_total = len(plan.stages)
    n_naive = stages_total if args.naive_stages == 0 else min(args.naive_stages, stages_total)
    t0, c0 = time.perf_counter(), time.process_time()
    naive_plan_campaign(state, order[:n_naive * args.max_hosts], max_hosts=args.max_hosts)
    naive_part, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
    naive_s = naive_part / n_naive * stages_total if n_naive else 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    plan_campaign(state, order[:n_naive * args.max_hosts], max_hosts=args.max_hosts, allow_unmovable=True,
                  detail_limit=20, order="given")
    same_part, same_cpu = time.perf_counter() - t0, time.process_time() - c0

    figures = {
        "hosts": args.hosts, "servers": args.servers, "max_hosts": args.max_hosts,
        "serviced_hosts": len(plan.hosts), "not_serviced": len(plan.not_serviced), "stages": stages_total,
        "stages_not_fitting": unfit, "planned_moves": moves, "model_build_s": round(build_s, 2),
        "plan_s": round(plan_s, 2), "plan_cpu_s": round(plan_cpu, 2),
        "load_1min": round(os.getloadavg()[0], 1), "process_peak_rss_mb": round(rss_mb), "estimate_h": round(plan.estimate_seconds / 3600, 1),
        "naive_stages_measured": n_naive, "naive_s_measured": round(naive_part, 2),
        "naive_cpu_s_measured": round(naive_cpu, 2),
        "novamove_same_stages_s": round(same_part, 3), "novamove_same_stages_cpu_s": round(same_cpu, 3),
        "naive_s_all_stages": round(naive_s, 1), "naive_extrapolated": n_naive < stages_total,
        "ratio_same_stages": round(naive_part / same_part, 1) if same_part else None,
        "ratio_same_stages_cpu": round(naive_cpu / same_cpu, 1) if same_cpu else None,
        "goal_time_ok": plan_s <= 5.0, "goal_memory_ok": rss_mb <= 1024,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"synthetic cloud: {args.hosts} hosts, {args.servers} servers (built in {build_s:.1f} s)")
        print(f"campaign over every host, --max-hosts {args.max_hosts}: {len(plan.hosts)} serviced, "
              f"{len(plan.not_serviced)} not (disabled by others or down with servers), {stages_total} stages, "
              f"{moves} moves, {unfit} stage(s) failing N+K; estimate {figures['estimate_h']} h")
        print(f"novamove plan:         {plan_s:7.2f} s wall, {plan_cpu:.2f} s CPU (N+K at every stage; "
              f"load average {figures['load_1min']} on this machine)")
        print(f"naive re-plan/stage:   {naive_part:7.2f} s for {n_naive} stage(s) vs novamove {same_part:.3f} s for "
              f"the same stages ({figures['ratio_same_stages']}x; CPU {naive_cpu:.2f} s vs {same_cpu:.3f} s, "
              f"{figures['ratio_same_stages_cpu']}x)"
              + (f"; all {stages_total} stages extrapolated: {naive_s:.0f} s" if n_naive < stages_total else ""))
        print(f"memory: process peak RSS {rss_mb:.0f} MB (model + plan)")
        print(f"goal <= 5 s: {'met' if figures['goal_time_ok'] else 'MISSED'}; "
              f"goal <= 1 GB: {'met' if figures['goal_memory_ok'] else 'MISSED'}")
    return 0 if figures["goal_time_ok"] and figures["goal_memory_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
