"""Riding out a cloud API that is briefly unreachable (a restart, a load balancer reload).

Only for calls that are safe to repeat: reads, and writes that set a state rather than start
an action (enabling a service). Starting a migration is never retried here.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional, TypeVar

from novamove import errors

log = logging.getLogger("novamove.retry")
T = TypeVar("T")


def patiently(call: Callable[[], T], what: str, *, patience: float = 60.0,
              sleep: Optional[Callable[[float], None]] = None, first_delay: float = 1.0) -> T:
    """`call()`, retried on errors.Unreachable with doubling pauses (`first_delay`, 1 s by
    default, up to 15 s) until `patience` seconds of pauses have passed; then the last error is
    raised. (The journal's database retries its write conflicts here too, from 50 ms.)"""
    sleep = sleep or time.sleep
    delay, waited = first_delay, 0.0
    while True:
        try:
            return call()
        except errors.Unreachable as exc:
            if waited >= patience or not exc.transient:
                raise
            log.warning("%s; %s: next try in %.0f s", exc, what, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 15.0)


# The adapter verbs that only read (and may be repeated at will): `patient_reads` retries them.
READ_PREFIXES = ("get_", "list_", "find_")
READS = frozenset({"hypervisors", "compute_hosts", "host_resources", "host_usage", "provider_inventories",
                   "provider_usages",
                   "provider_traits", "aggregate_hosts", "zone_hosts", "server_fault", "evacuation_fault",
                   "compute_service_heartbeat", "hypervisor_uptime", "server_ids_tagged",
                   "placement_max_microversion", "provider_allocations", "consumer_allocations"})


def is_read(verb: str) -> bool:
    return verb in READS or verb.startswith(READ_PREFIXES)


class PatientReads:
    """The cloud adapter whose reads ride out an unreachable API (`patiently`), so a 503, a
    timeout or a reset connection on a read is never a verdict, whichever verb reads; writes
    pass through untouched (each verb's read-back rule decides what a lost write did).

    Only once the API has answered this process (its Date header seen): an API that never
    answered is a wrong address or a cloud that is down, said at once in one line, not a blip
    to wait out."""

    def __init__(self, cloud, patience: float = 60.0) -> None:
        self._cloud = cloud
        self._patience = patience

    def __getattr__(self, name: str):
        value = getattr(self._cloud, name)
        if name.startswith("_") or not callable(value) or not is_read(name):
            return value

        def read(*args, **kwargs):
            if not self._answered():
                return value(*args, **kwargs)
            return patiently(lambda: value(*args, **kwargs), name, patience=self._patience)
        return read

    def _answered(self) -> bool:
        now = getattr(self._cloud, "cloud_now", None)
        return now is not None and now() is not None


def patient_reads(cloud, patience: float = 60.0):
    return cloud if isinstance(cloud, PatientReads) else PatientReads(cloud, patience)
