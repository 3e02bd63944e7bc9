"""How one server reaches its target host.

  native   Nova targets the host itself (cold >= 2.56, live >= 2.30); nothing else is touched.
  isolate  every other enabled compute is disabled until the scheduler has decided.
  scheduler  no target named: Nova's scheduler chooses; nothing else is touched.
"""

from novamove.engine.single.strategies.base import MoveContext, Step, Strategy, run_steps  # noqa: F401
from novamove.engine.single.strategies.isolate import IsolateStrategy
from novamove.engine.single.strategies.native import NativeStrategy
from novamove.engine.single.strategies.scheduler import SchedulerStrategy

STRATEGIES = {"native": NativeStrategy, "isolate": IsolateStrategy, "scheduler": SchedulerStrategy}


def get(name: str) -> Strategy:
    return STRATEGIES[name]()
