"""How one server reaches its target: strategies made of Watcher-style steps.

A step has pre_condition() (check, change nothing), execute() (make the change, journaled
before it is made), post_condition() (check the change took) and revert() (undo what execute
did, idempotent: it may run after a partial execute). A strategy is a list of steps;
`run_steps` executes them in order and, if anything fails or is interrupted, reverts the
executed ones in reverse order.

A strategy's job ends when Nova has *accepted and scheduled* the move: the engine then waits
for the move itself, confirms it and reports.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from novamove import errors
from novamove.model import Host, Migration, Server

log = logging.getLogger("novamove.engine.single.strategies")


@dataclass
class MoveContext:
    """Everything a step needs; steps record what they learn on it."""
    cloud: Any                        # novamove.cloud.Cloud (or a fake with the same verbs)
    journal: Any                      # novamove.engine.journal.Journal (duck-typed)
    run_id: str
    server: Server
    target: Host
    mode: str                         # live | cold
    reason: Optional[str] = None
    timeout: float = 600.0
    poll_interval: float = 1.0
    schedule_poll_interval: float = 0.25
    # isolate: the other computes stay disabled at most this long waiting for the scheduler,
    # whatever --timeout says (a stuck scheduler must not keep the cloud unschedulable).
    schedule_timeout: float = 60.0
    # observe(phase, server or None, migration or None): the engine turns it into progress
    observe: Optional[Callable[[str, Optional[Server], Optional[Migration]], None]] = None
    clock: Callable[[], float] = field(default=lambda: time.monotonic())
    sleep: Callable[[float], None] = field(default=lambda seconds: time.sleep(seconds))
    started: float = field(default_factory=lambda: time.monotonic())
    started_at: str = ""              # ISO time of the run start (for Nova's action records)
    # learned along the way
    known_migration_ids: Optional[set] = None
    migration: Optional[Migration] = None
    scheduled: bool = False
    isolation_started: Optional[float] = None
    isolation_ended: Optional[float] = None
    disabled: list = field(default_factory=list)    # services isolate disabled (model.Service)

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    @property
    def isolation_seconds(self) -> float:
        if self.isolation_started is None:
            return 0.0
        end = self.isolation_ended if self.isolation_ended is not None else self.clock()
        return max(0.0, end - self.isolation_started)


class Step(ABC):
    name = "step"

    def pre_condition(self, ctx: MoveContext) -> None:
        """Raise a novamove error if the step cannot run; change nothing."""

    @abstractmethod
    def execute(self, ctx: MoveContext) -> None:
        ...

    def post_condition(self, ctx: MoveContext) -> None:
        """Raise if the change did not take."""

    def revert(self, ctx: MoveContext) -> None:
        """Undo what execute() did (idempotent); default: nothing to undo."""


def run_steps(steps: list[Step], ctx: MoveContext) -> None:
    executed: list[Step] = []
    try:
        for step in steps:
            step.pre_condition(ctx)
            executed.append(step)   # before execute: a half-done execute is reverted too
            step.execute(ctx)
            step.post_condition(ctx)
    except BaseException as exc:
        problems = []
        for step in reversed(executed):
            try:
                step.revert(ctx)
            except BaseException as revert_exc:  # keep reverting the others
                log.error("revert of %s failed: %s", step.name, revert_exc)
                problems.append(f"{step.name}: {revert_exc}")
        if problems:
            raise errors.MoveFailed(
                f"{exc}; and undoing failed ({'; '.join(problems)}) - run `novamove recover`") from exc
        raise


class Strategy(ABC):
    name = "strategy"

    @abstractmethod
    def steps(self, ctx: MoveContext) -> list[Step]:
        ...

    def run(self, ctx: MoveContext) -> None:
        run_steps(self.steps(ctx), ctx)
