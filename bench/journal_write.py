"""Journal write overhead per change: the median time of one journaled change (intent written
before the call, marked done after it: `with journal.change(...)` around nothing), on SQLite,
MariaDB and PostgreSQL on loopback, measured in the same run, with each server's ratio to SQLite.

    .venv/bin/python bench/journal_write.py [-n CHANGES]

The servers are the unit tests' (tests/unit/journal_servers.py: started for the run, stopped at
its end). Backends are measured in turn, round after round, so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from journal_servers import Servers  # noqa: E402

from novamove.engine.journal import Journal  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="changes per backend (default 300)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(Path(tmp) / "servers")
        servers.enter()
        try:
            journals = {"sqlite": Journal(Path(tmp) / "j.sqlite"),
                        "mariadb": Journal(servers.new_database("mariadb")),
                        "postgresql": Journal(servers.new_database("postgresql"))}
            times: dict[str, list[float]] = {name: [] for name in journals}
            for j in journals.values():
                j.start_run("bench", "drain", source="c1")
            for i in range(args.n):
                for name, j in journals.items():
                    t = time.perf_counter()
                    with j.change("bench", "drain.move", f"server-{i}", source="c1", dest="c2"):
                        pass
                    times[name].append(time.perf_counter() - t)
        finally:
            servers.leave()
    base = statistics.median(times["sqlite"])
    print(f"{'backend':<11} {'median ms/change':>17} {'p90 ms':>8} {'x sqlite':>9}")
    for name, ts in times.items():
        med, p90 = statistics.median(ts), sorted(ts)[int(len(ts) * 0.9)]
        print(f"{name:<11} {med * 1000:>17.2f} {p90 * 1000:>8.2f} {med / base:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
