"""Cloud-wide move budgets on the real minicloud (issue 19, "Budgets hold"): two drains of two
hosts at once, sharing one journal and a budget of 2 moves in flight, while a watcher lists
/os-migrations: the most in flight never exceeds 2, and each drain finishes (none starves).

Defined only under NOVAMOVE_BUDGET_ACCEPTANCE=all (`make acceptance-budget`): not in `make test`
(a skipped test fails CI, so nothing is defined otherwise).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from cloudtest import REPO

pytestmark = pytest.mark.acceptance

BUDGET = 2
IN_PROGRESS = {"queued", "preparing", "running", "migrating", "post-migrating", "pre-migrating",
               "accepted", "finished"}


def _watch(conn, ours: set, stop: threading.Event, seen: list) -> None:
    """The most live migrations of our servers in flight at once, from Nova's own records."""
    while not stop.is_set():
        try:
            now = [m for m in conn.compute.migrations() if m.server_id in ours
                   and m.migration_type == "live-migration" and m.status in IN_PROGRESS]
            seen.append(len(now))
        except Exception:  # noqa: BLE001 -- a missed sample is not a verdict
            pass
        time.sleep(0.3)


if os.environ.get("NOVAMOVE_BUDGET_ACCEPTANCE") == "all":
    def test_two_concurrent_drains_never_exceed_the_budget(minicloud, servers, tmp_path):
        hosts = sorted(minicloud.services())[:2]
        made = {h: servers(3, host=h) for h in hosts}
        ours = {s.id for ss in made.values() for s in ss}
        journal = str(tmp_path / "journal.sqlite")
        minicloud.cli("--journal", journal, "budget", "set", "--max-in-flight", str(BUDGET), check=True)
        env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud"}
        stop, seen = threading.Event(), []
        watcher = threading.Thread(target=_watch, args=(minicloud.conn(), ours, stop, seen), daemon=True)
        watcher.start()
        t0 = time.monotonic()
        drains = [subprocess.Popen([sys.executable, "-m", "novamove", "--journal", journal, "drain", h, "--mode", "live",
                                    "--max-parallel", "3", "--max-per-host", "3"],
                                   env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                  for h in hosts]
        outs = [p.communicate(timeout=600)[0] for p in drains]
        stop.set()
        watcher.join(5)
        print(f"[budget] {len(seen)} samples, most in flight {max(seen, default=0)}, "
              f"{time.monotonic() - t0:.1f} s")
        for p, out in zip(drains, outs):
            assert p.returncode == 0, out                       # none starves: each finished
        assert max(seen, default=0) <= BUDGET, f"most in flight {max(seen)} > budget {BUDGET}"
        assert max(seen, default=0) >= 1, "the watcher saw the moves"
        assert any("waiting for budget" in out for out in outs), outs
        for h, ss in made.items():
            assert all(minicloud.host_of(s.id) != h for s in ss)
        for h in hosts:
            minicloud.cli("--journal", journal, "undrain", h)
