"""A rerun adopts what an earlier run of the same drain left: moves in flight are followed,
landed ones reported, lost ones read back, never started twice.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from novamove import errors
from novamove.model import LIVE
from novamove.planner import DrainStep

from novamove.engine.batch.common import EV_MOVE, FAILED, MOVED, SKIPPED
from novamove.engine.batch.report import StepResult, _result
from novamove.engine.batch.moves import _InFlight


def _step_from_event(server_id: str, ev) -> DrainStep:
    """The step an earlier run journaled for `server_id` (its move intent)."""
    d = ev.data
    return DrainStep(server_id=server_id, server_name=d.get("name") or server_id,
                     source=d.get("source") or "", dest=d.get("dest"), mode=d.get("mode") or LIVE)

def _adopt_leftovers(cloud: Any, journal: Any, previous: Sequence[dict], say: Callable[[str], None],
                     clock: Callable[[], float] = time.monotonic) -> tuple[list[_InFlight], list[StepResult]]:
    """Moves an earlier run of the same drain started and did not see through.

    Returns (moves still in flight or awaiting confirmation: followed by this run,
    moves that did land: reported as moved).
    """
    leftovers: dict[str, Any] = {}
    finished: dict[str, Any] = {}
    for run in previous:
        for ev in journal.events(run["id"]):
            if ev.kind == EV_MOVE and ev.state == "intent":
                leftovers[ev.target] = ev
                finished.pop(ev.target, None)
            elif ev.kind == EV_MOVE:
                leftovers.pop(ev.target, None)
                if ev.state == "done":
                    finished[ev.target] = ev
                else:
                    finished.pop(ev.target, None)
    adopted: list[_InFlight] = []
    landed: list[StepResult] = []
    # Moves the earlier run saw through: reported again (the table covers the whole drain),
    # but only if the server is still where that run put it.
    for sid, ev in finished.items():
        step = _step_from_event(sid, ev)
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            continue
        if server.host == step.dest:
            landed.append(_result(step, MOVED, f"moved by run {ev.run_id}", host=server.host))
    for sid, ev in leftovers.items():
        step = _step_from_event(sid, ev)
        try:
            server = cloud.get_server(sid)
        except errors.NotFound:
            journal.failed(ev.id, result=SKIPPED, detail="server deleted")
            continue
        busy = server.task_state or server.status in ("MIGRATING", "RESIZE", "VERIFY_RESIZE")
        if busy:
            say(f"{step.server_name}: left in flight by run {ev.run_id}; following it")
            adopted.append(_InFlight(step, ev.id, clock(), set(), adopted=True))
        elif server.host == step.dest:
            journal.done(ev.id, result=MOVED, detail="landed while no drain was watching", host=server.host)
            landed.append(_result(step, MOVED, f"landed (started by run {ev.run_id})", host=server.host))
        else:
            journal.failed(ev.id, result=FAILED, detail=f"did not land (on {server.host})", host=server.host)
    return adopted, landed
