"""Gathering a Snapshot: reads only, whole-cloud listings, a request count that grows with
hosts and pages, never with servers.

    services (1)  hypervisors (pages)  providers (1)  allocations (1 per provider)
    servers (pages)  migrations (pages)
    again: the allocations of the providers that hold a consumer nobody knows (at most one per
    provider), and the services once more if a compute that is down or forced down reported
    less than `heartbeat_gap` seconds ago (the second of the two heartbeat reads, at least
    `heartbeat_gap` seconds after the first; an older report is proof at once, as in evacuate)

Allocations are read before servers and migrations: a consumer Placement had then exists in
the listings read after it, unless it was deleted meanwhile, which the second look shows.

Every read goes through `read()`: novamove.retry.patiently (an unreachable API, a 502/503/504,
is retried) and NOVAMOVE_FAULT, whose kinds here are doctor.<read> (doctor.services,
doctor.hypervisors, doctor.providers, doctor.allocations, doctor.servers, doctor.migrations,
doctor.recheck, doctor.services_again): before the journal's changes, reads had no fault hook.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional, TypeVar

from novamove.engine import events, faults, tags
from novamove.engine.doctor.detect import unknown_consumers
from novamove.engine.doctor.snapshot import (RUN_ALIVE, RUN_DEAD, RUN_FAILED, RUN_FINISHED, Index, Options,
                                             Snapshot, epoch)
from novamove.engine.journal import run_alive
from novamove.retry import patiently

T = TypeVar("T")

# The scan's reads as NOVAMOVE_FAULT kinds (doctor.<read>), named once here. (engine/events.py
# names the journal's kinds; these are reads, never journaled, and join it with the repairs.)
READS = ("services", "hypervisors", "providers", "allocations", "servers", "migrations", "recheck",
         "services_again")
FAULT_KINDS = tuple(f"doctor.{r}" for r in READS)
HEARTBEAT_GAP = 25.0     # seconds between the two service reads (Nova's report_interval is 10 s)
WORKERS = 8              # concurrent per-provider allocation reads


@dataclass
class ScanStats:
    requests: dict[str, int] = field(default_factory=dict)   # read -> HTTP requests it made
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@contextlib.contextmanager
def counting(cloud: Any, stats: ScanStats, kind: str):
    """Counts the HTTP requests made inside under `kind` (around a whole batch of concurrent
    reads, so each is counted once)."""
    counter = getattr(cloud, "requests", None)
    before = getattr(counter, "count", 0)
    try:
        yield
    finally:
        stats.requests[kind] = stats.requests.get(kind, 0) + getattr(counter, "count", 0) - before


def read(kind: str, call: Callable[[], T], *, patience: float = 60.0,
         sleep: Optional[Callable[[float], None]] = None) -> T:
    """One read of the scan: faultable (NOVAMOVE_FAULT kind doctor.<kind>), retried while the
    API is unreachable."""
    fault = FAULT_KINDS[READS.index(kind)]

    def once() -> T:
        faults.hit(fault, "before")
        out = call()
        faults.hit(fault, "after")
        return out
    return patiently(once, f"reading {kind.replace('_', ' ')}", patience=patience, sleep=sleep)


def scan(cloud: Any, *, journal: Any = None, heartbeat_gap: float = HEARTBEAT_GAP, workers: int = WORKERS,
         patience: float = 60.0, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> tuple[Snapshot, ScanStats]:
    """The cloud as one pass of reads sees it, and what the reads cost."""
    stats = ScanStats()
    t0 = clock()

    def r(kind: str, call: Callable[[], T]) -> T:
        return read(kind, call, patience=patience, sleep=sleep)

    def counted(kind: str, call: Callable[[], T]) -> T:
        with counting(cloud, stats, kind):
            return r(kind, call)

    services = counted("services", cloud.list_compute_services)
    first_read, first_now = clock(), _now(cloud)
    hypervisors = counted("hypervisors", cloud.hypervisors)
    providers = counted("providers", cloud.list_resource_providers)
    with counting(cloud, stats, "allocations"):
        allocations = _allocations(r, "allocations", cloud, [p.uuid for p in providers], workers)
    servers = counted("servers", cloud.list_all_servers)
    migrations = counted("migrations", cloud.list_all_migrations)
    snap = Snapshot(now=_now(cloud), servers=servers, migrations=migrations, services=services,
                    hypervisors=hypervisors, providers=providers, allocations=allocations)

    # A second look where one read is not enough to judge.
    strangers = unknown_consumers(Index(snap, Options()))
    rechecked: dict[str, dict] = {}
    if strangers:
        holders = sorted({rp for rp, held in allocations.items() if any(c in held for c in strangers)})
        with counting(cloud, stats, "recheck"):
            again = _allocations(r, "recheck", cloud, holders, workers)
        for consumer in strangers:
            rechecked[consumer] = {rp: held[consumer] for rp, held in again.items() if consumer in held}
    services_again = None
    if heard_lately(services, first_now, heartbeat_gap):
        wait = heartbeat_gap - (clock() - first_read)
        if wait > 0:
            sleep(wait)
        services_again = counted("services_again", cloud.list_compute_services)
    run_ids = {tags.reason_run_id(s.disabled_reason) for s in services if not s.enabled}
    runs = run_states(journal, run_ids - {None}) if journal is not None else {}
    forced = {s.host for s in services if s.forced_down}
    ours = forced_by_novamove(journal, forced) if journal is not None and forced else frozenset()
    snap = Snapshot(now=_now(cloud), servers=servers, migrations=migrations, services=services,
                    hypervisors=hypervisors, providers=providers, allocations=allocations,
                    services_again=services_again, rechecked=rechecked, runs=runs, forced_by_us=ours)
    stats.seconds = clock() - t0
    return snap, stats


def heard_lately(services: Iterable[Any], now: datetime, gap: float) -> bool:
    """Whether a compute that is down or forced down reported less than `gap` seconds ago in
    Nova's clock: only then can a second read (after `gap`) tell whether it keeps reporting; a
    report older than that is proof at once that it stopped."""
    for s in services:
        if s.forced_down or s.state != "up":
            last = epoch(s.updated_at)
            if last is None or now.timestamp() - last < gap:
                return True
    return False


def _allocations(r: Callable, kind: str, cloud: Any, providers: list[str], workers: int) -> dict[str, dict]:
    """{provider: {consumer: resources}}: one request per provider, `workers` at a time."""
    def one(rp: str) -> dict:
        return r(kind, lambda: cloud.provider_allocations(rp))
    if workers <= 1 or len(providers) <= 1:
        return {rp: one(rp) for rp in providers}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="doctor-read") as pool:
        return dict(zip(providers, pool.map(one, providers)))


def _now(cloud: Any) -> datetime:
    """Nova's clock (the latest answer's Date header), else this machine's."""
    now = getattr(cloud, "cloud_now", None)
    return (now() if now else None) or datetime.now(timezone.utc)


