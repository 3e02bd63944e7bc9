"""`novamove minicloud ...`: placeholder filled in by the minicloud work."""
from novamove.cli import main  # noqa: F401
