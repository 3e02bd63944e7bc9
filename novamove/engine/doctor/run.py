"""One `novamove doctor` (what novamove.api.doctor runs): scan, judge, and with `fix`, repair
inside a RunFrame, then scan again so that what is reported fixed is what the cloud shows.

Exit codes (DoctorReport.exit_code):
    0   nothing found, or everything found was fixed and the scan after it is clean
    10  findings left (errors.EXIT_FINDINGS): not repairable, not asked for, skipped
    1   a repair was attempted and did not take
Bad input (an unknown class, --older-than < 0, an unknown --host / --server) raises before
anything is changed: UsageError (2) or NotFound (3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from novamove import errors
from novamove.engine import events
from novamove.engine.doctor.detect import detect
from novamove.engine.doctor.findings import CLASSES, INFO, Finding, unknown_classes
from novamove.engine.doctor.repair import FAILED, FIXED, REPAIRABLE, Repair, Repairer, selected
from novamove.engine.doctor.scan import ScanStats, scan
from novamove.engine.doctor.snapshot import Options, Snapshot
from novamove.engine.frame import RunFrame


@dataclass
class DoctorReport:
    findings: list[Finding]                       # what the (first) scan found
    stats: ScanStats
    fix: bool = False
    classes: Optional[list[str]] = None           # --fix CLASS ...; None: the safe ones
    repairs: list[Repair] = field(default_factory=list)
    left: Optional[list[Finding]] = None          # what the scan after the repairs found
    stats_after: Optional[ScanStats] = None
    run_id: Optional[str] = None
    interrupted: bool = False
    api_requests: int = 0
    elapsed_seconds: float = 0.0

    @property
    def remaining(self) -> list[Finding]:
        return self.findings if self.left is None else self.left

    @property
    def drift_left(self) -> list[Finding]:
        return [f for f in self.remaining if f.level != INFO]

    @property
    def exit_code(self) -> int:
        if any(r.outcome == FAILED for r in self.repairs):
            return errors.EXIT_FAILED
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        return errors.EXIT_FINDINGS if self.drift_left else errors.EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def summary(self) -> str:
        drift = [f for f in self.findings if f.level != INFO]
        info = len(self.findings) - len(drift)
        head = (f"{len(drift)} finding(s)" if drift else "no drift") + (f", {info} for information" if info else "")
        if not self.fix:
            return f"doctor: {head}" + (f"; `novamove doctor --fix` repairs {n} of them"
                                        if (n := sum(1 for f in drift if f.safe)) else "")
        fixed = sum(1 for r in self.repairs if r.outcome == FIXED)
        failed = sum(1 for r in self.repairs if r.outcome == FAILED)
        skipped = len(self.repairs) - fixed - failed
        parts = [f"{fixed} fixed"] + ([f"{failed} failed"] if failed else []) + \
                ([f"{skipped} skipped"] if skipped else [])
        return f"doctor --fix: {head}; {', '.join(parts)}; {len(self.drift_left)} left after a new scan"

    def to_dict(self) -> dict:
        return {"summary": self.summary, "exit_code": self.exit_code, "run_id": self.run_id,
                "findings": [f.to_dict() for f in self.findings],
                "repairs": [r.to_dict() for r in self.repairs],
                "left": None if self.left is None else [f.to_dict() for f in self.left],
                "requests": dict(self.stats.requests), "requests_total": self.stats.total,
                "scan_seconds": round(self.stats.seconds, 2)}


def check_classes(fix_classes: Optional[Iterable[str]]) -> Optional[list[str]]:
    """`--fix CLASS ...`: every name a drift class whose repair --fix can make (one line otherwise)."""
    if fix_classes is None:
        return None
    names = list(dict.fromkeys(fix_classes))
    unknown = unknown_classes(names)
    if unknown:
        raise errors.UsageError(f"unknown drift class {unknown[0]!r}; classes: {', '.join(CLASSES)}")
    never = [n for n in names if n not in REPAIRABLE]
    if never:
        raise errors.UsageError(f"--fix {never[0]}: that class is repaired by an operator "
                                f"({CLASSES[never[0]].repair}), never by doctor; repairable classes: "
                                f"{', '.join(REPAIRABLE)}")
    return names


def check_scope(snap: Snapshot, opts: Options) -> None:
    """An --host / --server the cloud does not have is bad input (NotFound), before any change."""
    hosts = {s.host for s in snap.services} | {h.get("hypervisor_hostname") for h in snap.hypervisors}
    for h in sorted(opts.hosts):
        if h not in hosts:
            raise errors.NotFound(f"no compute host {h!r} (--host); nothing changed")
    known = {s.id for s in snap.servers} | {s.name for s in snap.servers}
    for s in sorted(opts.servers):
        if s not in known:
            raise errors.NotFound(f"no server {s!r} (--server) in any project; nothing changed")


def doctor(cloud: Any, journal: Any, opts: Options = Options(), *, fix: bool = False,
           fix_classes: Optional[Iterable[str]] = None, heartbeat_gap: Optional[float] = None,
           repair_timeout: float = 180.0, poll_interval: float = 2.0,
           progress: Optional[Callable[[str], None]] = None, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> DoctorReport:
    say = progress or (lambda line: None)
    classes = check_classes(fix_classes)
    fix = fix or classes is not None
    kw: dict = {"sleep": sleep, "clock": clock}
    if heartbeat_gap is not None:
        kw["heartbeat_gap"] = heartbeat_gap
    t0 = clock()
    snap, stats = scan(cloud, journal=journal, **kw)
    check_scope(snap, opts)
    findings = detect(snap, opts)
    report = DoctorReport(findings, stats, fix=fix, classes=classes)
    todo = selected(findings, classes) if fix else []
    if not todo:
        report.elapsed_seconds = clock() - t0
        return report
    frame = RunFrame(journal, events.VERB_DOCTOR, cloud=cloud, report=report, clock=clock, t0=t0,
                     mode="fix", strategy=",".join(classes) if classes else "safe")
    report.run_id = frame.run_id
    with frame:
        repairer = Repairer(cloud, journal, frame.run_id, timeout=repair_timeout, interval=poll_interval,
                            sleep=sleep, clock=clock, say=say)
        report.repairs = repairer.run(todo)
        say("scanning again to read the repairs back")
        after, report.stats_after = scan(cloud, journal=journal, **kw)
        report.left = detect(after, opts)
        for r in report.repairs:
            # A repair is fixed only if the new scan no longer finds it.
            if r.outcome == FIXED and any(_about(f, r) for f in report.left):
                r.outcome, r.detail = FAILED, r.detail + "; the scan after it still finds it"
    return report


def _about(f: Finding, r: Repair) -> bool:
    target = f.evidence.get("consumer") or f.server_id or f.host
    return f.klass == r.klass and target == r.target
