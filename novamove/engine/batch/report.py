"""What a batch run reports: each step's result, the run's verdict, the live progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import dataclasses
from dataclasses import dataclass, field

from novamove import errors
from novamove.engine import events
from novamove.model import Migration
from novamove.planner import DrainPlan, DrainStep, plan_to_dict
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED

from novamove.engine.batch.common import ABORTED, FAILED, GONE, MOVED, RETRY, SKIPPED


# ---------------------------------------------------------------------------------- results

@dataclass
class StepResult:
    server_id: str
    server_name: str
    source: str
    dest: Optional[str]
    mode: str
    result: str                  # moved | skipped | failed | aborted | not-started | in-flight
    detail: str = ""
    migration_id: Optional[str] = None
    host: Optional[str] = None   # where the server was last seen
    seconds: float = 0.0
    # A live move that stalled: what was done about it ("force-completed", "force-completed
    # (post-copy)", "aborted, retried elsewhere", "aborted", "fell back to cold", "left").
    stall: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["seconds"] = round(self.seconds, 1)
        return out


@dataclass
class BatchReport:
    verb: str                    # drain | apply | undrain | plan
    hosts: list[str]
    run_id: Optional[str] = None
    dry_run: bool = False
    plan: Optional[DrainPlan] = None
    results: list[StepResult] = field(default_factory=list)
    service: str = ""            # what happened to the compute service(s)
    changed: bool = False        # anything changed in the cloud (service toggled, move started)
    interrupted: bool = False
    peak_in_flight: int = 0
    api_requests: int = 0
    elapsed_seconds: float = 0.0
    # Servers still on the drained host(s) when the drain ended, read back from the cloud:
    # [{server_id, name, host, status, reason, accepted}]. `accepted`: one Nova cannot move
    # (ERROR, SHELVED, ...) left there because the operator allowed it (allow_unmovable).
    left: list[dict] = field(default_factory=list)
    checked_empty: bool = False  # the final re-listing of the source(s) was made

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.results)

    @property
    def left_unaccepted(self) -> list[dict]:
        return [x for x in self.left if not x.get("accepted")]

    @property
    def ok(self) -> bool:
        # "retry", "not started" and "in flight" are never success (events.UNFINISHED).
        return (not self.interrupted and not any(r.result in (FAILED, IN_FLIGHT) for r in self.results)
                and not any(r.result in events.UNFINISHED for r in self.results)
                and not self.left_unaccepted)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if any(r.result in (FAILED, IN_FLIGHT) for r in self.results):
            return errors.EXIT_FAILED
        if self.left_unaccepted or any(r.result in events.UNFINISHED for r in self.results):
            return errors.EXIT_INCOMPLETE
        return errors.EXIT_OK

    @property
    def summary(self) -> str:
        if self.dry_run:
            moves = len(self.plan.moves) if self.plan else 0
            skipped = len(self.plan.skipped) if self.plan else 0
            return (f"plan for {', '.join(self.hosts)}: {moves} to move, {skipped} skipped "
                    "(dry run: nothing changed)")
        parts = [f"{self.count(MOVED)} moved"]
        for label in (SKIPPED, FAILED, ABORTED, NOT_STARTED, IN_FLIGHT, GONE):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        if self.checked_empty:
            if self.left:
                names = ", ".join(x["name"] for x in self.left[:5]) + (" ..." if len(self.left) > 5 else "")
                parts.append(f"{len(self.left)} still on {', '.join(self.hosts)} ({names})")
            else:
                parts.append(f"{', '.join(self.hosts)} empty")
        head = "interrupted: " if self.interrupted else ""
        return f"{head}{self.verb} {', '.join(self.hosts)}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "hosts": self.hosts, "run_id": self.run_id, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary, "service": self.service,
            "interrupted": self.interrupted, "peak_in_flight": self.peak_in_flight,
            "api_requests": self.api_requests, "elapsed_seconds": round(self.elapsed_seconds, 1),
            "left": self.left,
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class BatchProgress:
    """Where a drain, undrain or apply stands, for a progress bar (display-free; report.BatchView
    draws it). Counts add up over the drain's rounds; `total` grows when a round plans again."""
    verb: str
    hosts: tuple[str, ...]
    total: int                   # moves planned so far
    moved: int
    failed: int                  # failed or left in flight
    in_flight: int
    waiting: int                 # queued behind the caps
    other: int                   # skipped, gone, aborted, not started
    elapsed: float
    eta: Optional[float]         # seconds, once a move has finished
    in_flight_names: tuple[str, ...] = ()


def _result(step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None,
            host: Optional[str] = None) -> StepResult:
    return StepResult(step.server_id, step.server_name, step.source, step.dest, step.mode, outcome,
                      detail, m.id if m else None, host)


def batch_progress(verb: str, hosts: Sequence[str], earlier: dict[str, "StepResult"],
                   runner: Optional["BatchRunner"], elapsed: float) -> BatchProgress:
    """One snapshot from the results of earlier rounds plus the round running now."""
    results = dict(earlier)
    inflight: dict[str, Any] = {}
    pending: list[DrainStep] = []
    if runner is not None:
        results.update(runner.results)
        inflight, pending = runner.inflight, runner.pending
    final = [r for sid, r in results.items() if sid not in inflight and r.result != RETRY]
    moved = sum(r.result == MOVED for r in final)
    failed = sum(r.result in (FAILED, IN_FLIGHT) for r in final)
    other = sum(r.result not in (MOVED, FAILED, IN_FLIGHT) and r.dest is not None for r in final)
    total = moved + failed + other + len(inflight) + len(pending)
    done = moved + failed + other
    eta = elapsed / done * (total - done) if done and elapsed > 0 else None
    names = tuple(sorted(f.step.server_name or f.step.server_id for f in inflight.values()))
    return BatchProgress(verb, tuple(hosts), total, moved, failed, len(inflight), len(pending), other,
                         elapsed, eta, names)


if TYPE_CHECKING:
    from novamove.engine.batch.moves import BatchRunner  # noqa: F401
