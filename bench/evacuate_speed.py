#!/usr/bin/env python3
"""Evacuation speed on the minicloud: `novamove evacuate` (caps 3) vs the loop operators script
today: force the service down, then `openstack server evacuate` one server at a time, each
followed by a `openstack server show` loop until it is ACTIVE again.

Boots N servers (default 12, m1.nano) on compute3, makes every evacuation take --seconds on the
destination (the fake driver's `evacuation_seconds`), then per contender, in the same run:
compute3's nova-compute is killed (the host "fails"), the contender runs (timed: wall time as an
operator sees it, and API requests), and the result is checked (servers not ACTIVE on another
host count as failures). Between contenders (not timed) compute3 is started again, its
forced_down cleared, it is enabled, and the servers are live-migrated back onto it.

By default each contender starts at once after the kill: novamove, which evacuates only a host
proven to have stopped reporting, then waits out its fencing quiet period (25 s by default,
NOVAMOVE_QUIET_PERIOD), or less once Nova shows the compute down (service_down_time, 20 s on
the minicloud); the sequential loop checks nothing. `--after-detection` starts both once
Nova shows the compute down (service_down_time), as an operator paged by it would: novamove's
proof is then Nova's own verdict, at once.

Usage (alone on the minicloud, with NOVAMOVE_MINICLOUD_DIR pointing at it):
  .venv/bin/python bench/evacuate_speed.py [--servers 12] [--seconds 2] [--cap 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIN = Path(sys.executable).parent
FAILED_HOST = "compute3"


def minicloud_env() -> dict:
    args = [str(BIN / "novamove"), "minicloud", "env"]
    if os.environ.get("NOVAMOVE_MINICLOUD_DIR"):
        args += ["--dir", os.environ["NOVAMOVE_MINICLOUD_DIR"]]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("the minicloud is not running (novamove minicloud up)")
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            k, _, v = line[7:].partition("=")
            env[k] = v.strip("'\"")
    return env


def service(adapter, host):
    return next(s for s in adapter.list_compute_services() if s.host == host)


def wait(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}")


def restore(manager, adapter, conn, journal, ids):
    """Not timed: compute3 running, cleaned up, not forced down, enabled, holding every server."""
    from novamove.engine.batch.drain import BatchRunner
    from novamove.minicloud import procs
    from novamove.minicloud.manager import _Starter
    from novamove.planner import DrainStep
    name = manager.compute_component(FAILED_HOST)
    if name not in procs.running(manager.state / "run", manager.state):
        beat = adapter.compute_service_heartbeat(FAILED_HOST)
        _Starter(manager.layout, manager._saved_venv(), lambda m: None).launch(name)
        # It reports (and so finished init_host, where it cleans up evacuated guests) once its
        # heartbeat moves; forced down or not, the API's up/down says nothing about that.
        wait(lambda: adapter.compute_service_heartbeat(FAILED_HOST) != beat, 180, "compute3 reporting")
    wait(lambda: not [m for m in adapter.list_evacuations(source_host=FAILED_HOST) if m.status == "done"],
         180, "compute3 to clean up its evacuations")
    svc = service(adapter, FAILED_HOST)
    if svc.forced_down:
        svc = adapter.set_service_forced_down(svc, False)
    if not svc.enabled:
        adapter.enable_service(svc)
    wait(lambda: service(adapter, FAILED_HOST).up, 120, "compute3 up")
    wait_schedulable(conn, FAILED_HOST)
    for attempt in range(5):
        steps = []
        for sid in ids:
            s = adapter.get_server(sid)
            if s.host != FAILED_HOST:
                steps.append(DrainStep(server_id=sid, server_name=s.name, source=s.host, dest=FAILED_HOST,
                                       mode="live"))
        if not steps:
            break
        time.sleep(2 * attempt)      # the scheduler may still see compute3 as it was
        run = "putback-" + uuid.uuid4().hex[:6]
        journal.start_run(run, "bench")
        BatchRunner(adapter, journal, run, steps, max_parallel=4, max_per_host=4).run()
        journal.finish_run(run, "ok")
    wait(lambda: all(adapter.get_server(i).host == FAILED_HOST and adapter.get_server(i).status == "ACTIVE"
                     and not adapter.get_server(i).task_state for i in ids), 300, "servers back on compute3")


def wait_schedulable(conn, host, timeout=180):
    """Nova marks a disabled compute's resource provider COMPUTE_STATUS_DISABLED; enabling the
    service clears it through the compute (or its periodic task): until then the scheduler
    finds no valid host there."""
    [rp] = list(conn.placement.resource_providers(name=f"{host}.fake.local"))

    def clear():
        traits = conn.placement.get(f"/resource_providers/{rp.id}/traits", microversion="1.6").json()["traits"]
        return "COMPUTE_STATUS_DISABLED" not in traits
    wait(clear, timeout, f"{host} schedulable (COMPUTE_STATUS_DISABLED cleared)")


def fail_host(manager):
    manager.stop_compute(FAILED_HOST, kill=True)


def run_sequential(env, ids) -> dict:
    """The operator's loop: force the service down (else Nova refuses: ComputeServiceInUse), then
    one `openstack server evacuate` per server (the scheduler picks the host), then a loop of
    `openstack server show` every second until it is ACTIVE again."""
    requests = failures = 0
    t0 = time.monotonic()
    osc = [str(BIN / "openstack"), "--debug", "--os-compute-api-version", "2.94"]
    p = subprocess.run(osc + ["compute", "service", "set", "--down", FAILED_HOST, "nova-compute"],
                       env=env, capture_output=True, text=True)
    requests += len(re.findall(r"^REQ: curl", p.stderr, re.M))
    failures += p.returncode != 0
    for sid in ids:
        # Not `--wait`: python-openstackclient compares the lower-cased status with "ACTIVE" there
        # and never returns (osc_lib wait_for_status); operators' scripts poll `server show`.
        p = subprocess.run(osc + ["server", "evacuate", sid], env=env, capture_output=True, text=True)
        requests += len(re.findall(r"^REQ: curl", p.stderr, re.M))
        failures += p.returncode != 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            p = subprocess.run(osc + ["server", "show", "-f", "json", sid], env=env, capture_output=True,
                               text=True)
            requests += len(re.findall(r"^REQ: curl", p.stderr, re.M))
            try:
                shown = json.loads(p.stdout)
            except ValueError:
                shown = {}
            if shown.get("status") in ("ACTIVE", "ERROR") and not shown.get("OS-EXT-STS:task_state"):
                failures += shown.get("status") == "ERROR"
                break
            time.sleep(1)
        else:
            failures += 1
    return {"wall_s": time.monotonic() - t0, "api_requests": requests, "cli_failures": failures}


def run_novamove(env, cap: int) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "novamove"), "evacuate", FAILED_HOST, "--fenced", "--max-parallel", str(cap),
                        "--max-per-host", str(cap), "-q", "-f", "json"], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    try:
        rep = json.loads(p.stdout)
    except ValueError:
        raise SystemExit(f"novamove evacuate failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    return {"wall_s": wall, "api_requests": rep["api_requests"], "exit_code": p.returncode,
            "peak_in_flight_reported": rep["peak_in_flight"],
            "failed": sum(r["result"] != "evacuated" for r in rep["results"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=2.0, help="fake evacuation duration on the destination")
    ap.add_argument("--cap", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="do not delete the servers at the end")
    ap.add_argument("--after-detection", action="store_true",
                    help="start each contender once Nova shows the killed compute down (not timed), as an operator "
                         "paged by Nova's state would; default: at once after the kill (the worst case for "
                         "novamove, which must then wait out its fencing quiet period)")
    args = ap.parse_args()

    env = dict(os.environ, **minicloud_env())
    os.environ.update(env)
    import openstack
    from novamove import cloud
    from novamove.cloud import provision
    from novamove.engine.journal import Journal
    from novamove.minicloud import Minicloud

    manager = Minicloud(Path(env["OS_CLIENT_CONFIG_FILE"]).parent, log=lambda m: None)
    conn = openstack.connect(cloud="minicloud")
    adapter = cloud.connect("minicloud")
    workdir = Path(f"/tmp/novamove-bench-evacuate-{os.getpid()}")
    workdir.mkdir(exist_ok=True)
    journal = Journal(workdir / "journal.sqlite")
    env["NOVAMOVE_JOURNAL"] = str(workdir / "journal.sqlite")

    quota = conn.compute.get_quota_set(conn.current_project_id, usage=True)
    need = (quota.usage or {}).get("instances", 0) + args.servers + 5
    if 0 <= quota.instances < need:
        conn.compute.update_quota_set(conn.current_project_id, instances=need,
                                      cores=max(quota.cores, need * 2), ram=max(quota.ram, need * 1024))
    tag = uuid.uuid4().hex[:5]
    wait_schedulable(conn, FAILED_HOST)
    print(f"booting {args.servers} servers on {FAILED_HOST} ...", flush=True)
    created = provision.boot_servers(conn, args.servers, [FAILED_HOST], flavor="m1.nano",
                                     prefix=f"bench-evac-{tag}", timeout=600)
    ids = [s.id for s in created]
    results = {}
    try:
        manager.set_fakevirt(evacuation_seconds=args.seconds)
        contenders = [("sequential openstack CLI", lambda: run_sequential(env, ids)),
                      (f"novamove evacuate caps {args.cap}", lambda: run_novamove(env, args.cap))]
        for name, fn in contenders:
            restore(manager, adapter, conn, journal, ids)
            fail_host(manager)
            if args.after_detection:
                # Not timed: the operator (or monitoring) acts on Nova's own verdict, once
                # service_down_time has passed without a report.
                wait(lambda: not service(adapter, FAILED_HOST).up, 180, f"Nova to show {FAILED_HOST} down")
            print(f"running: {name} ...", flush=True)
            r = fn()
            wait(lambda: all(not adapter.get_server(i).task_state for i in ids), 300, "servers settled")
            servers = [adapter.get_server(i) for i in ids]
            r["not_evacuated"] = sum(s.host == FAILED_HOST or s.status != "ACTIVE" for s in servers)
            results[name] = r
        report(args, results)
    finally:
        manager.set_fakevirt(evacuation_seconds=0)
        try:
            restore(manager, adapter, conn, journal, ids)
        finally:
            if not args.keep:
                for sid in ids:
                    conn.compute.delete_server(sid, ignore_missing=True)
    return 0


def report(args, results: dict) -> None:
    base = results["sequential openstack CLI"]
    start = "once Nova shows it down" if args.after_detection else "at once after the kill"
    print(f"\n{args.servers} servers on a failed compute, fake evacuation {args.seconds:g} s each, "
          f"contenders started {start}\n")
    print(f"{'contender':28} {'wall s':>8} {'speed-up':>9} {'API req':>8} {'req ratio':>10} {'fail':>5}")
    for name, r in results.items():
        fails = r.get("cli_failures", r.get("failed", 0)) + r["not_evacuated"]
        print(f"{name:28} {r['wall_s']:8.1f} {base['wall_s'] / r['wall_s']:8.2f}x {r['api_requests']:8d} "
              f"{r['api_requests'] / max(base['api_requests'], 1):9.2f}x {fails:5d}")
    print("\n(speed-up = sequential wall time / this wall time; req ratio = this run's API requests / "
          "the sequential loop's; fail = CLI/novamove failures + servers not ACTIVE on another host)")
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    sys.exit(main())
