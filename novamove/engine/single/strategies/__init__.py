"""How one server reaches its target host.

  native   Nova targets the host itself (cold >= 2.56, live >= 2.30); nothing else is touched.
  isolate  every other enabled compute is disabled until the scheduler has decided.
"""

from novamove.engine.single.strategies.base import MoveContext, Step, Strategy, run_steps  # noqa: F401
from novamove.engine.single.strategies.isolate import IsolateStrategy
from novamove.engine.single.strategies.native import NativeStrategy

STRATEGIES = {"native": NativeStrategy, "isolate": IsolateStrategy}


def get(name: str) -> Strategy:
    return STRATEGIES[name]()
