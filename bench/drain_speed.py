#!/usr/bin/env python3
"""Drain speed on the minicloud: `novamove drain` at caps 2 and 3 vs a sequential loop of
`openstack server migrate --live-migration --wait` (one server at a time).

Boots N servers (default 20, m1.nano) on compute1, makes every live migration take
--seconds (the minicloud's fake driver: fakevirt.json `live_migration_seconds`), then per
contender: wall time (process start to end, as an operator sees it), API requests, failures
(servers not on another host afterwards), and the most migrations seen in flight by a
watcher listing /os-migrations every 0.3 s (the caps must hold). Between contenders the
servers are put back on compute1 (not timed). Prints ratios against the sequential loop.

Nova itself runs at most `max_concurrent_live_migrations` (default 1) live migrations per
source compute and queues the rest; the figures say what that leaves.

Usage (alone on the shared minicloud):
  flock /tmp/novamove-minicloud.lock .venv/bin/python bench/drain_speed.py [--servers 20] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIN = Path(sys.executable).parent
SOURCE = "compute1"
IN_FLIGHT_DONE = {"completed", "confirmed", "error", "failed", "cancelled", "reverted", "done"}


def minicloud_env() -> dict:
    out = subprocess.run([str(BIN / "novamove"), "minicloud", "env"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("the minicloud is not running (novamove minicloud up)")
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            k, _, v = line[7:].partition("=")
            env[k] = v.strip("'\"")
    return env


class Watcher:
    def __init__(self, adapter, ids: set[str]):
        self.adapter, self.ids, self.max_seen = adapter, ids, 0
        self.since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                n = sum(1 for m in self.adapter.list_migrations_changed_since(self.since)
                        if m.server_id in self.ids and m.status not in IN_FLIGHT_DONE)
                self.max_seen = max(self.max_seen, n)
            except Exception:
                pass
            self._stop.wait(0.3)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


def hosts_of(conn, ids) -> dict:
    return {i: conn.compute.get_server(i).compute_host for i in ids}


def wait_settled(conn, ids, timeout=600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        servers = [conn.compute.get_server(i) for i in ids]
        if all(s.status == "ACTIVE" and not s.task_state for s in servers):
            return
        time.sleep(1)
    raise SystemExit("servers did not settle")


def put_back(adapter, ids, journal):
    """Not timed: every server back on compute1, compute1 enabled (novamove's own batch runner)."""
    from novamove.engine.batch.drain import BatchRunner
    from novamove.planner import DrainStep
    for svc in adapter.list_compute_services():
        if svc.host == SOURCE and not svc.enabled:
            adapter.enable_service(svc)
    steps = []
    for sid in ids:
        s = adapter.get_server(sid)
        if s.host != SOURCE:
            steps.append(DrainStep(server_id=sid, server_name=s.name, source=s.host, dest=SOURCE, mode="live"))
    if steps:
        journal.start_run("putback-" + uuid.uuid4().hex[:6], "bench")
        BatchRunner(adapter, journal, "bench", steps, max_parallel=4, max_per_host=4).run()


def run_sequential(env, ids) -> dict:
    """The loop an operator writes: one `openstack server migrate --live-migration --wait` each."""
    requests = failures = 0
    t0 = time.monotonic()
    for sid in ids:
        p = subprocess.run([str(BIN / "openstack"), "--debug", "server", "migrate", "--live-migration",
                            "--wait", sid], env=env, capture_output=True, text=True)
        requests += len(re.findall(r"^REQ: curl", p.stderr, re.M))
        failures += p.returncode != 0
    return {"wall_s": time.monotonic() - t0, "api_requests": requests, "cli_failures": failures}


def run_novamove(env, cap: int, poll_interval: str | None = None) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "novamove"), "drain", SOURCE, "--max-parallel", str(cap), "--max-per-host",
                        str(cap), *(["--poll-interval", poll_interval] if poll_interval else []), "-q", "-f", "json"], env=env,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    try:
        rep = json.loads(p.stdout)
    except ValueError:
        raise SystemExit(f"novamove drain failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    return {"wall_s": wall, "api_requests": rep["api_requests"], "exit_code": p.returncode,
            "peak_in_flight_reported": rep["peak_in_flight"],
            "failed": sum(r["result"] == "failed" for r in rep["results"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=2.0, help="fake live migration duration")
    ap.add_argument("--caps", default="2,3")
    ap.add_argument("--poll-interval", default=None, help="novamove drain --poll-interval (default: its own)")
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

    # The admin project's default quota (10 instances) is too small for the fleet.
    quota = conn.compute.get_quota_set(conn.current_project_id, usage=True)
    need = (quota.usage or {}).get("instances", 0) + args.servers + 5
    if 0 <= quota.instances < need:
        conn.compute.update_quota_set(conn.current_project_id, instances=need,
                                      cores=max(quota.cores, need * 2), ram=max(quota.ram, need * 1024))
    tag = uuid.uuid4().hex[:5]
    print(f"booting {args.servers} servers on {SOURCE} ...", flush=True)
    created = provision.boot_servers(conn, args.servers, [SOURCE], flavor="m1.nano", prefix=f"bench-{tag}",
                                     timeout=600)
    ids = [s.id for s in created]
    results = {}
    try:
        control.write_text(json.dumps({"live_migration_seconds": args.seconds}))
        contenders = [("sequential openstack CLI", lambda: run_sequential(env, ids))]
        for cap in [int(c) for c in args.caps.split(",")]:
            contenders.append((f"novamove drain caps {cap}", lambda cap=cap: run_novamove(env, cap, args.poll_interval)))
        for name, fn in contenders:
            put_back(adapter, ids, journal)
            wait_settled(conn, ids)
            assert set(hosts_of(conn, ids).values()) == {SOURCE}
            print(f"running: {name} ...", flush=True)
            with Watcher(adapter, set(ids)) as w:
                r = fn()
            wait_settled(conn, ids)
            r["not_moved"] = sum(h == SOURCE for h in hosts_of(conn, ids).values())
            r["max_in_flight_observed"] = w.max_seen
            results[name] = r
    finally:
        if control.exists():
            control.unlink()
        for svc in adapter.list_compute_services():
            if svc.host == SOURCE and not svc.enabled:
                adapter.enable_service(svc)
        if not args.keep:
            for sid in ids:
                conn.compute.delete_server(sid, ignore_missing=True)

    base = results["sequential openstack CLI"]["wall_s"]
    print(f"\n{args.servers} servers, fake live migration {args.seconds:g} s each, one source compute\n")
    print(f"{'contender':28} {'wall s':>8} {'ratio':>7} {'API req':>8} {'fail':>5} {'max in flight':>14}")
    for name, r in results.items():
        fails = r.get("cli_failures", r.get("failed", 0)) + r["not_moved"]
        print(f"{name:28} {r['wall_s']:8.1f} {base / r['wall_s']:6.2f}x {r['api_requests']:8d} {fails:5d} "
              f"{r['max_in_flight_observed']:14d}")
    print("\n(ratio = sequential wall time / this wall time; fail = CLI/novamove failures + servers left on "
          f"{SOURCE}; max in flight = most migrations of these servers seen at once in /os-migrations)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
