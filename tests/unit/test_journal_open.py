"""A brand-new journal opened by several processes and threads at once (issue 19): one of them
creates it, the others wait and find it ready, on every backend (the `journal_url` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import sqlalchemy as sa

from novamove.engine.journal import Journal, migrate

ROOT = Path(__file__).resolve().parents[2]
OPENERS = 4
WAIT = 90          # seconds an opener may take, at most (a few, normally)

# Each opener imports everything first, says so, then waits for the word to open: the opens
# then start within a few milliseconds of each other.
OPENER = textwrap.dedent("""
    import sys
    from novamove.engine.journal import Journal
    print("ready", flush=True)
    sys.stdin.readline()
    j = Journal(sys.argv[1])
    j.start_run(sys.argv[2], "drain", source="c1")
    j.note(sys.argv[2], "drain.move", "s1")
    print("opened", flush=True)
""")


def test_a_new_journal_opened_by_processes_and_threads_at_once_is_created_once(journal_url):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, journal_url, f"p{i}"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(OPENERS)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    errors: list = []
    go = threading.Barrier(OPENERS + 1)

    def open_in_a_thread(i: int) -> None:
        go.wait()
        try:
            j = Journal(journal_url)
            j.start_run(f"t{i}", "drain", source="c1")
        except Exception as exc:  # noqa: BLE001 -- collected and shown by the assertion
            errors.append(repr(exc))
    threads = [threading.Thread(target=open_in_a_thread, args=(i,), daemon=True) for i in range(OPENERS)]
    for t in threads:
        t.start()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    go.wait()
    try:
        for t in threads:
            t.join(timeout=WAIT)
        assert not any(t.is_alive() for t in threads), "an opener hangs"    # (an unlocked migration on PostgreSQL did)
        outs = [(p.wait(timeout=WAIT), p.stdout.read(), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert errors == []
    assert all(code == 0 and "opened" in out for code, out, _ in outs), outs
    j = Journal(journal_url)
    assert {r["id"] for r in j.runs()} == {f"p{i}" for i in range(OPENERS)} | {f"t{i}" for i in range(OPENERS)}
    assert migrate.current(j.store) == migrate.HEAD
    with j.store.engine.connect() as c:
        assert c.execute(sa.text(f"SELECT COUNT(*) FROM {migrate.VERSION_TABLE}")).scalar() == 1
