"""What an evacuate or unfence run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from novamove import errors
from novamove.engine import events
from novamove.engine.batch.report import StepResult
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED
from novamove.model import Migration
from novamove.planner import DrainPlan, DrainStep, plan_to_dict
from novamove.engine.evacuate.common import (EVACUATED, EVACUATE_VERB, FAILED, MOVED, PLANNED, SKIPPED,
                                             UNFENCE_VERB, UNPLACED, GONE)


# ---------------------------------------------------------------------------------- report

@dataclass
class EvacuateReport:
    verb: str                     # evacuate | unfence
    host: str
    run_id: Optional[str] = None
    dry_run: bool = False
    plan: Optional[DrainPlan] = None
    results: list[StepResult] = field(default_factory=list)
    fence: str = ""               # how the host was known fenced / down
    service: str = ""             # what happened to its nova-compute service
    power: str = "restore"
    changed: bool = False
    interrupted: bool = False
    peak_in_flight: int = 0
    api_requests: int = 0
    elapsed_seconds: float = 0.0

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.results)

    @property
    def ok(self) -> bool:
        if self.interrupted:
            return False
        if self.dry_run:
            return True
        # "retry" (a move back postponed), "not started", "in flight": never success.
        return not any(r.result in (FAILED, UNPLACED) or r.result in events.UNFINISHED for r in self.results)

    @property
    def exit_code(self) -> int:
        """130 interrupted; 1 a server failed (or was left in flight); 8 no failure, but
        servers that could not be evacuated or placed are still on the failed host; else 0."""
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if self.ok:
            return errors.EXIT_OK
        if any(r.result in (FAILED, IN_FLIGHT) for r in self.results):
            return errors.EXIT_FAILED
        return getattr(errors, "EXIT_INCOMPLETE", errors.EXIT_FAILED)

    @property
    def summary(self) -> str:
        if self.dry_run:
            planned = self.count(PLANNED)
            rest = [f"{self.count(x)} {x}" for x in (SKIPPED, UNPLACED) if self.count(x)]
            what = "move back" if self.verb == UNFENCE_VERB else "to evacuate"
            return (f"plan for {self.verb} {self.host}: {planned} {what}"
                    + (", " + ", ".join(rest) if rest else "") + " (dry run: nothing changed)")
        first = MOVED if self.verb == UNFENCE_VERB else EVACUATED
        parts = [f"{self.count(first)} {first}"] if (self.results or self.verb == EVACUATE_VERB) else []
        for label in (SKIPPED, UNPLACED, GONE, FAILED, NOT_STARTED, IN_FLIGHT):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        head = "interrupted: " if self.interrupted else ""
        tail = ", ".join(parts) if parts else (self.service or "nothing to do")
        return f"{head}{self.verb} {self.host}: {tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "host": self.host, "run_id": self.run_id, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary,
            "fence": self.fence, "service": self.service, "power": self.power,
            "interrupted": self.interrupted, "peak_in_flight": self.peak_in_flight,
            "api_requests": self.api_requests, "elapsed_seconds": round(self.elapsed_seconds, 1),
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


def _result(step: DrainStep, outcome: str, detail: str, m: Optional[Migration] = None,
            host: Optional[str] = None) -> StepResult:
    return StepResult(step.server_id, step.server_name, step.source, step.dest, "evacuate", outcome,
                      detail, m.id if m else None, host)


