"""Compute services: re-enabling what a run disabled, only while its tag is still on them.

Shared by the single-move isolate window, recover and the batch verbs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Optional

from novamove.engine import events
from novamove.engine.tags import reason_run_id
from novamove.model import Service
from novamove.retry import patiently

# Service toggles run concurrently, so the window does not grow with the number of computes.
MAX_PARALLEL_TOGGLES = 8


def in_parallel(calls: list, workers: int = MAX_PARALLEL_TOGGLES) -> None:
    """Run the toggles concurrently (the isolation window should not grow with the number of
    computes), wait for *all* of them, then raise the first failure if any."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        wait(futures)
    for future in futures:
        exc = future.exception()
        if exc is not None:
            raise exc


def _still_ours(cloud, run_id: str, disabled: list[Service], what: str
                ) -> tuple[list[Service], list[Service]]:
    """Sort `disabled` by one fresh listing: (still disabled with `run_id`'s tag, disabled since
    by someone else). Services gone or already enabled again need nothing and are in neither."""
    current = {s.id: s for s in patiently(cloud.list_compute_services, what)}
    ours: list[Service] = []
    theirs: list[Service] = []
    for service in disabled:
        now = current.get(service.id)
        if now is None or now.enabled:
            continue
        (ours if reason_run_id(now.disabled_reason) == run_id else theirs).append(now)
    return ours, theirs


def restorable(cloud, run_id: str, disabled: list[Service],
               left: Optional[list[str]] = None) -> list[str]:
    """What restore_services would re-enable (reads only: `recover --dry-run`): the hosts of
    `disabled` still disabled with `run_id`'s tag; those someone else re-disabled go in `left`."""
    if not disabled:
        return []
    ours, theirs = _still_ours(cloud, run_id, disabled, "listing services")
    if left is not None:
        left.extend(s.host for s in theirs)
    return sorted(s.host for s in ours)


def restore_services(cloud, journal, run_id: str, disabled: list[Service],
                     left: Optional[list[str]] = None) -> list[str]:
    """Re-enable the services `run_id` disabled, if they are still disabled *by it*.

    Returns the hosts re-enabled. A service someone else re-disabled meanwhile (another
    reason) is left as it is, journaled, and named in `left` if a list is given; one already
    enabled again needs nothing. One GET for all services, then one PUT per toggle
    (concurrently).
    """
    if not disabled:
        return []
    # A blip here would leave the cloud unschedulable until `recover`: ride it out (listing and
    # enabling are both safe to repeat).
    todo, theirs = _still_ours(cloud, run_id, disabled, "re-enabling services")
    for now in theirs:
        if left is not None:
            left.append(now.host)
        journal.note(run_id, events.SERVICE_LEFT, now.host, status=now.status,
                     disabled_reason=now.disabled_reason,
                     why="disabled by someone else after novamove disabled it")
    enabled: list[str] = []

    def enable(service: Service):
        def call() -> None:
            with journal.change(run_id, events.SERVICE_ENABLE, service.host, service_id=service.id):
                patiently(lambda: cloud.enable_service(service), f"re-enabling {service.host}")
            enabled.append(service.host)
        return call

    in_parallel([enable(service) for service in todo])
    return sorted(enabled)
