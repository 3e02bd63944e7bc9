#!/usr/bin/env python3
"""A drain where some live migrations never converge, on the minicloud: novamove's drain (default
--on-stall force-complete) vs the sequential `openstack server migrate --live-migration --wait`
loop, vs the same drain with every server converging.

Boots N servers (default 20, m1.nano) on compute1 and tags K of them (default 2) with the fake
driver's metadata `fakevirt:converge=never`: their live migrations keep their remaining memory
until Nova's force-complete or abort reaches them. Every other live migration takes --seconds.
Then, one after the other (servers put back on compute1 in between, not timed):

1. `novamove drain compute1` with the never-converging servers (NOVAMOVE_STALL_WINDOW=--window);
2. the sequential loop, one `openstack server migrate --live-migration --wait SERVER` at a time;
   the CLI waits on a migration that never ends, so each call is bounded by --loop-timeout and
   reported as timed out (its migration is then aborted through the API, not timed, so the next
   contender starts clean);
3. the same drain with the metadata removed (every server converging): the baseline.

Reported per contender: wall time, servers left on compute1, timeouts; the goal is novamove
emptying the host with a wall time <= 1.5x the all-converging drain.

Usage (alone on a minicloud):
  .venv/bin/python bench/stall_drain.py [--servers 20] [--never 2] [--seconds 2] [--window 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drain_speed import BIN, SOURCE, hosts_of, minicloud_env, put_back, wait_settled  # noqa: E402

CONVERGE = "fakevirt:converge"


def run_drain(env: dict, window: float) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "novamove"), "drain", SOURCE, "-q", "-f", "json"],
                       env={**env, "NOVAMOVE_STALL_WINDOW": str(window)}, capture_output=True, text=True)
    wall = time.monotonic() - t0
    try:
        rep = json.loads(p.stdout)
    except ValueError:
        raise SystemExit(f"novamove drain failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    return {"wall_s": wall, "exit_code": p.returncode, "api_requests": rep["api_requests"],
            "stalls": {r["server_name"]: r["stall"] for r in rep["results"] if r.get("stall")}}


def run_loop(env: dict, ids: list, per_call: float, adapter) -> dict:
    """The operator's loop; a call that outlives `per_call` is killed and counted as timed out."""
    timeouts = failures = 0
    t0 = time.monotonic()
    for sid in ids:
        try:
            p = subprocess.run([str(BIN / "openstack"), "server", "migrate", "--live-migration", "--wait", sid],
                               env=env, capture_output=True, text=True, timeout=per_call)
            failures += p.returncode != 0
        except subprocess.TimeoutExpired:
            timeouts += 1
    wall = time.monotonic() - t0
    # Not timed: what the loop left running is aborted, so the next contender starts clean.
    for m in adapter.list_migrations(migration_type="live-migration"):
        if m.server_id in ids and m.in_progress:
            try:
                adapter.abort_migration(m.server_id, m.id)
            except Exception:
                pass
    return {"wall_s": wall, "timeouts": timeouts, "cli_failures": failures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--never", type=int, default=2, help="servers whose live migration never converges")
    ap.add_argument("--seconds", type=float, default=2.0, help="fake live migration duration")
    ap.add_argument("--window", type=float, default=10.0, help="NOVAMOVE_STALL_WINDOW for the drains")
    ap.add_argument("--loop-timeout", type=float, default=120.0,
                    help="bound of one `openstack server migrate --wait` call in the loop")
    ap.add_argument("--keep", action="store_true", help="do not delete the servers at the end")
    args = ap.parse_args()

    env = dict(os.environ, **minicloud_env())
    os.environ.update(env)
    import openstack
    from novamove import cloud
    from novamove.cloud import provision
    from novamove.engine.journal import Journal

    conn = openstack.connect(cloud="minicloud")
    adapter = cloud.connect("minicloud")
    workdir = Path(f"/tmp/novamove-bench-{os.getpid()}")
    workdir.mkdir(exist_ok=True)
    journal = Journal(workdir / "journal.sqlite")
    env["NOVAMOVE_JOURNAL"] = str(workdir / "journal.sqlite")
    control = Path(env["OS_CLIENT_CONFIG_FILE"]).parent / "fakevirt.json"

    quota = conn.compute.get_quota_set(conn.current_project_id, usage=True)
    need = (quota.usage or {}).get("instances", 0) + args.servers + 5
    if 0 <= quota.instances < need:
        conn.compute.update_quota_set(conn.current_project_id, instances=need,
                                      cores=max(quota.cores, need * 2), ram=max(quota.ram, need * 1024))
    tag = uuid.uuid4().hex[:5]
    print(f"booting {args.servers} servers on {SOURCE} ...", flush=True)
    created = provision.boot_servers(conn, args.servers, [SOURCE], flavor="m1.nano", prefix=f"stall-{tag}",
                                     timeout=600)
    ids = [s.id for s in created]
    never = ids[:args.never]

    def converge(on: bool) -> None:
        for sid in never:
            if on:
                conn.compute.delete_server_metadata(sid, [CONVERGE])
            else:
                conn.compute.set_server_metadata(sid, **{CONVERGE: "never"})

    results = {}
    try:
        control.write_text(json.dumps({"live_migration_seconds": args.seconds}))
        contenders = [
            (f"novamove drain, {args.never} never converging", False, lambda: run_drain(env, args.window)),
            (f"sequential openstack CLI, {args.never} never converging", False,
             lambda: run_loop(env, ids, args.loop_timeout, adapter)),
            ("novamove drain, all converging", True, lambda: run_drain(env, args.window)),
        ]
        for name, all_converge, fn in contenders:
            put_back(adapter, ids, journal)
            wait_settled(conn, ids)
            assert set(hosts_of(conn, ids).values()) == {SOURCE}
            converge(all_converge)
            print(f"running: {name} ...", flush=True)
            r = fn()
            wait_settled(conn, ids)
            r["left_on_source"] = sum(h == SOURCE for h in hosts_of(conn, ids).values())
            results[name] = r
            print(f"  {json.dumps(r)}", flush=True)
    finally:
        if control.exists():
            control.unlink()
        for svc in adapter.list_compute_services():
            if svc.host == SOURCE and not svc.enabled:
                adapter.enable_service(svc)
        if not args.keep:
            for sid in ids:
                conn.compute.delete_server(sid, ignore_missing=True)

    base = results["novamove drain, all converging"]["wall_s"]
    print(f"\n{args.servers} servers ({args.never} never converging), fake live migration {args.seconds:g} s, "
          f"stall window {args.window:g} s, loop calls bounded at {args.loop_timeout:g} s\n")
    print(f"{'contender':52} {'wall s':>8} {'x all-converging':>17} {'left':>5} {'timeouts':>9}")
    for name, r in results.items():
        print(f"{name:52} {r['wall_s']:8.1f} {r['wall_s'] / base:16.2f}x {r['left_on_source']:5d} "
              f"{r.get('timeouts', 0):9d}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
