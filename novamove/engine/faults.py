"""Fault injection at journaled steps, for tests: `NOVAMOVE_FAULT`.

    NOVAMOVE_FAULT=service.enable:before:error
    NOVAMOVE_FAULT=server.migrate:after:timeout
    NOVAMOVE_FAULT=server.confirm:before:kill:2      # only the 2nd confirm
    NOVAMOVE_FAULT=drain.move:after:kill,service.enable:before:error   # several

`KIND` is a journal event kind (service.disable, service.enable, server.migrate, server.confirm,
server.revert, migration.abort, migration.force_complete, drain.disable, drain.move,
drain.confirm, drain.revert, drain.abort, drain.enable, ...: novamove.engine.events), or
`cloud.VERB` for any call of the cloud adapter, reads included (cloud.list_compute_services,
cloud.get_server, cloud.list_migrations, cloud.list_evacuations, ...: the verbs of
novamove.cloud.adapter.Cloud), e.g. `cloud.list_compute_services:before:timeout:3` makes the
third services listing time out. `before` acts after the intent is
journaled and before the API call; `after` acts once the call has been applied by the cloud.
`kill` SIGKILLs the process (a power cut, as far as novamove can tell), `error` makes the call
fail (an HTTP 500), `timeout` makes it look timed out (the client gave up; with `after` the
cloud did apply it). Without a count every occurrence is hit, retries included.

`NOVAMOVE_FAULT_LOG=FILE` appends one line per fault that fired (before it acts), so a test
can tell a fault novamove absorbed from one that never fired.

Unset (always, outside tests) it costs one dictionary lookup per journaled change.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Optional

from novamove import errors

ENV = "NOVAMOVE_FAULT"
LOG_ENV = "NOVAMOVE_FAULT_LOG"
MOMENTS = ("before", "after")
ACTIONS = ("kill", "error", "timeout")


@dataclass(frozen=True)
class Fault:
    kind: str
    moment: str
    action: str
    nth: Optional[int] = None


def parse(text: str) -> list[Fault]:
    """Faults from the variable's text; a malformed one is a one-line usage error."""
    faults = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        bits = part.split(":")
        if len(bits) not in (3, 4) or bits[1] not in MOMENTS or bits[2] not in ACTIONS:
            raise errors.UsageError(f"{ENV}: {part!r} is not KIND:before|after:kill|error|timeout[:N]")
        nth = None
        if len(bits) == 4:
            if not bits[3].isdigit() or int(bits[3]) < 1:
                raise errors.UsageError(f"{ENV}: {part!r}: N must be a whole number of at least 1")
            nth = int(bits[3])
        faults.append(Fault(bits[0], bits[1], bits[2], nth))
    return faults


_lock = threading.Lock()
_seen: dict[tuple[str, str], int] = {}
_cache: tuple[Optional[str], list[Fault]] = (None, [])


def _faults() -> list[Fault]:
    global _cache
    text = os.environ.get(ENV)
    if not text:
        return []
    if _cache[0] != text:
        _cache = (text, parse(text))
    return _cache[1]


def hit(kind: str, moment: str) -> None:
    """Called by the journal at each journaled change; does nothing unless a fault names it."""
    faults = _faults()
    if not faults:
        return
    with _lock:
        count = _seen[(kind, moment)] = _seen.get((kind, moment), 0) + 1
    for f in faults:
        if f.kind == kind and f.moment == moment and (f.nth is None or f.nth == count):
            _act(f)


def _act(f: Fault) -> None:
    where = f"{f.kind} {f.moment} the call"
    log = os.environ.get(LOG_ENV)
    if log:
        # Written and flushed before acting: a kill must not lose it.
        with open(log, "a") as fh:
            fh.write(f"{f.kind}:{f.moment}:{f.action} pid {os.getpid()}\n")
    if f.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if f.action == "timeout":
        raise errors.Unreachable(f"{f.kind}: cannot reach the cloud API (injected fault {where}: timed out)")
    raise errors.NovamoveError(f"{f.kind}: HTTP 500: injected fault {where}")


CLOUD = "cloud."


def faulty(cloud):
    """`cloud` itself, or, when NOVAMOVE_FAULT names a `cloud.VERB`, a stand-in whose verbs pass
    through `hit` before and after the call (a read "after" fault: the answer was lost)."""
    if not any(f.kind.startswith(CLOUD) for f in _faults()):
        return cloud
    return _FaultyCloud(cloud)


class _FaultyCloud:
    def __init__(self, cloud) -> None:
        self._cloud = cloud

    def __getattr__(self, name: str):
        value = getattr(self._cloud, name)
        if name.startswith("_") or not callable(value):
            return value
        kind = CLOUD + name

        def call(*args, **kwargs):
            hit(kind, "before")
            result = value(*args, **kwargs)
            hit(kind, "after")
            return result
        return call


def reset() -> None:
    """Forget the occurrence counts (tests running several scenarios in one process)."""
    with _lock:
        _seen.clear()
