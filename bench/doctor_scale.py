#!/usr/bin/env python3
"""Doctor scale: the drift analysis of a synthetic 10,000-host / 200,000-server cloud.

Goal (issue 18): <= 5 s of novamove's CPU and <= 1 GB. Figures printed, all measured in this
one run:
- detect() CPU and wall time (median of --repeat runs, no tracing active), findings by class
  (the synthetic cloud has drift of every class injected; the injected counts are checked);
- peak memory: the whole process's max RSS (snapshot + analysis, from getrusage) and the
  analysis's own peak Python allocations (tracemalloc, in a separate traced run);
- a naive per-server lookup baseline in the same process: for each server, its migrations and
  its allocations found by scanning the listings (what a loop over servers does without an
  index), the same verdicts for the allocation and placement classes. It is quadratic, so it
  runs on a sample of --naive-sample servers and is extrapolated to the whole cloud (said so);
  its verdicts on the sample are compared with detect()'s;
- the requests a whole-cloud scan makes (scan.py: per provider and per page) against a
  per-server scan (one allocation and one migration read per server), computed from the
  listing sizes and --page ([api] max_limit).

With --minicloud N (alone on a running minicloud): the scan of a real Nova and Placement
holding >= N servers (the fake hypervisors grown as bench/drain_scale.py grows them when they
cannot hold them, put back at the end): a whole-cloud scan's requests and wall time (median of
--repeat scans, engine/doctor/scan.py) against, in the same run, the naive per-server lookup
(for each server, its allocations and its migrations: two requests per server).

Usage: .venv/bin/python bench/doctor_scale.py [--hosts 10000] [--servers 200000] [--json]
       .venv/bin/python bench/doctor_scale.py --minicloud 200 [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from novamove.engine import tags  # noqa: E402
from novamove.engine.doctor import Options, Snapshot, detect  # noqa: E402
from novamove.engine.doctor.detect import expected_host  # noqa: E402
from novamove.engine.doctor.snapshot import TERMINAL  # noqa: E402
from novamove.model import Migration, ResourceProvider, ServerState, Service  # noqa: E402
from planner_scale import timed_cpu as timed  # noqa: E402  (median wall, median CPU, result)

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
OLD = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%f")
OLDER = (NOW - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S.%f")
FRESH = (NOW - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%f")
R = {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 40}
RATE = 0.001          # share of servers (or hosts) with each kind of drift


def synthetic_cloud(n_hosts: int, n_servers: int, seed: int = 42) -> tuple[Snapshot, Counter]:
    """Hosts c00000.., servers spread at random, one migration record per 4 servers (old and
    finished well), 0.5% of servers moving right now (healthy), and RATE of every drift class.
    Returns the snapshot and how many of each class were injected."""
    rnd = random.Random(seed)
    hosts = [f"c{i:05d}" for i in range(n_hosts)]
    services = [Service(id=f"u{i}", host=h, updated_at=FRESH) for i, h in enumerate(hosts)]
    hypervisors = [{"id": f"rp-{h}", "hypervisor_hostname": f"{h}.example.org", "host": h} for h in hosts]
    providers = [ResourceProvider(f"rp-{h}", f"{h}.example.org", 1, f"rp-{h}") for h in hosts]
    alloc: dict[str, dict] = {p.uuid: {} for p in providers}
    servers, migrations, injected = [], [], Counter()
    mid = 0

    def migration(sid, status, src, dst, updated=OLD, kind="live-migration"):
        nonlocal mid
        mid += 1
        m = Migration(str(mid), sid, src, dst, status, kind, uuid=f"mig-{mid}", created_at=OLDER, updated_at=updated)
        migrations.append(m)
        return m

    for i in range(n_servers):
        at = rnd.randrange(n_hosts)
        sid, h, other = f"srv{i:06d}", hosts[at], hosts[(at + 1) % n_hosts]
        fields = dict(id=sid, name=f"vm-{sid}", status="ACTIVE", host=h, node=f"{h}.example.org", vm_state="active",
                      power_state=1, updated=OLD)
        holds = {f"rp-{h}"}
        r = rnd.random()
        k = int(r / RATE) if r < 8 * RATE else None          # 8 server-level drift kinds
        if k == 0:
            fields.update(status="VERIFY_RESIZE", vm_state="resized")
            migration(sid, "finished", other, h, kind="resize")
            injected["verify-resize-forgotten"] += 1
        elif k == 1:
            fields.update(task_state="migrating")
            migration(sid, "failed", h, other)
            injected["task-state-stuck"] += 1
        elif k == 2:
            m = migration(sid, "running", h, other)
            alloc[f"rp-{h}"][m.uuid] = R
            injected["migration-stuck"] += 1
        elif k == 3:
            migration(sid, "completed", other, h)
            fields.update(host=other, node=f"{other}.example.org")
            holds = {f"rp-{other}"}
            injected["server-not-where-migration-says"] += 1
        elif k == 4:
            m = migration(sid, "completed", other, h)
            alloc[f"rp-{other}"][m.uuid] = R
            injected["migration-allocation-leaked"] += 1
        elif k == 5:
            holds = {f"rp-{other}"}
            injected["server-allocation-elsewhere"] += 1
        elif k == 6:
            holds = set()
            injected["server-allocation-missing"] += 1
        elif k == 7:
            fields.update(status="ERROR", vm_state="error", fault_message="live migration failed",
                          fault_created=OLD)
            migration(sid, "error", h, other)
            injected["server-error-after-migration"] += 1
        elif r < 0.006:                                      # healthy: a live migration in flight
            fields.update(task_state="migrating", status="MIGRATING")
            m = migration(sid, "running", h, other, updated=FRESH)
            holds = {f"rp-{other}"}
            alloc[f"rp-{h}"][m.uuid] = R
        elif r < 0.25:                                       # an old move that went well
            migration(sid, "completed", other, h)
        for rp in holds:
            alloc[rp][sid] = R
        servers.append(ServerState(**fields))
    for j in range(max(1, int(n_servers * RATE))):           # deleted servers' allocations
        alloc[f"rp-{rnd.choice(hosts)}"][f"ghost-{j}"] = R
        injected["consumer-unknown"] += 1
    # computes: forced down but reporting, down holding servers, tags
    again = list(services)
    on_host = Counter(s.host for s in servers)
    busy = [i for i, h in enumerate(hosts) if on_host[h]]
    picks = rnd.sample(busy, 5 * max(1, int(n_hosts * RATE)))
    step = len(picks) // 5
    for n, i in enumerate(picks):
        h, kind = hosts[i], n // step
        if kind == 0:
            services[i] = Service(id=f"u{i}", host=h, state="down", forced_down=True, updated_at=OLD)
            again[i] = Service(id=f"u{i}", host=h, state="down", forced_down=True, updated_at=FRESH)
            injected["compute-forced-down-reporting"] += 1
            continue
        if kind == 1:
            services[i] = Service(id=f"u{i}", host=h, state="down", updated_at=OLD)
            injected["compute-down-holding-servers"] += 1
        elif kind == 2:
            services[i] = Service(id=f"u{i}", host=h, status="disabled", updated_at=FRESH,
                                  disabled_reason=tags.tagged_reason(f"iso{n:09d}", None))
            injected["compute-isolation-left"] += 1
        elif kind == 3:
            services[i] = Service(id=f"u{i}", host=h, status="disabled", updated_at=FRESH,
                                  disabled_reason=tags.drain_reason(f"drn{n:09d}", "x", NOW - timedelta(hours=1)))
            injected["compute-tag-dead-run"] += 1
        else:
            services[i] = Service(id=f"u{i}", host=h, status="disabled", updated_at=FRESH,
                                  disabled_reason=tags.drain_reason(f"fin{n:09d}", "x"))
            injected["compute-held"] += 1
        again[i] = services[i]
    snap = Snapshot(now=NOW, servers=servers, migrations=migrations, services=services, hypervisors=hypervisors,
                    providers=providers, allocations=alloc, services_again=again)
    return snap, injected


def naive(snap: Snapshot, sample: list[ServerState]) -> dict[str, str]:
    """The per-server loop without an index: each server's migrations and allocations looked
    up by scanning the listings. Verdicts for the placement and location classes."""
    node_rp = {h["hypervisor_hostname"]: h["id"] for h in snap.hypervisors}
    out = {}
    for s in sample:
        mine = [m for m in snap.migrations if m.server_id == s.id]                    # scan
        held = {rp: c[s.id] for rp, c in snap.allocations.items() if s.id in c}        # scan
        latest = max(mine, key=lambda m: (m.created_at or "", int(m.id))) if mine else None
        busy = s.task_state is not None or any(m.status not in TERMINAL for m in mine)
        where = expected_host(latest)
        if not busy and where is not None and s.host != where:
            out[s.id] = "server-not-where-migration-says"
        elif not busy and s.node in node_rp:
            if not held:
                out[s.id] = "server-allocation-missing"
            elif set(held) - {node_rp[s.node]}:
                out[s.id] = "server-allocation-elsewhere"
    return out


def minicloud_scan(n_servers: int, repeat: int) -> dict:
    """The scan of the running minicloud with >= n_servers servers, against the naive
    per-server lookup, both against the same cloud in this run."""
    import os
    import statistics
    import uuid
    from drain_scale import GROWN, _size_hypervisors, minicloud_env
    os.environ.update(minicloud_env())
    os.environ["NOVAMOVE_JOURNAL"] = f"/tmp/novamove-bench-doctor-scale-{uuid.uuid4().hex[:6]}.sqlite"
    from novamove import cloud as novamove_cloud
    from novamove.cloud.provision import ensure_image
    from novamove.engine.doctor.scan import scan
    from novamove.minicloud import Minicloud, default_state_dir
    mc = Minicloud(Path(os.environ.get("NOVAMOVE_MINICLOUD_DIR") or default_state_dir()))
    conn = mc.connection("minicloud")
    c = novamove_cloud.connect(cloud="minicloud")
    computes = mc.compute_hosts()
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    have = len(c.list_all_servers())
    per_host_room = min(int(h.free.vcpus // flavor.vcpus) for h in c.compute_hosts())
    grown = per_host_room * len(computes) < n_servers - have
    made = []
    try:
        if grown:
            _size_hypervisors(mc, c, computes, GROWN)
        image = ensure_image(conn)
        t0 = time.monotonic()
        for i in range(max(0, n_servers - have)):
            made.append(conn.compute.create_server(
                name=f"dscan-{i}", image_id=image, flavor_id=flavor.id, networks="none",
                availability_zone=f"nova:{computes[i % len(computes)]}"))
        made = [conn.compute.wait_for_server(s, wait=1800, interval=3) for s in made]
        boot_s = time.monotonic() - t0
        scans = []
        for _ in range(repeat):
            snap, stats = scan(c)
            scans.append((stats.seconds, stats.total, dict(stats.requests)))
        wall = statistics.median(x[0] for x in scans)
        servers = [s.id for s in snap.servers]
        # The naive lookup: for each server, its allocations and its migrations (what a loop
        # over `openstack server list` does), after the same listings the scan starts with.
        before = c.requests.count
        t = time.monotonic()
        c.list_compute_services()
        c.hypervisors()
        c.list_resource_providers()
        c.list_all_servers()
        for sid in servers:
            c.consumer_allocations(sid)
            c.list_migrations(server_id=sid)
        naive_wall = time.monotonic() - t
        naive_requests = c.requests.count - before
    finally:
        for s in made:
            conn.compute.delete_server(s, ignore_missing=True)
        for s in made:
            conn.compute.wait_for_delete(s, wait=1800, interval=3)
        if grown:
            _size_hypervisors(mc, c, computes, None)
        c.close()
    return {"minicloud_servers": len(servers), "minicloud_hosts": len(computes),
            "minicloud_providers": len(snap.providers), "minicloud_migrations": len(snap.migrations),
            "booted": len(made), "boot_s": round(boot_s, 1), "hypervisors_grown": GROWN if grown else None,
            "scan_wall_s_median": round(wall, 2), "scan_wall_s_all": [round(x[0], 2) for x in scans],
            "scan_requests": scans[0][1], "scan_requests_by_read": scans[0][2],
            "naive_requests": naive_requests, "naive_wall_s": round(naive_wall, 2),
            "ratio_requests": round(naive_requests / scans[0][1], 1),
            "ratio_wall": round(naive_wall / wall, 1) if wall else None,
            "load_1min": round(os.getloadavg()[0], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minicloud", type=int, metavar="N", default=None,
                    help="scan the running minicloud holding >= N servers (instead of the synthetic cloud)")
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--servers", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-sample", type=int, default=300, help="servers the naive baseline is timed on")
    ap.add_argument("--page", type=int, default=1000, help="Nova's [api] max_limit, for the request counts")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    if args.minicloud is not None:
        fig = minicloud_scan(args.minicloud, args.repeat)
        if args.json:
            print(json.dumps(fig))
        else:
            print(f"minicloud: {fig['minicloud_servers']} servers on {fig['minicloud_hosts']} computes, "
                  f"{fig['minicloud_providers']} providers, {fig['minicloud_migrations']} migration records "
                  f"({fig['booted']} booted in {fig['boot_s']} s)")
            print(f"whole-cloud scan: {fig['scan_requests']} requests {fig['scan_requests_by_read']}, "
                  f"{fig['scan_wall_s_median']} s wall (median of {args.repeat}: {fig['scan_wall_s_all']})")
            print(f"naive per-server lookup: {fig['naive_requests']} requests, {fig['naive_wall_s']} s wall "
                  f"({fig['ratio_requests']}x the requests, {fig['ratio_wall']}x the wall; load {fig['load_1min']})")
        return 0

    t0 = time.perf_counter()
    snap, injected = synthetic_cloud(args.hosts, args.servers)
    build_s = time.perf_counter() - t0
    opts = Options()
    wall, cpu, found = timed(lambda: detect(snap, opts), args.repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    detect(snap, opts)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    by_class = Counter(f.klass for f in found)
    missed = {k: (n, by_class.get(k, 0)) for k, n in injected.items() if by_class.get(k, 0) != n}

    # Half the sample at random, half among the servers detect() flagged for the classes the
    # baseline covers, so that "same verdicts" compares findings, not only silence.
    covered = {"server-not-where-migration-says", "server-allocation-missing", "server-allocation-elsewhere"}
    rnd = random.Random(7)
    by_id = {s.id: s for s in snap.servers}
    flagged = sorted({f.server_id for f in found if f.klass in covered})
    half = min(args.naive_sample // 2, len(flagged))
    sample = [by_id[i] for i in rnd.sample(flagged, half)]
    sample += rnd.sample(list(snap.servers), min(args.naive_sample - half, len(snap.servers)))
    sample = list({s.id: s for s in sample}.values())
    n_wall, n_cpu, n_found = timed(lambda: naive(snap, sample), 1)
    scale = len(snap.servers) / len(sample)
    ids = {s.id for s in sample}
    ours = {f.server_id: f.klass for f in found if f.klass in covered and f.server_id in ids}
    agree = ours == n_found

    pages = lambda n: n // args.page + 1  # noqa: E731  (a full last page is followed by an empty one)
    scan_requests = (1 + pages(len(snap.hypervisors)) + 1 + len(snap.providers) + pages(len(snap.servers))
                     + pages(len(snap.migrations)))
    per_server_requests = (1 + pages(len(snap.hypervisors)) + 1 + pages(len(snap.servers))
                           + 2 * len(snap.servers))
    figures = {
        "hosts": args.hosts, "servers": args.servers, "migrations": len(snap.migrations),
        "consumers": sum(len(c) for c in snap.allocations.values()), "model_build_s": round(build_s, 2),
        "detect_s_median": round(wall, 3), "detect_cpu_s_median": round(cpu, 3),
        "findings": len(found), "findings_by_class": dict(sorted(by_class.items())),
        "injected_not_found": missed,
        "process_peak_rss_mb": round(rss_mb, 1), "detect_peak_alloc_mb": round(traced_peak / 2**20, 1),
        "naive_sample": len(sample), "naive_sample_findings": len(n_found), "naive_sample_cpu_s": round(n_cpu, 3),
        "naive_extrapolated_cpu_s": round(n_cpu * scale, 1), "naive_agrees_on_sample": agree,
        "ratio_naive_vs_detect_cpu": round(n_cpu * scale / cpu, 1) if cpu else None,
        "scan_requests": scan_requests, "per_server_scan_requests": per_server_requests,
        "ratio_requests": round(per_server_requests / scan_requests, 1),
        "goal_time_ok": cpu <= 5.0, "goal_memory_ok": rss_mb <= 1024,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"synthetic cloud: {args.hosts} hosts, {args.servers} servers, {len(snap.migrations)} migration "
              f"records, {figures['consumers']} allocations (built in {build_s:.1f} s)")
        print(f"detect:        {wall:7.3f} s wall, {cpu:.3f} s CPU (median of {args.repeat}); "
              f"{len(found)} findings, every injected one found: {'yes' if not missed else missed}")
        print("               " + ", ".join(f"{k} {n}" for k, n in sorted(by_class.items())))
        print(f"naive per-server lookups: {n_cpu:.3f} s CPU for {len(sample)} servers, "
              f"{figures['naive_extrapolated_cpu_s']} s extrapolated to {args.servers} "
              f"({figures['ratio_naive_vs_detect_cpu']}x detect, which judges all 14 classes, the baseline 3); "
              f"same verdicts on the sample ({len(n_found)} findings): {'yes' if agree else 'NO'}")
        print(f"memory: process peak RSS {rss_mb:.0f} MB (snapshot + analysis); analysis's own peak "
              f"allocations {figures['detect_peak_alloc_mb']} MB (tracemalloc)")
        print(f"requests (computed, page {args.page}): whole-cloud scan {scan_requests}, per-server scan "
              f"{per_server_requests} ({figures['ratio_requests']}x)")
        print(f"goal <= 5 s CPU: {'met' if figures['goal_time_ok'] else 'MISSED'}; "
              f"goal <= 1 GB: {'met' if figures['goal_memory_ok'] else 'MISSED'}")
    return 0 if figures["goal_time_ok"] and figures["goal_memory_ok"] and not missed and agree else 1


if __name__ == "__main__":
    sys.exit(main())
