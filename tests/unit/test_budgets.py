"""Cloud-wide move budgets (journal/budgets.py) on every backend (the `journal_url` fixture):
concurrent drains sharing one journal never exceed the budget and all finish; slots of a dead
run are taken back; a run taken over can no longer take or give back slots as holder."""

from __future__ import annotations

import threading
import time

import pytest

from novamove import errors
from novamove.engine.batch import moves
from novamove.engine.batch.drain import drain
from novamove.engine.journal import Journal, budgets
from novamove.engine.journal.store import Fenced

from fakenova import FakeNova


class Clock:
    """A drain's clock: fake time (moves finish in few polls), with a real pause so that
    concurrent runners interleave instead of spinning."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        time.sleep(0.01)


class Watch:
    """Moves in flight across every drain, counted from the cloud calls (a move starts when Nova
    is asked) and the runners' ends of them: not from the slots table under test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak = 0
        self.peak_per_host = 0

    def started(self, dest: str) -> None:
        with self.lock:
            self.now[dest] = self.now.get(dest, 0) + 1
            self.peak = max(self.peak, sum(self.now.values()))
            self.peak_per_host = max(self.peak_per_host, self.now[dest])

    def ended(self, dest: str) -> None:
        with self.lock:
            self.now[dest] -= 1


def _watched_nova(watch: Watch, source: str, n: int) -> FakeNova:
    nova = FakeNova()
    for i in range(n):
        nova.add(f"v{i}", source)
    real = nova.live_migrate_server

    def live_migrate_server(server_id, host=None):
        watch.started(host)
        return real(server_id, host=host)
    nova.live_migrate_server = live_migrate_server
    return nova


@pytest.fixture
def watch(monkeypatch):
    w = Watch()
    real = moves.BatchRunner._finish

    def _finish(self, f, *a, **kw):
        w.ended(f.step.dest)
        return real(self, f, *a, **kw)
    monkeypatch.setattr(moves.BatchRunner, "_finish", _finish)
    return w


def _drains(journal_url: str, watch: Watch, runners: int, servers: int) -> tuple[list, list[list[str]]]:
    reports: list = [None] * runners
    lines: list[list[str]] = [[] for _ in range(runners)]
    failures: list[BaseException] = []
    Journal(journal_url)          # the schema, once: first opens racing in threads are not this test's

    def one(i: int) -> None:
        try:
            clock = Clock()
            reports[i] = drain(_watched_nova(watch, f"c{i + 1}", servers), f"c{i + 1}", journal=Journal(journal_url), mode="live",
                               max_parallel=4, max_per_host=4, clock=clock, sleep=clock.sleep,
                               poll_interval=1.0, progress=lines[i].append)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test below
            failures.append(exc)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    return reports, lines


@pytest.mark.parametrize("runners", [2, 3])
def test_concurrent_drains_never_exceed_the_budget_and_none_starves(journal_url, watch, runners):
    budgets.set_budget(Journal(journal_url), "fake", max_in_flight=2, max_per_host=1)
    reports, lines = _drains(journal_url, watch, runners, servers=4)
    assert watch.peak == 2, f"most in flight cloud-wide: {watch.peak} (budget 2)"
    assert watch.peak_per_host == 1, f"most in flight to one host: {watch.peak_per_host} (budget 1)"
    for report in reports:                      # none starves: every drain emptied its host
        assert report.ok, report.summary
        assert sum(1 for r in report.results if r.result == "moved") == 4
    said = [line for ls in lines for line in ls if line.startswith("waiting for budget:")]
    assert said, "a run waiting for budget says so"
    assert budgets.in_flight(Journal(journal_url), "fake") == [], "every slot given back"


def test_without_a_budget_drains_run_as_before(journal_url, watch):
    reports, lines = _drains(journal_url, watch, 2, servers=4)
    assert all(r.ok for r in reports)
    assert watch.peak > 2, "no budget: each drain's own caps only"
    assert not any("waiting for budget" in line for ls in lines for line in ls)
    assert budgets.in_flight(Journal(journal_url), "fake") == []


def _as_other_machine(journal: Journal, run_id: str, lease_in: float) -> None:
    journal._write("UPDATE runs SET process=?, machine=?, lease_until=? WHERE id=?",
                   ("test-b2:4242:1", "b2", time.time() + lease_in, run_id))
    journal._held.discard(run_id)


def test_slots_of_a_dead_run_are_taken_back_after_its_lease(journal_url):
    theirs = Journal(journal_url)
    budgets.set_budget(theirs, "fake", max_in_flight=2, max_per_host=None)
    theirs.start_run("dead", "drain", cloud="fake")
    gate = budgets.Gate(theirs, "dead", "fake")
    gate.refresh()
    assert gate.take("v1", "c2") and gate.take("v2", "c3")
    # Its machine went away: its lease runs out. 4 s, so that a loaded machine still reaches the
    # first take below while the lease holds (1 s failed under load).
    _as_other_machine(theirs, "dead", lease_in=4.0)
    mine = Journal(journal_url)
    mine.start_run("alive", "drain", cloud="fake")
    said: list[str] = []
    gate = budgets.Gate(mine, "alive", "fake", said.append)
    gate.refresh()
    assert not gate.take("v9", "c2"), "its lease still holds: its slots count"
    assert said == ["waiting for budget: 2 of 2 in flight cloud-wide"]
    time.sleep(max(0.0, mine.get_run("dead")["lease_until"] - time.time()) + 0.2)
    assert gate.take("v9", "c2"), "lease expired: its slots are taken back"
    assert [(r["run_id"], r["state"]) for r in budgets.in_flight(mine, "fake")] == [("alive", "moving")]


