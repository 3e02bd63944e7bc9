"""What a campaign reports per host and overall, and its options (validated once)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from novamove import errors
from novamove.engine.batch import drain as drains
from novamove.engine.commands import validate_command
from novamove.engine.campaign.planning import CampaignPlan
from novamove.engine import tags
from novamove.engine.campaign.gate import GATES
from novamove.engine.campaign.common import DONE, FAILED, INTERRUPTED, NOT_STARTED, REFUSED, SKIPPED
from novamove.engine.campaign.common import CHECK_TIMEOUT, GATE_TIMEOUT, HOOK_TIMEOUT, VERB


# ---------------------------------------------------------------------------------- results

@dataclass
class HostResult:
    host: str
    outcome: str = NOT_STARTED
    stage: str = ""                   # last stage reached
    moved: int = 0
    left: list = field(default_factory=list)
    stopped: list = field(default_factory=list)     # server names powered off for the hook
    hook_exit: Optional[int] = None
    hook_seconds: float = 0.0
    gate: str = ""
    check_exit: Optional[int] = None
    moved_back: int = 0
    seconds: float = 0.0
    detail: str = ""
    log: Optional[str] = None
    drain_run: Optional[str] = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 1)
        d["hook_seconds"] = round(self.hook_seconds, 1)
        return d


@dataclass
class CampaignReport:
    run_id: Optional[str]
    hosts: list[str]
    dry_run: bool = False
    plan: Optional[CampaignPlan] = None
    results: list[HostResult] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: str = ""              # why no new host was started (stop-loss, interrupt)
    peak_out: int = 0                 # most hosts out of service at once
    peak_group: int = 0               # most members of one group disrupted at once
    changed: bool = False
    elapsed_seconds: float = 0.0
    api_requests: int = 0
    resumed: bool = False

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    @property
    def ok(self) -> bool:
        if self.dry_run:
            return bool(self.plan and self.plan.ok)
        return bool(self.results) and all(r.outcome == DONE for r in self.results) and not self.interrupted

    @property
    def exit_code(self) -> int:
        if self.dry_run:
            return errors.EXIT_OK if self.plan and self.plan.ok else errors.EXIT_PRECONDITION
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if self.count(FAILED):
            return errors.EXIT_FAILED
        if self.count(REFUSED):
            return errors.EXIT_PRECONDITION
        return errors.EXIT_OK if self.ok else errors.EXIT_INCOMPLETE

    @property
    def summary(self) -> str:
        if self.dry_run:
            p = self.plan
            if p is None:
                return "maintain: nothing planned"
            moves = sum(len(s.moves) for s in p.stages)
            head = (f"maintain plan: {len(p.hosts)} host(s) in {len(p.stages)} stage(s) of at most "
                    f"{p.max_hosts}, {moves} move(s), about {_duration(p.estimate_seconds)}")
            if p.not_serviced:
                head += f", {len(p.not_serviced)} not serviced"
            if not p.ok:
                head += f"; REFUSED: {p.problems[0]}"
            return head + " (dry run: nothing changed)"
        parts = [f"{self.count(DONE)}/{len(self.results)} host(s) done"]
        for label in (FAILED, REFUSED, SKIPPED, INTERRUPTED, NOT_STARTED):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        parts.append(f"{sum(r.moved for r in self.results)} server(s) moved")
        if self.stopped_by:
            parts.append(f"stopped: {self.stopped_by}")
        head = "interrupted: " if self.interrupted else ""
        return f"{head}maintain: " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "verb": VERB, "run_id": self.run_id, "hosts": self.hosts, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary,
            "interrupted": self.interrupted, "stopped_by": self.stopped_by, "peak_out": self.peak_out,
            "peak_group": self.peak_group, "resumed": self.resumed,
            "elapsed_seconds": round(self.elapsed_seconds, 1), "api_requests": self.api_requests,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# ---------------------------------------------------------------------------------- options

@dataclass
class Options:
    hook: Optional[str] = None
    check: Optional[str] = None
    max_hosts: int = 1
    max_failed_hosts: int = 1
    group_budget: int = 1
    order: str = "fewest"
    move_back: bool = False
    allow_skip: bool = False
    allow_unmovable: bool = False
    hook_timeout: float = HOOK_TIMEOUT
    gate_timeout: float = GATE_TIMEOUT
    check_timeout: float = CHECK_TIMEOUT
    max_parallel: int = 4
    max_per_host: int = 2
    step_timeout: float = 1800.0
    poll_interval: float = drains.POLL_INTERVAL
    reason: Optional[str] = None
    gate: Optional[str] = None        # restart | heartbeat (default: restart with a hook, else heartbeat)
    on_stall: str = "force-complete"  # a stalled live move in a drain or move-back (engine/stall.py)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Options":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        import math
        for name in ("max_hosts", "max_failed_hosts", "group_budget", "max_parallel", "max_per_host"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise errors.UsageError(f"{name.replace('_', '-')} must be a whole number of at least 1, not {v!r}")
        for name in ("hook_timeout", "gate_timeout", "check_timeout", "step_timeout", "poll_interval"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise errors.UsageError(f"{name.replace('_', '-')} must be a positive number of seconds, not {v!r}")
        for name in ("hook", "check"):
            validate_command(getattr(self, name), f"--{name}")
        tags.check_reason(self.reason)
        from novamove.engine import stall
        stall.check_on_stall(self.on_stall)
        if self.gate is not None and self.gate not in GATES:
            raise errors.UsageError(f"--gate must be one of {', '.join(GATES)}, not {self.gate!r}")


@dataclass
class _Out:
    """A host out of service, past its drain."""
    host: str
    result: HostResult
    t0: float
    phase: str = "hook"               # hook | gate | check | return | done
    proc: Optional[subprocess.Popen] = None
    hook_started: Optional[datetime] = None
    hook_ended: Optional[datetime] = None
    hook_t0: float = 0.0
    hook_event: Optional[int] = None
    gate_t0: float = 0.0
    gate: Any = None                  # the gate's memory (engine/campaign/gate.GateState)
    gate_next: float = 0.0            # when the gate reads the cloud next (clock)
    gate_waits: Any = None            # engine/poll.Backoff between the gate's reads
    gate_up: Optional[bool] = None    # the compute up at the gate's last read
    stopped_ids: list = field(default_factory=list)
    log_fh: Any = None
