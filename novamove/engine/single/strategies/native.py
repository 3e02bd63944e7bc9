"""native: let Nova target the host itself (cold >= 2.56, live >= 2.30). No service is touched.

The scheduler still checks the named host (filters, capacity, affinity), unlike `force`.
"""

from __future__ import annotations

from novamove.engine.single.strategies.base import MoveContext, Step, Strategy
from novamove.engine.single.strategies.steps import RequestMove, WaitScheduled


class NativeStrategy(Strategy):
    name = "native"

    def steps(self, ctx: MoveContext) -> list[Step]:
        return [RequestMove(host=ctx.target.name), WaitScheduled()]
