"""Runs moves: pre-checks, strategy, waiting, confirmation, the journal and recovery."""

from novamove.engine.journal import Journal  # noqa: F401
from novamove.engine.mover import move, prepare  # noqa: F401
from novamove.engine.result import MoveResult, Snapshot  # noqa: F401
