#!/usr/bin/env python3
"""One targeted move done three ways, on the minicloud with 3 and with 8 computes.

  (a) workaround  the classic `openstack` CLI sequence: list services, disable every other
                  enabled compute, `server migrate --live-migration --wait` (no host), re-enable
  (b) native      novamove.api.migrate(..., strategy="native")
  (c) isolate     novamove.api.migrate(..., strategy="isolate")

Per way: API requests made (HTTP requests, authentication and discovery included: for (a)
counted from `--debug` REQ lines of every CLI process, for (b)/(c) by novamove's session
counter), seconds during which any other compute was disabled, wall time, and whether the
server landed on the target. Each way moves its own ACTIVE m1.nano server from compute1 to
the last compute.

The shared minicloud (3 computes) is used under its lock; for other sizes a private minicloud
is started in its own state directory and ports, and stopped afterwards (`--keep` keeps it).

Usage:
  flock /tmp/novamove-minicloud.lock .venv/bin/python bench/migrate_compare.py [--computes 3 8]
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

BIN = Path(sys.executable).parent
SOURCE = "compute1"


def openstack_cli(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run one `openstack` command with --debug; returns (process, HTTP requests it made)."""
    proc = subprocess.run([str(BIN / "openstack"), "--debug", *args], env=env, capture_output=True,
                          text=True, timeout=900)
    requests = sum(1 for line in proc.stderr.splitlines() if line.startswith("REQ: curl"))
    if proc.returncode != 0:
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-3:]
        raise RuntimeError(f"openstack {' '.join(args)} failed: {' | '.join(tail)}")
    return proc, requests


def workaround(env: dict, server_id: str, target: str) -> dict:
    """(a) disable the others, let the scheduler pick, wait for the move, re-enable."""
    t0 = time.monotonic()
    requests = 0
    proc, n = openstack_cli(env, "compute", "service", "list", "--service", "nova-compute", "-f", "json")
    requests += n
    others = [s["Host"] for s in json.loads(proc.stdout) if s["Host"] != target and s["Status"] == "enabled"]
    window_start = None
    for host in others:
        if window_start is None:
            window_start = time.monotonic()
        _, n = openstack_cli(env, "compute", "service", "set", "--disable", "--disable-reason",
                             "bench: workaround", host, "nova-compute")
        requests += n
    try:
        # Without novamove the operator cannot see the scheduling decision: the others stay
        # disabled until the migration is over.
        _, n = openstack_cli(env, "server", "migrate", "--live-migration", "--wait", server_id)
        requests += n
    finally:
        for host in others:
            _, n = openstack_cli(env, "compute", "service", "set", "--enable", host, "nova-compute")
            requests += n
    window = time.monotonic() - window_start if window_start else 0.0
    proc, n = openstack_cli(env, "server", "show", server_id, "-f", "json")
    requests += n
    host = json.loads(proc.stdout).get("OS-EXT-SRV-ATTR:host")
    return {"requests": requests, "disabled_s": window, "wall_s": time.monotonic() - t0,
            "landed": host == target}


def novamove_way(cloud_name: str, server_id: str, target: str, strategy: str, journal: Path) -> dict:
    from novamove import api
    from novamove.cloud import connect
    t0 = time.monotonic()
    cloud = connect(cloud_name)   # fresh connection: authentication is counted too
    result = api.migrate(server_id, target, cloud=cloud, strategy=strategy, journal_path=journal,
                         poll_interval=1.0)
    return {"requests": result.api_requests, "disabled_s": result.isolation_seconds,
            "wall_s": time.monotonic() - t0, "landed": result.ok and result.after.get("host") == target,
            "error": result.error}


def boot(conn, n: int) -> list[str]:
    image = conn.image.find_image("cirros-tiny", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    made = [conn.compute.create_server(name=f"bench-mv-{uuid.uuid4().hex[:6]}", image_id=image.id,
                                       flavor_id=flavor.id, networks="none",
                                       availability_zone=f"nova:{SOURCE}") for _ in range(n)]
    return [conn.compute.wait_for_server(s, wait=300, interval=1).id for s in made]


def measure(manager, computes: int, journal: Path) -> list[dict]:
    env = {**os.environ, **manager.env()}
    os.environ.update(manager.env())
    conn = manager.connection()
    target = manager.layout.compute_host(computes)
    services_before = {s.host: (s.status, s.disabled_reason) for s in conn.compute.services(binary="nova-compute")}
    ids = boot(conn, 3)
    rows = []
    try:
        for label, run in (("(a) openstack CLI workaround", lambda sid: workaround(env, sid, target)),
                           ("(b) novamove native", lambda sid: novamove_way("minicloud", sid, target,
                                                                             "native", journal)),
                           ("(c) novamove isolate", lambda sid: novamove_way("minicloud", sid, target,
                                                                              "isolate", journal))):
            sid = ids.pop(0)
            row = run(sid)
            row.update(computes=computes, way=label)
            rows.append(row)
            print(f"  {computes} computes, {label}: {row}", file=sys.stderr, flush=True)
            services_now = {s.host: (s.status, s.disabled_reason)
                            for s in conn.compute.services(binary="nova-compute")}
            row["services_restored"] = services_now == services_before
            ids.append(sid)
    finally:
        for sid in ids:
            try:
                conn.compute.delete_server(sid)
            except Exception:
                pass
    return rows


def minicloud_for(computes: int, keep: bool, base_port: int):
    from novamove.minicloud import Minicloud, default_state_dir
    shared = Minicloud(default_state_dir(), log=lambda m: None)
    if shared.is_running() and shared.layout.computes == computes:
        return shared, False
    private = Minicloud(Path(f"/tmp/novamove-bench-{computes}"),
                        log=lambda m: print(f"  [minicloud-{computes}] {m}", file=sys.stderr, flush=True))
    started = not private.is_running()
    private.up(computes=computes, base_port=base_port)
    return private, started and not keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--keep", action="store_true", help="keep private miniclouds running")
    parser.add_argument("--base-port", type=int, default=17200, help="first port of private miniclouds")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    journal = Path(f"/tmp/novamove-bench-journal-{os.getpid()}.sqlite")
    rows = []
    for n in args.computes:
        manager, stop = minicloud_for(n, args.keep, args.base_port)
        try:
            rows.extend(measure(manager, n, journal))
        finally:
            if stop:
                manager.down(quiet=True)

    header = f"{'computes':>8}  {'way':<30} {'API requests':>12} {'others disabled (s)':>20} " \
             f"{'wall (s)':>9}  {'landed':<6} {'services as before':<18}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['computes']:>8}  {r['way']:<30} {r['requests']:>12} {r['disabled_s']:>20.1f} "
              f"{r['wall_s']:>9.1f}  {'yes' if r['landed'] else 'NO':<6} "
              f"{'yes' if r.get('services_restored') else 'NO':<18}")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
