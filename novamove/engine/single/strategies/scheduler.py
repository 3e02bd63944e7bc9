"""scheduler: no target named; Nova's scheduler chooses (`openstack server migrate SERVER`).

The move is requested without a host; once the migration record names its destination, that
host becomes the move's target, so the wait, the read back, the confirmation of a cold move,
the journal and `back` judge it like a move to a named host. No service is touched.
"""

from __future__ import annotations

from novamove.engine.single.strategies.base import MoveContext, Step, Strategy
from novamove.engine.single.strategies.steps import RequestMove, WaitScheduled
from novamove.model import Host

# The target's name until the scheduler has decided (messages read "... to <this> failed").
UNDECIDED = "a host of the scheduler's choice"


class TakeSchedulersChoice(Step):
    """The destination the record names is the target from now on (journaled on the run)."""

    name = "take-schedulers-choice"

    def execute(self, ctx: MoveContext) -> None:
        dest = ctx.migration.dest_host if ctx.migration is not None else None
        if dest:
            ctx.target = Host(name=dest, service=None)
            ctx.journal.update_run(ctx.run_id, dest=dest)


class SchedulerStrategy(Strategy):
    name = "scheduler"

    def steps(self, ctx: MoveContext) -> list[Step]:
        return [RequestMove(host=None), WaitScheduled(), TakeSchedulersChoice()]
