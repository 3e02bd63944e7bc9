#!/usr/bin/env python3
"""Print a pip constraints file that pins every direct dependency of novamove to its floor.

The floor is the lowest version pyproject.toml allows (`NAME>=X` becomes `NAME==X`), for the
runtime dependencies and for the extras named on the command line (default: ansible, docs and osc:
the ones the unit tests exercise). `make test-floor` installs novamove with it into a fresh
virtualenv and runs the unit tests there, so a floor that is too low fails a test instead of a
user's run (docs/testing.md).

    python3 scripts/floor_constraints.py [EXTRA ...] > floor-constraints.txt

Standard library only (tomllib, Python >= 3.11): it runs before anything is installed. A
dependency without a `>=` floor is an error: every direct dependency must say its floor.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
DEFAULT_EXTRAS = ("ansible", "docs", "osc", "mysql", "postgresql")
# NAME[extras]>=X[,<Y] [; marker]
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def floor(requirement: str) -> "tuple[str, str] | None":
    """(name, lowest version) of one requirement; None for a self-reference (novamove[...])."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"cannot read requirement {requirement!r}")
    name, _extras, spec, _marker = match.groups()
    if name.lower() == "novamove":
        return None
    lows = [v for op, v in re.findall(r"(>=|==|~=)\s*([^,\s]+)", spec)]
    if not lows:
        raise ValueError(f"{requirement!r} has no floor (NAME>=X): every direct dependency needs one")
    return name, lows[0]


def constraints(extras=DEFAULT_EXTRAS, pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"no extra {extra!r} in {pyproject.name} (have: {', '.join(optional)})")
        requirements += optional[extra]
    pins = {}
    for requirement in requirements:
        pinned = floor(requirement)
        if pinned:
            pins.setdefault(pinned[0].lower(), f"{pinned[0]}=={pinned[1]}")
    return list(pins.values())


def main(argv: list[str]) -> int:
    extras = tuple(argv) or DEFAULT_EXTRAS
    print(f"# the floors of novamove's direct dependencies (extras: {', '.join(extras)}),")
    print("# generated from pyproject.toml by scripts/floor_constraints.py")
    for line in constraints(extras):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
