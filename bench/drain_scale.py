#!/usr/bin/env python3
"""Drain scale on the minicloud: one host holding N m1.nano servers (default 200) drained by
novamove in-process, fake live migrations of --seconds (0-1 s).

Figures, all from this one run:
- API requests per move (goal <= 6 amortized): the adapter's request counter over the drain;
- novamove CPU per move (goal <= 20 ms): this process's CPU time over the drain (novamove,
  openstacksdk and keystoneauth: everything the client spends), divided by the moves;
- wall time against the bound ceil(N / cap) x T1 (goal <= 1.3x), T1 being one live migration's
  own time measured here (median of 3 single `novamove migrate` runs of a spare server off the
  source, which holds the N servers as the drain's moves do; request to settled) and cap the drain's per-source cap (Nova runs up to
  max_concurrent_live_migrations = 4 per compute in the minicloud).
If compute1 cannot hold N servers (the minicloud's fake hypervisors have 16 vCPUs: 64 m1.nano at
Nova's default allocation ratio of 4), the run gives every fake hypervisor room for them (its
vCPUs, memory and disk in the fake driver's control file, each nova-compute restarted) and puts
them back at the end; with --no-grow it measures the largest N the minicloud holds as it is.
(Killed midway, it leaves them grown: remove vcpus/memory_mb/disk_gb from the state directory's
fakevirt.json and `novamove minicloud restart-compute` each host.)

Usage (alone on a minicloud with >= 4 computes):
  .venv/bin/python bench/drain_scale.py [--servers 200] [--seconds 1] [--cap 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIN = Path(sys.executable).parent
SOURCE = "compute1"


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


def _process_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of every process on this machine, summed by program (the
    minicloud's services by state directory and name: mc-bench/nova-api, ...; a worker process
    counts for its parent's service)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[str, tuple[str, str, float]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        procs[pid] = (fields[1], _program(argv), (int(fields[11]) + int(fields[12])) / tick)
    out: dict[str, float] = {}
    for pid, (ppid, name, cpu) in procs.items():
        if "/" not in name and ppid in procs and "/" in procs[ppid][1]:
            name = procs[ppid][1]
        out[name] = out.get(name, 0.0) + cpu
    return out


def _program(argv: list) -> str:
    """A short name for a process: the minicloud's services as `<state dir>/<service>`
    (mc-bench/nova-api, mc-bench/nova-compute:compute1), anything else by its program."""
    text = " ".join(argv)
    m = re.search(r"/state/novamove/([^/ ]+)/", text)
    where = m.group(1) + "/" if m else ""
    if "novamove_wsgi.py" in text:
        module = argv[argv.index(next(a for a in argv if a.endswith("novamove_wsgi.py"))) + 1]
        return where + {"nova": "nova-api"}.get(module.split(".")[0], module.split(".")[0])
    for a in argv[:3]:
        base = os.path.basename(a.split(":")[0])
        if base.startswith("nova-"):
            conf = re.search(r"/(compute\d+)\.conf", text)
            return where + base + (":" + conf.group(1) if conf and base == "nova-compute" else "")
        if base in ("mariadbd", "mysqld", "beam.smp") or base.startswith("novamove_"):
            return where + base
    words = [os.path.basename(a) for a in argv[:2]]
    return words[1] if len(words) > 1 and words[0].startswith("python") else (words[0] if words else "?")


class _Trace:
    """Times of every request the drain makes and of its progress lines (JSON lines)."""

    def __init__(self, cloud, path: str):
        self.out = open(path, "w")
        self.t0 = time.monotonic()
        self.cpu0 = _process_cpu()
        session = cloud.conn.session
        original = session.request

        def timed(url, method, *a, **kw):
            t = time.monotonic()
            try:
                return original(url, method, *a, **kw)
            finally:
                self._write(kind="request", t=t - self.t0, s=time.monotonic() - t, method=method,
                            path=url.split("?")[0][-60:])
        session.request = timed

    def progress(self, line: str) -> None:
        self._write(kind="event", t=time.monotonic() - self.t0, line=line)

    def _write(self, **row) -> None:
        if self.out is not None:      # (after the drain: the undrain is not traced)
            self.out.write(json.dumps(row) + "\n")

    def close(self) -> None:
        cpu = _process_cpu()
        used = {name: round(cpu[name] - self.cpu0.get(name, 0.0), 2) for name in cpu}
        self._write(kind="cpu", t=time.monotonic() - self.t0,
                    seconds=dict(sorted(used.items(), key=lambda kv: -kv[1])))
        self.out.close()
        self.out = None


# The fake hypervisors' size for a run that needs more room than the minicloud's default
# (16 vCPUs, 16 GB, 200 GB): 256 m1.nano each.
GROWN = {"vcpus": 64, "memory_mb": 40960, "disk_gb": 300}


def _fits(c, need: dict) -> dict:
    """How many servers of `need` the source has room for, per resource."""
    host = next(h for h in c.compute_hosts() if h.name == SOURCE)
    return {k: int(getattr(host.free, k) // v) if v else 10**9 for k, v in need.items()}


def _size_hypervisors(mc, c, computes, size) -> None:
    """Set (or, with None, put back) the fake driver's inventory and restart every nova-compute,
    then wait until placement shows the source's new size."""
    path = mc.layout.fakevirt_control
    control = json.loads(path.read_text()) if path.exists() else {}
    for key in GROWN:
        control.pop(key, None)
    control.update(size or {})
    path.write_text(json.dumps(control))
    for h in computes:
        mc.restart_compute(h)
    want = (size or {}).get("vcpus", 16)
    end = time.monotonic() + 180
    while time.monotonic() < end:
        host = next(h for h in c.compute_hosts() if h.name == SOURCE)
        if host.capacity.vcpus == want * 4 or host.capacity.vcpus == want:
            return
        time.sleep(2)
    sys.exit(f"{SOURCE}'s inventory did not change to {want} vCPUs within 3 min")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--cap", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-grow", dest="grow", action="store_false",
                    help="do not enlarge the fake hypervisors: measure the largest N they hold")
    ap.add_argument("--trace", metavar="FILE", help="write the drain's timeline (every API request "
                    "and progress line, with times) to FILE as JSON lines, for finding where wall "
                    "time goes")
    ap.add_argument("--observe", action="store_true",
                    help="drain with the event stream and the metrics textfile on (--events, "
                         "--metrics-textfile), to see what they cost in CPU per move")
    ap.add_argument("--journal-url", action="store_true",
                    help="journal on the minicloud's MariaDB (`novamove minicloud journal-url`) "
                         "instead of a fresh SQLite file, to see a shared journal's CPU per move")
    args = ap.parse_args()
    os.environ.update(minicloud_env())
    scratch = f"/tmp/novamove-bench-drain-scale-{uuid.uuid4().hex[:6]}"
    os.environ["NOVAMOVE_JOURNAL"] = scratch + ".sqlite"
    if args.journal_url:
        from novamove.minicloud import Minicloud
        os.environ["NOVAMOVE_JOURNAL"] = Minicloud(Path(os.environ["NOVAMOVE_MINICLOUD_DIR"])).journal_url()
    from novamove import api
    from novamove.engine.journal import Journal
    from novamove.engine.single.mover import move
    from novamove import cloud as novamove_cloud
    from novamove.cloud.provision import ensure_image
    from novamove.minicloud import Minicloud, default_state_dir
    mc = Minicloud(Path(os.environ.get("NOVAMOVE_MINICLOUD_DIR") or default_state_dir()))
    conn = mc.connection("minicloud")
    c = novamove_cloud.connect(cloud="minicloud")
    computes = mc.compute_hosts()
    others = [h for h in computes if h != SOURCE]
    # A run killed midway leaves its servers behind: delete them, or the source has no room left.
    leftovers = [s for s in conn.compute.servers(all_projects=True) if (s.name or "").startswith("dscale-")]
    for s in leftovers:
        conn.compute.delete_server(s, ignore_missing=True)
    for s in leftovers:
        conn.compute.wait_for_delete(s, wait=600)
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    need = {"vcpus": flavor.vcpus, "memory_mb": flavor.ram, "disk_gb": flavor.disk}
    fits = _fits(c, need)
    limit_key = min(fits, key=fits.get)
    grown = False
    if fits[limit_key] < args.servers + 1 and args.grow:
        _size_hypervisors(mc, c, computes, GROWN)
        grown = True
        fits = _fits(c, need)
        limit_key = min(fits, key=fits.get)
    n = min(args.servers, fits[limit_key] - 1)       # one spare for T1
    if n < 1:
        sys.exit(f"{SOURCE} has no room for the servers (free: {fits}); is something else on it?")
    limited = n < args.servers
    image = ensure_image(conn)
    made, spare = [], None
    try:
        t0 = time.monotonic()
        for i in range(n + 1):
            made.append(conn.compute.create_server(name=f"dscale-{i}", image_id=image, flavor_id=flavor.id,
                                                   networks="none", availability_zone=f"nova:{SOURCE}"))
        made = [conn.compute.wait_for_server(s, wait=900, interval=2) for s in made]
        boot_s = time.monotonic() - t0
        spare, made = made[0], made[1:]
        mc.set_fakevirt(live_migration_seconds=args.seconds)
        # T1: one live migration on its own, request to settled (novamove migrate, in-process),
        # in the drain's own setting: from the source, which holds the N servers (Nova's resource
        # tracker work on a host grows with the servers on it, so a move off an emptier host is
        # faster). Between timed moves the spare goes back to the source untimed; the last one
        # leaves it on a destination, out of the drain.
        journal = Journal(os.environ["NOVAMOVE_JOURNAL"])
        t1s = []
        for i in range(3):
            dest = others[i % len(others)]
            t = time.monotonic()
            r = move(c, journal, spare.id, dest, mode="live", poll_interval=0.2)
            t1s.append(time.monotonic() - t)
            assert r.ok, r.summary
            if i < 2:
                r = move(c, journal, spare.id, SOURCE, mode="live", poll_interval=0.2)
                assert r.ok, r.summary
        t1 = statistics.median(t1s)
        # the drain
        trace = _Trace(c, args.trace) if args.trace else None
        req0 = c.requests.count
        cpu0, wall0 = time.process_time(), time.monotonic()
        observers = []
        if args.observe:
            from novamove.observe.metrics import RunMetrics
            from novamove.observe.stream import EventStream
            observers = [EventStream.open(scratch + ".events.jsonl"), RunMetrics(textfile=scratch + ".prom")]
        rep = api.drain(SOURCE, cloud=c, max_parallel=args.cap, max_per_host=args.cap, poll_interval=0.5,
                        progress=trace.progress if trace else None, observers=observers)
        for o in observers:
            getattr(o, "flush", getattr(o, "close", lambda: None))()
        wall = time.monotonic() - wall0
        if trace:
            trace.close()
        cpu = time.process_time() - cpu0
        requests = c.requests.count - req0
        moves = rep.count("moved")
        # How much of the wall the cap's slots were busy: the sum of the moves' own times (start
        # to seen landed) over cap x wall. Near 1, what is left of the wall over the bound is the
        # moves themselves taking longer side by side than T1 alone (Nova on these cores).
        move_s = [r.seconds for r in rep.results if r.result == "moved"]
        # the bound counts what the drain found on the host (N booted, plus any server already there)
        bound = math.ceil(max(moves, n) / args.cap) * t1
        figures = {
            "servers": n, "limited_by": limit_key if limited else None, "wanted": args.servers,
            "hypervisors_grown": GROWN if grown else None,
            "boot_s": round(boot_s, 1), "live_migration_seconds": args.seconds, "cap": args.cap,
            "t1_s": round(t1, 2), "t1_samples_s": [round(x, 2) for x in t1s], "moved": moves, "ok": rep.ok, "wall_s": round(wall, 1),
            "bound_s": round(bound, 1), "wall_over_bound": round(wall / bound, 2),
            "requests": requests, "requests_per_move": round(requests / max(moves, 1), 2),
            "mean_move_s": round(statistics.mean(move_s), 2) if move_s else None,
            "slots_busy": round(sum(move_s) / (args.cap * wall), 2) if wall else None,
            "cpu_s": round(cpu, 2), "cpu_ms_per_move": round(cpu / max(moves, 1) * 1000, 1),
            "load_1min": round(os.getloadavg()[0], 1), "observed": args.observe,
        }
        figures["goal_requests_ok"] = figures["requests_per_move"] <= 6
        figures["goal_cpu_ok"] = figures["cpu_ms_per_move"] <= 20
        figures["goal_wall_ok"] = figures["wall_over_bound"] <= 1.3
        api.undrain(SOURCE, cloud=c)
    finally:
        mc.set_fakevirt(live_migration_seconds=0.5)
        for s in made + ([spare] if spare else []):
            conn.compute.delete_server(s, ignore_missing=True)
        if grown:
            for s in made + ([spare] if spare else []):
                conn.compute.wait_for_delete(s, wait=600)
            _size_hypervisors(mc, c, computes, None)
        c.close()
    if args.json:
        print(json.dumps(figures))
    else:
        if limited:
            print(f"{SOURCE} holds at most {fits[limit_key]} m1.nano servers ({limit_key} is the limit): "
                  f"measured N = {n} (+1 spare for T1) instead of {args.servers}")
        print(f"drain of {n} servers from {SOURCE} (booted in {boot_s:.0f} s), caps {args.cap}, "
              f"live migrations {args.seconds:g} s: {moves} moved, ok={rep.ok}")
        print(f"wall {wall:.1f} s vs bound ceil(N/cap) x T1 = {bound:.1f} s (T1 {t1:.2f} s): "
              f"{figures['wall_over_bound']}x (goal <= 1.3)")
        print(f"moves took {figures['mean_move_s']} s on average side by side (T1 {t1:.2f} s alone); the "
              f"{args.cap} slots were busy {figures['slots_busy']:.0%} of the wall")
        print(f"API requests {requests}: {figures['requests_per_move']} per move (goal <= 6)")
        print(f"novamove CPU {cpu:.2f} s: {figures['cpu_ms_per_move']} ms per move (goal <= 20; load average "
              f"{figures['load_1min']})")
    return 0 if figures["goal_requests_ok"] and figures["goal_cpu_ok"] and figures["goal_wall_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
