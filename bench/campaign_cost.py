#!/usr/bin/env python3
"""Campaign cost against the size of the cloud: the same 50-host campaign (`maintain` of 50
hosts, 4 servers each, --max-hosts 2, no hook) run on the unit tests' in-memory Nova
(tests/unit/fakenova.py) holding 500, 1,000 and 2,000 hosts, counting the API requests the
adapter would send (list pages of Nova's default max_limit, per-host Placement reads, the
provider uuid looked up once per host: fakenova's RequestCount).

Goal (issue 24): flat; the requests of the campaign grow with the servers it moves and the
hosts it takes out, not with the hosts in the cloud. The one whole read of the cloud at the
start (services, hypervisors, every host's Placement numbers: what the campaign's N+K plan is
made from) does grow with the cloud, once; it is printed apart. Prints each count, the requests per
moved server and per stage, the growth factor (2,000 hosts against 500) and the requests by
adapter verb of the largest cloud.

Usage: .venv/bin/python bench/campaign_cost.py [--clouds 500,1000,2000] [--campaign 50]
       [--servers 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from fakenova import FakeNova  # noqa: E402
from novamove.engine import campaign as camp  # noqa: E402
from novamove.engine.batch import drain as drainmod  # noqa: E402
from novamove.engine.campaign import Options, run_campaign  # noqa: E402
from novamove.engine.journal import Journal  # noqa: E402


def cloud(hosts: int, campaign: int, per_host: int) -> tuple[FakeNova, list[str]]:
    names = [f"cmp{i:05d}" for i in range(hosts)]
    f = FakeNova(hosts=names)
    for h in names[:campaign]:
        for j in range(per_host):
            f.add(f"{h}-vm{j}", h)
    for h in names[campaign::7]:           # some of the rest hold a server too
        f.add(f"{h}-other", h)
    return f, names[:campaign]


def measure(hosts: int, campaign: int, per_host: int) -> dict:
    f, selected = cloud(hosts, campaign, per_host)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        t0 = time.perf_counter()
        c0 = f.requests.count
        rep = run_campaign(f, journal, selected, options=Options(max_hosts=2, poll_interval=0.01, gate="heartbeat"))
        seconds = time.perf_counter() - t0
    moved = sum(r.moved for r in rep.results)
    n = f.requests.count - c0
    # The view's whole reads of the cloud (the one at the start, and any a refused stage asks
    # for) are its only compute_hosts calls: the rest is what the stages cost.
    whole = f.requests.by_verb.get("compute_hosts", 0)
    return {"hosts": hosts, "ok": rep.ok, "requests": n, "whole_reads": whole, "stages_requests": n - whole, "moved": moved, "stages": len(selected),
            "per_moved_server": round(n / max(1, moved), 2), "per_stage": round(n / len(selected), 1),
            "seconds": round(seconds, 1), "by_verb": dict(sorted(f.requests.by_verb.items(), key=lambda kv: -kv[1]))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clouds", default="500,1000,2000")
    ap.add_argument("--campaign", type=int, default=50)
    ap.add_argument("--servers", type=int, default=4, help="servers on each campaign host")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    camp.common.POLL = 0.0
    drainmod.REPLAN_PAUSE = 0.0
    rows = [measure(int(n), args.campaign, args.servers) for n in args.clouds.split(",")]
    growth = rows[-1]["requests"] / max(1, rows[0]["requests"])
    growth_stages = rows[-1]["stages_requests"] / max(1, rows[0]["stages_requests"])
    if args.json:
        print(json.dumps({"rows": rows, "growth": round(growth, 3), "growth_stages": round(growth_stages, 3)},
                         indent=2))
        return 0
    for r in rows:
        print(f"{r['hosts']:>6} hosts in the cloud: {r['requests']:>8} requests for {r['stages']} hosts, "
              f"{r['moved']} servers moved ({r['per_moved_server']} per moved server, {r['per_stage']} per "
              f"stage; ok={r['ok']}, {r['seconds']} s); whole reads of the cloud {r['whole_reads']}, "
              f"the stages {r['stages_requests']}")
    print(f"growth factor ({rows[-1]['hosts']} hosts against {rows[0]['hosts']}): {growth:.2f}x in all "
          f"(goal: flat, 1.0x); the stages {growth_stages:.2f}x, the rest being the one whole read at the start")
    print("by verb (largest cloud): " + ", ".join(f"{k} {v}" for k, v in list(rows[-1]["by_verb"].items())[:10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
