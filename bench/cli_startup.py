"""Start-up time of `novamove --help` against `openstack --help`, measured in the same run.

    .venv/bin/python bench/cli_startup.py [-n RUNS]

Runs both commands alternately (so a busy machine slows both alike), prints each median and
the ratio. The goal (issue 10): novamove --help takes at most a third of openstack --help.
Exit 1 when the goal is missed (so CI can run it), 2 when `openstack` is not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1 / 3


def _command(name: str) -> list[str] | None:
    here = Path(sys.executable).parent / name       # the same venv as this Python first
    if here.exists():
        return [str(here)]
    found = shutil.which(name)
    return [found] if found else None


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv + ["--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, "COLUMNS": "100"})
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args()
    novamove, openstack = _command("novamove"), _command("openstack")
    if not novamove or not openstack:
        print("novamove and openstack (python-openstackclient) must both be installed", file=sys.stderr)
        return 2
    _time(novamove), _time(openstack)           # warm the page cache and .pyc files
    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(_time(novamove))
        theirs.append(_time(openstack))
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = a / b
    print(f"novamove --help   median {a * 1000:7.1f} ms  (min {min(ours) * 1000:.1f}, n={args.runs})")
    print(f"openstack --help  median {b * 1000:7.1f} ms  (min {min(theirs) * 1000:.1f}, n={args.runs})")
    verdict = "ok" if ratio <= GOAL else "MISSED"
    print(f"ratio {ratio:.3f} (goal <= {GOAL:.3f}): {verdict}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
