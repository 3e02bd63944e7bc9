"""Randomized kill on A, recover on B, with a shared journal (issue 19's proof): a run on
machine A is SIGKILLed at a random moment (a random delay after it started, not a chosen
journaled step), then machine B (another HOME and machine identity: NOVAMOVE_TEST_MACHINE)
waits out A's lease and takes the way on the docs give; the cloud must end as the fault matrix's
invariants say (tests/acceptance/test_fault_matrix.py, whose scenario functions run here).

Each trial picks, from its seed, a scenario (an isolate live move, an isolate cold move, a drain
of two live and two stopped servers) and a delay (uniform over about the scenario's run time),
on a database of its own on MariaDB (the minicloud's) and PostgreSQL (the unit tests'
loopback server). A delay past the end of the run kills nothing: the trial still checks the
invariants and counts as "finished first".

Defined only with NOVAMOVE_RANDOM_KILLS=N (trials per backend): `make faults-random` (N=100 by
default, about 15-35 s a trial) and `make faults` run it. NOVAMOVE_RANDOM_KILLS_SEED fixes the
seeds (trial i uses SEED+i); the table at the end lists each trial's seed, scenario, delay and
outcome, so a failing trial can be run again alone (-k).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import test_fault_matrix as matrix
from test_shared_journal import TwoMachines, _fresh_minicloud_database, postgresql_servers  # noqa: F401
from test_fault_matrix import services_put_back  # noqa: F401

pytestmark = pytest.mark.acceptance

TRIALS = int(os.environ.get("NOVAMOVE_RANDOM_KILLS", "0") or 0)
SEED = int(os.environ.get("NOVAMOVE_RANDOM_KILLS_SEED", str(int(time.time()) % 100000)))
# The longest delay: about the scenario's whole run on the minicloud (Python's start, ~1 s,
# included), so most kills land mid-run (a first run with 14/18/30 s killed 2 trials of 10).
SCENARIOS = {"isolate-live": 5.0, "isolate-cold": 6.0, "drain": 10.0}
OUTCOMES: list[tuple[str, str]] = []


def _trial(seed: int) -> tuple[str, float]:
    # (a string seed is hashed: int seeds next to each other gave nearly equal second draws)
    rng = random.Random(f"novamove-random-kill-{seed}")
    scenario = rng.choice(sorted(SCENARIOS))
    return scenario, round(rng.uniform(1.0, SCENARIOS[scenario]), 2)


class RandomKill(TwoMachines):
    """The faulted command (fault="random") runs on A and is SIGKILLed after `delay` seconds."""

    def __init__(self, minicloud, url, tmp_path, delay: float):
        super().__init__(minicloud, url, tmp_path)
        self.delay = delay

    def __call__(self, minicloud, journal, *args, fault=None, timeout=600):
        if fault != "random":
            return super().__call__(minicloud, journal, *args, timeout=timeout)
        env = {**os.environ, **minicloud.env, **self.a, "OS_CLOUD": "minicloud"}
        proc = subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=matrix_repo())
        try:
            out, err = proc.communicate(timeout=self.delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
        self.a_was_killed = proc.returncode == -9
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _leave_a_alone_then_wait_out_its_lease(self) -> None:
        if self._a_runs():                    # killed before its first run was written: nothing held
            super()._leave_a_alone_then_wait_out_its_lease()


def matrix_repo():
    from pathlib import Path
    return Path(matrix.__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table(request):
    yield OUTCOMES
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not OUTCOMES:
        return
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        reporter.write_line("")
        for backend in ("mariadb", "postgresql"):
            mine = [o for t, o in OUTCOMES if t.startswith(backend)]
            clean = sum(o.startswith("ok") for o in mine)
            killed = sum(o.startswith("ok killed") for o in mine)
            reporter.write_line(f"random kills on {backend}: {clean}/{len(mine)} trials ended clean "
                                f"({killed} killed mid-run, {clean - killed} finished first)")
        for trial, outcome in OUTCOMES:
            reporter.write_line(f"  {trial:<50} {outcome}")


if TRIALS > 0:

    @pytest.mark.parametrize("index", range(TRIALS), ids=[f"t{i}-seed{SEED + i}" for i in range(TRIALS)])
    @pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
    def test_random_kill_on_a_recover_on_b(minicloud, servers, services_put_back, tmp_path, request, table,
                                           backend, index):
        seed = SEED + index
        scenario, delay = _trial(seed)
        name = f"{backend} seed={seed} {scenario} kill at {delay:.2f}s"
        OUTCOMES.append((name, "FAILED"))
        if backend == "mariadb":
            url = _fresh_minicloud_database(minicloud.manager, "nm_random_kill")
        else:
            url = request.getfixturevalue("postgresql_servers").new_database("postgresql")
        a = RandomKill(minicloud, url, tmp_path, delay)
        request.getfixturevalue("monkeypatch").setattr(matrix, "_cli", a)
        if scenario == "drain":
            code = matrix._drain_point(minicloud, servers, url, "drain", [], "random")
        else:
            mode = "--live" if scenario == "isolate-live" else "--cold"
            code = matrix._single_move(minicloud, servers, url, "migrate", ["--strategy", "isolate", mode], "random")
        hiccups = f"; {len(a.hiccups)} journal open(s) failed first" if a.hiccups else ""
        OUTCOMES[-1] = (name, (f"ok killed (B waited {a.lease_waited:.0f} s)" if code == -9
                               else f"ok finished first (exit {code})") + hiccups)
