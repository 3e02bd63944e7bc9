#!/usr/bin/env python3
"""How close `novamove rebalance` plans come to the optimum, on random small clouds.

Each cloud (4 to --max-hosts hosts of three sizes, a few holding most servers, 1-2 zones,
server groups of every policy, intents, stopped and ERROR servers) is planned by novamove and
solved exactly with SciPy's MILP (HiGHS) as the same problem (tests/unit/rebalance_oracle.py):
- pack: hosts emptied, against the most any plan can empty;
- spread: the most loaded host's usage, against the lowest any plan reaches, and the moves,
  against the fewest that reach that optimum.
Where HiGHS runs out of --time-limit, its bound is used (a yardstick never in novamove's favour)
and the row says so. Prints the distribution.

    python bench/rebalance_quality.py --clouds 100 --max-hosts 30
"""

from __future__ import annotations

import argparse
import collections
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from novamove.rebalance import PACK, SPREAD, plan_rebalance  # noqa: E402
from rebalance_oracle import optimum, random_cloud  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clouds", type=int, default=100)
    ap.add_argument("--max-hosts", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds HiGHS gets per problem")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pack_gap = collections.Counter()
    spread_gap = []
    move_ratio = []
    unproven = {PACK: 0, SPREAD: 0}
    cpu = {PACK: 0.0, SPREAD: 0.0}
    for _ in range(args.clouds):
        state, intents = random_cloud(rng, rng.randint(4, args.max_hosts), fill=rng.uniform(0.2, 0.6),
                                      zones=rng.choice([1, 2]), groups=rng.randint(0, 4),
                                      scale=rng.choice([1, 2, 4]))
        t = time.process_time()
        pack = plan_rebalance(state, goal=PACK, intents=intents)
        cpu[PACK] += time.process_time() - t
        best = optimum(state, PACK, intents, time_limit=args.time_limit)
        unproven[PACK] += not best["proven"]
        pack_gap[best["empty"] - pack.after.hosts_empty] += 1
        t = time.process_time()
        spread = plan_rebalance(state, goal=SPREAD, intents=intents)
        cpu[SPREAD] += time.process_time() - t
        best = optimum(state, SPREAD, intents, time_limit=args.time_limit)
        unproven[SPREAD] += not best["proven"]
        spread_gap.append(spread.after.max_usage - best["max_usage"])
        if best["moves"]:
            move_ratio.append(len(spread.steps) / best["moves"])
    n = args.clouds
    print(f"{n} clouds of 4-{args.max_hosts} hosts (seed {args.seed})")
    print("pack, hosts emptied short of the optimum: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(pack_gap.items()))
          + f"   -> at least optimum - 1 in {sum(v for k, v in pack_gap.items() if k <= 1) / n:.0%}"
          + f"  (optimum unproven in {unproven[PACK]})")
    within = sum(1 for g in spread_gap if g <= 5 + 1e-9)
    both = sum(1 for g, r in zip(spread_gap, move_ratio) if g <= 5 + 1e-9 and r <= 1.1 + 1e-9)
    qs = sorted(spread_gap)
    print(f"spread, max usage above the optimum (points): median {qs[n // 2]:.1f}, "
          f"90th {qs[int(n * 0.9)]:.1f}, worst {qs[-1]:.1f}; within 5 points in {within / n:.0%}"
          f"  (optimum unproven in {unproven[SPREAD]})")
    if move_ratio:
        rs = sorted(move_ratio)
        print(f"spread, moves / the optimum's fewest: median {rs[len(rs) // 2]:.2f}, "
              f"90th {rs[int(len(rs) * 0.9)]:.2f}; within 5 points with <= 1.1x the moves in "
              f"{both / n:.0%}")
    print(f"novamove planning CPU: pack {cpu[PACK]:.2f} s, spread {cpu[SPREAD]:.2f} s for all {n}")
    return 0 if math.isfinite(qs[-1]) else 1


if __name__ == "__main__":
    sys.exit(main())