def test_a_run_taken_over_can_no_longer_take_or_give_back_slots(journal_url):
    mine = Journal(journal_url)
    budgets.set_budget(mine, "fake", max_in_flight=3, max_per_host=None)
    mine.start_run("r1", "drain", cloud="fake")
    gate = budgets.Gate(mine, "r1", "fake")
    gate.refresh()
    assert gate.take("v1", "c2")
    theirs = Journal(journal_url)
    theirs.holder = "machine-b-token"
    mine._write("UPDATE runs SET process=?, lease_until=? WHERE id=?", ("test-a:1:1", time.time() - 1, "r1"))
    assert theirs.take_over("r1")
    with pytest.raises(Fenced, match="taken over"):
        gate.take("v2", "c3")
    gate.release("v1")
    gate.release_all()
    assert [r["server_id"] for r in budgets.in_flight(mine, "fake")] == ["v1"], "the old holder gave nothing back"


def test_a_run_waits_its_turn_first_come_first_served(journal_url):
    j = Journal(journal_url)
    budgets.set_budget(j, "fake", max_in_flight=1, max_per_host=None)
    gates = {}
    for run_id in ("a", "b", "c"):
        j.start_run(run_id, "drain", cloud="fake")
        gates[run_id] = budgets.Gate(j, run_id, "fake")
        gates[run_id].refresh()
    assert gates["a"].take("va", "c2")
    assert not gates["b"].take("vb", "c2")          # b is first in line
    assert not gates["c"].take("vc", "c2")          # then c
    gates["a"].release("va")
    assert not gates["c"].take("vc", "c2"), "c may not jump the line"
    assert not gates["a"].take("va2", "c2"), "nor may a, whose move just ended"
    assert gates["b"].take("vb", "c2")


def test_budget_set_show_clear_and_bad_input(journal_url):
    j = Journal(journal_url)
    assert budgets.get(j, "fake") is None
    b = budgets.set_budget(j, "fake", max_in_flight=8, max_per_host=2)
    assert (b.max_in_flight, b.max_per_host) == (8, 2) and b.set_by
    assert budgets.set_budget(j, "fake", max_in_flight=None, max_per_host=3).max_per_host == 3
    assert budgets.get(j, "other") is None, "a budget is per cloud"
    for bad in ((0, None), (None, -1), ("8", None), (None, None), (True, None)):
        with pytest.raises(errors.UsageError):
            budgets.set_budget(j, "fake", *bad)
    assert budgets.clear(j, "fake") and budgets.get(j, "fake") is None
    assert not budgets.clear(j, "fake")


def test_cli_budget_set_show_clear_and_bad_input(tmp_path):
    """The CLI, in a process: limits validated once (one line, exit 2, nothing written)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    journal = str(tmp_path / "j.sqlite")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "novamove", "--journal", journal, "--os-cloud", "prod",
                               "budget", *args], capture_output=True, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(root)})
    for bad in (["set"], ["set", "--max-in-flight", "0"], ["set", "--max-per-host", "x"]):
        r = cli(*bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert "Traceback" not in r.stderr
    assert json.loads(cli("show", "-f", "json").stdout)["max_in_flight"] is None, "bad input changed nothing"
    r = cli("set", "--max-in-flight", "8", "--max-per-host", "2", "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(cli("show", "-f", "json").stdout)
    assert (doc["cloud"], doc["max_in_flight"], doc["max_per_host"], doc["in_flight"]) == ("prod", 8, 2, 0)
    assert budgets.get(Journal(journal), "prod").max_in_flight == 8, "the cloud as runs record it"
    assert cli("clear").stdout.strip() == "budget cleared"
    assert json.loads(cli("show", "-f", "json").stdout)["max_per_host"] is None


def test_slots_of_a_killed_process_on_this_machine_are_taken_back_at_once(journal_url):
    """Same machine, process gone: dead without waiting for its lease."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    budgets.set_budget(Journal(journal_url), "fake", max_in_flight=1, max_per_host=None)
    code = ("import os, signal, sys\n"
            "from novamove.engine.journal import Journal, budgets\n"
            "j = Journal(sys.argv[1]); j.start_run('killed', 'drain', cloud='fake')\n"
            "g = budgets.Gate(j, 'killed', 'fake'); g.refresh(); assert g.take('v1', 'c2')\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code, journal_url], env={**__import__("os").environ,
                       "PYTHONPATH": str(root), "NOVAMOVE_JOURNAL_LEASE": "600"})
    assert p.returncode == -9
    mine = Journal(journal_url)
    mine.start_run("next", "drain", cloud="fake")
    gate = budgets.Gate(mine, "next", "fake")
    gate.refresh()
    assert gate.take("v2", "c2"), "the killed holder's slot is taken back (its lease had 600 s left)"


def test_an_evacuation_keeps_to_the_budget_too(journal_url):
    """The evacuation runner takes slots like a drain's: a budget of 1 holds it to 1 in flight
    (its own caps allow 3), and every evacuable server is still evacuated."""
    from novamove.engine.evacuate import evacuate
    from test_evacuate import EVACUABLE, failed_host_cloud
    journal = Journal(journal_url)
    budgets.set_budget(journal, "fake", max_in_flight=1, max_per_host=None)
    nova = failed_host_cloud()
    lines: list[str] = []
    clock = Clock()
    report = evacuate(nova, "c3", journal=journal, fenced=True, max_parallel=3, max_per_host=3,
                      clock=clock, sleep=clock.sleep, poll_interval=1.0, progress=lines.append)
    assert nova.max_in_flight == 1, f"most evacuations in flight: {nova.max_in_flight} (budget 1)"
    assert {r.server_id for r in report.results if r.result == "evacuated"} == set(EVACUABLE)
    assert "waiting for budget: 1 of 1 in flight cloud-wide" in lines
    assert budgets.in_flight(journal, "fake") == []