def run_states(journal: Any, run_ids: Iterable[str]) -> dict[str, str]:
    """What this machine's journal knows of each run: alive, dead (its process is gone while
    it was running, or it was interrupted), failed or finished. Unknown runs are left out."""
    out = {}
    for run_id in run_ids:
        run = journal.get_run(run_id)
        if run is None:
            continue
        status = run.get("status")
        if status == events.RUN_RUNNING:
            out[run_id] = RUN_ALIVE if run_alive(run) else RUN_DEAD
        elif status == events.RUN_INTERRUPTED:
            out[run_id] = RUN_DEAD
        elif status == events.RUN_FAILED:
            out[run_id] = RUN_FAILED
        else:
            out[run_id] = RUN_FINISHED
    return out


FORCED_DOWN = (events.EVACUATE_FORCE_DOWN,)
FORCED_UP = (events.UNFENCE_FORCE_UP, events.DOCTOR_FORCE_UP)


def forced_by_novamove(journal: Any, hosts: Iterable[str]) -> frozenset:
    """The hosts (of `hosts`) whose forced_down a run of this journal set (or may have: an
    intent whose answer was lost) after the last time one cleared it: unfence's rule
    (engine/evacuate/unfence.forced_down_by_us), counting doctor's own clears. A forced_down
    nobody here set is someone else's (an operator, a fencing agent)."""
    wanted = sorted(set(hosts))
    if not wanted:
        return frozenset()
    ours: dict[str, bool] = {}
    # One query for the events of these kinds on these hosts (a shared journal holds every run
    # of the team: reading each run's events would be a round trip per run).
    for ev in journal.events_of_kinds(FORCED_DOWN + FORCED_UP, targets=wanted):
        if ev.kind in FORCED_DOWN and ev.state in ("intent", "done", "failed"):
            ours[ev.target] = True
        elif ev.kind in FORCED_UP and ev.state == "done":
            ours[ev.target] = False
    return frozenset(h for h, v in ours.items() if v)
