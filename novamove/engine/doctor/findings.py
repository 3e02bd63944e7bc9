"""What `novamove doctor` reports: findings, and the drift classes they belong to.

A finding is data with stable keys (docs/doctor.md): `-f json` is a list of `to_dict()`s.
Every class has a stable name, a one-line explanation and what its repair is:

    safe      a repair through the public APIs that changes no tenant's server and that
              `--fix` with no class name makes (e.g. deleting an ended migration's
              allocations, guarded by Placement's consumer generation)
    one-way   a repair through the public APIs that cannot be undone, or changes a tenant's
              server: only made when its class is named (`--fix verify-resize-forgotten`)
    named     a repair through the public APIs that ends what a novamove run (dead, failed, or
              whose process is gone) meant to do: only made when its class is named
    operator  needs the database or the hypervisor: reported with the command an operator
              would run, never "fixed"
    none      information only (a finished drain's host: the operator's intent)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

SAFE = "safe"
ONE_WAY = "one-way"
NAMED = "named"
OPERATOR = "operator"
NONE = "none"
REPAIRS = (SAFE, ONE_WAY, NAMED, OPERATOR, NONE)

DRIFT = "drift"
INFO = "info"


@dataclass(frozen=True)
class DriftClass:
    name: str
    explain: str
    repair: str                    # SAFE | ONE_WAY | OPERATOR | NONE

    def __post_init__(self) -> None:
        if self.repair not in REPAIRS:
            raise ValueError(f"{self.name}: repair {self.repair!r} is not one of {REPAIRS}")


_CLASSES = (
    DriftClass("verify-resize-forgotten",
               "a server waits in VERIFY_RESIZE longer than --older-than: nobody confirmed or reverted "
               "the move", ONE_WAY),
    DriftClass("task-state-stuck",
               "a server's task state says it is moving (migrating, resize_*, rebuilding after an "
               "evacuation) but no migration of it is in progress", ONE_WAY),
    DriftClass("migration-stuck",
               "a migration record is in a non-terminal state older than --older-than while its "
               "server is not moving (its allocations stay held)", OPERATOR),
    DriftClass("server-not-where-migration-says",
               "a server's latest migration finished but the server is not on its destination, or "
               "failed or was reverted but the server is not on its source", OPERATOR),
    DriftClass("migration-allocation-leaked",
               "Placement allocations held by the consumer of a migration that has ended (the host "
               "looks fuller than it is)", SAFE),
    DriftClass("server-allocation-elsewhere",
               "a server's Placement allocation is on a compute node other than the one it runs on",
               OPERATOR),
    DriftClass("server-allocation-missing",
               "a server that runs on a compute node holds no Placement allocation at all", OPERATOR),
    DriftClass("consumer-unknown",
               "Placement allocations of a consumer that is neither a server nor a known migration "
               "(a deleted server)", ONE_WAY),
    DriftClass("compute-forced-down-reporting",
               "a compute is forced down while its nova-compute keeps reporting (seen in two reads, "
               "in Nova's clock): it is not fenced", NAMED),
    DriftClass("compute-down-holding-servers",
               "a compute is down and enabled and still holds servers: nobody evacuated it", OPERATOR),
    DriftClass("compute-isolation-left",
               "a compute disabled by a novamove isolation window whose run is no longer at work",
               SAFE),
    DriftClass("compute-tag-dead-run",
               "a compute disabled by a novamove drain or evacuation run that failed or died "
               "before it finished", NAMED),
    DriftClass("compute-held",
               "a compute a finished novamove drain or evacuation keeps disabled on purpose (until "
               "undrain/unfence): information, never a fix", NONE),
    DriftClass("server-error-after-migration",
               "a server in ERROR whose last fault came from a migration", OPERATOR),
)

CLASSES: dict[str, DriftClass] = {c.name: c for c in _CLASSES}


def safe_classes() -> list[str]:
    """The classes `--fix` with no class name repairs."""
    return [c.name for c in _CLASSES if c.repair == SAFE]


def unknown_classes(names: list[str]) -> list[str]:
    """Names that are not drift classes (bad input, refused in one line by the caller)."""
    return [n for n in names if n not in CLASSES]


@dataclass(frozen=True)
class Finding:
    """One piece of drift (or information), with its evidence and its exact repair.

    `klass` is the drift class name (`class` in to_dict()); `server_id` or `host` says what it
    is about; `fix` is the exact command or action; `repairable` says `--fix` could make that
    repair through the public APIs, `safe` that it is in the default `--fix` set."""
    klass: str
    detail: str
    fix: str
    server_id: Optional[str] = None
    host: Optional[str] = None
    evidence: dict = field(default_factory=dict)
    repairable: bool = False
    safe: bool = False
    level: str = DRIFT

    def __post_init__(self) -> None:
        if self.klass not in CLASSES:
            raise ValueError(f"unknown drift class {self.klass!r}")
        if self.safe and not self.repairable:
            raise ValueError(f"{self.klass}: a safe repair must be repairable")

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.klass, "server_id": self.server_id, "host": self.host, "detail": self.detail,
                "evidence": dict(self.evidence), "fix": self.fix, "repairable": self.repairable,
                "safe": self.safe, "level": self.level}


def finding(klass: str, detail: str, fix: str, *, repairable: Optional[bool] = None,
            safe: Optional[bool] = None, **rest: Any) -> Finding:
    """A Finding whose flags default to its class's repair kind (a verdict may lower them:
    e.g. a re-enable is not safe when the run's state is unknown)."""
    kind = CLASSES[klass].repair
    repairable = kind in (SAFE, ONE_WAY, NAMED) if repairable is None else repairable
    safe = (kind == SAFE and repairable) if safe is None else safe
    level = INFO if kind == NONE else DRIFT
    return Finding(klass, detail, fix, repairable=repairable, safe=safe, level=level, **rest)
