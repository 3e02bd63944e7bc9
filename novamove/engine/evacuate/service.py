"""The failed host's nova-compute service: forced down and disabled, each journaled before the
call and read back after it."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.model import Service
from novamove.engine.evacuate.common import (EV_DISABLE, EV_FENCE, EV_FORCE_DOWN, evacuate_reason,
                                             is_our_evacuate_reason)


def _fence_service(cloud: Any, journal: Any, run_id: str, name: str, reason: Optional[str],
                   say: Callable[[str], None]) -> tuple[str, bool]:
    """Force the service down, then disable it with our tag (each journaled before the call).
    A lost answer is read back from the service, never assumed."""
    svc = _service(cloud, name)
    notes, changed = [], False
    if svc.forced_down:
        notes.append(f"{name} already forced down")
        journal.note(run_id, EV_FORCE_DOWN, name, already=True)
    else:
        _service_change(cloud, journal, run_id, EV_FORCE_DOWN, name, lambda: cloud.set_service_forced_down(svc, True),
                        lambda s: s.forced_down, service_id=svc.id)
        changed = True
        notes.append(f"{name} forced down")
    svc = _service(cloud, name)
    if not svc.enabled:
        if is_our_evacuate_reason(svc.disabled_reason):
            notes.append(f"{name} already disabled by a novamove evacuation")
        else:
            notes.append(f"{name} already disabled by someone else ({svc.disabled_reason or 'no reason'}): "
                         "left as is, unfence will not enable it")
        journal.note(run_id, EV_DISABLE, name, already=True, reason=svc.disabled_reason)
    else:
        text = evacuate_reason(run_id, reason)
        _service_change(cloud, journal, run_id, EV_DISABLE, name, lambda: cloud.disable_service(svc, text),
                        lambda s: not s.enabled and s.disabled_reason == text, service_id=svc.id, reason=text)
        changed = True
        notes.append(f"{name} disabled ({text})")
    for n in notes:
        say(n)
    return "; ".join(notes), changed


def _settle_service_intents(cloud: Any, journal: Any, previous: Sequence[dict], name: str) -> None:
    """Intents of killed runs on the service (fence, force down, disable) get their outcome,
    read back from the service, so nothing in the journal stays open."""
    svc = None
    for run in previous:
        for ev in journal.events(run["id"]):
            if ev.state != "intent" or ev.kind not in (EV_FENCE, EV_FORCE_DOWN, EV_DISABLE):
                continue
            svc = svc or _service(cloud, name)
            if ev.kind == EV_FENCE:
                journal.failed(ev.id, detail="interrupted while the fence command ran: outcome unknown")
            elif ev.kind == EV_FORCE_DOWN:
                (journal.done if svc.forced_down else journal.failed)(ev.id, detail="read back by a later run")
            else:
                took = not svc.enabled and svc.disabled_reason == ev.data.get("reason")
                (journal.done if took else journal.failed)(ev.id, detail="read back by a later run")


def _service(cloud: Any, name: str) -> Service:
    for s in cloud.list_compute_services():
        if s.host == name:
            return s
    raise errors.NotFound(f"no nova-compute service on {name!r}")


def _service_change(cloud: Any, journal: Any, run_id: str, kind: str, name: str, call: Callable[[], Any],
                    took: Callable[[Service], bool], **data: Any) -> None:
    """One service PUT through journal.change (intent before, outcome after; NOVAMOVE_FAULT
    hooks). A lost answer (timeout, 5xx) is read back from the service, never assumed."""
    change = None
    try:
        with journal.change(run_id, kind, name, **data) as change:
            call()
    except errors.NovamoveError as exc:
        if change is None or not errors.is_ambiguous(exc):
            raise                       # refused, or failed before the call (journaled failed)
        try:
            now = _service(cloud, name)
        except errors.NovamoveError:
            raise exc
        if not took(now):
            journal.failed(change.id, read_back="not applied")
            raise
        journal.done(change.id, read_back="applied", error=None)


