"""The crash-point matrix: every journaled step x {kill, error, timeout} x {before, after} the
API call, for native and isolate moves (cold and live), `back`, a drain and an undrain with
move-back, on the minicloud (NOVAMOVE_FAULT, see novamove/engine/faults.py).

After each fault: `novamove recover` (and, for drains, the rerun the README documents), then
the invariants: every compute service exactly as before (status and reason), every server on
its source or its target, settled (no task state, not VERIFY_RESIZE), the journal without an
unsettled run, and a second `recover` with nothing to do.

`make test` runs a representative subset (FAULT_SUBSET); `make faults` runs all of it
(NOVAMOVE_FAULT_MATRIX=full). Each point's outcome is printed in a table at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

import pytest

from cloudtest import wait_until
from novamove.engine.journal import Journal
from novamove.engine.recover import MOVE_VERBS, unsettled

pytestmark = pytest.mark.acceptance

FAULTS = [("kill", "before"), ("kill", "after"), ("error", "before"), ("error", "after"),
          ("timeout", "before"), ("timeout", "after")]

SCENARIOS = {
    "native-live": ("migrate", ["--strategy", "native", "--live"], ["server.migrate"]),
    "native-cold": ("migrate", ["--strategy", "native", "--cold"], ["server.migrate", "server.confirm"]),
    "isolate-live": ("migrate", ["--strategy", "isolate", "--live"],
                     ["service.disable", "server.migrate", "service.enable"]),
    "isolate-cold": ("migrate", ["--strategy", "isolate", "--cold"],
                     ["service.disable", "server.migrate", "service.enable", "server.confirm"]),
    "back": ("back", ["--live"], ["server.migrate"]),
    "drain": ("drain", [], ["drain.disable", "drain.move", "drain.confirm"]),
    "undrain-move-back": ("undrain", ["--move-back"], ["drain.enable", "drain.move", "drain.confirm"]),
}

# What `make test` runs: at least one point of every scenario, every action and both moments.
FAULT_SUBSET = {
    ("native-cold", "server.confirm", "kill", "before"),
    ("native-cold", "server.migrate", "timeout", "after"),
    ("native-live", "server.migrate", "error", "after"),
    ("isolate-live", "service.disable", "kill", "after"),
    ("isolate-live", "service.enable", "error", "before"),
    ("isolate-cold", "server.confirm", "timeout", "after"),
    ("back", "server.migrate", "kill", "before"),
    ("drain", "drain.move", "kill", "after"),
    ("drain", "drain.confirm", "error", "before"),
    ("undrain-move-back", "drain.enable", "timeout", "after"),
}

POINTS = [(scenario, step, action, moment)
          for scenario, (_, _, steps) in SCENARIOS.items() for step in steps for action, moment in FAULTS]
FULL = os.environ.get("NOVAMOVE_FAULT_MATRIX") == "full"
SELECTED = POINTS if FULL else [p for p in POINTS if p in FAULT_SUBSET]

SOURCE = "compute1"
OUTCOMES: list[tuple[str, str]] = []


@pytest.fixture(scope="module")
def table(request):
    yield OUTCOMES
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not OUTCOMES:
        return
    passed = sum(o.startswith("ok") for _, o in OUTCOMES)
    # Output of a fixture's teardown is captured (and dropped for a passing test): write the
    # table past the capture, or it only shows with -s.
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        reporter.write_line("")
        reporter.write_line(f"crash-point matrix: {passed}/{len(OUTCOMES)} points end clean after recover "
                            f"({'full' if FULL else 'subset'} of {len(POINTS)})")
        for point, outcome in OUTCOMES:
            reporter.write_line(f"  {point:<58} {outcome}")


def _services(minicloud):
    return {s.host: (s.status, s.disabled_reason) for s in
            minicloud.conn().compute.services(binary="nova-compute")}


def _cli(minicloud, journal, *args, fault=None, timeout=600):
    env = {"NOVAMOVE_JOURNAL": str(journal)}
    if fault:
        env["NOVAMOVE_FAULT"] = fault
    return minicloud.cli(*args, env=env, timeout=timeout)


def _settled(minicloud, server_id):
    s = minicloud.server(server_id)
    return not s.task_state and s.status in ("ACTIVE", "SHUTOFF")


def _recover_until_clean(minicloud, journal, timeout=240):
    """`recover` until the journal has no unsettled run (a move Nova is still carrying out
    keeps its run open until a later recover finds it settled)."""
    deadline = time.monotonic() + timeout
    while True:
        out = _cli(minicloud, journal, "recover", "-f", "json")
        assert out.returncode == 0, out.stdout + out.stderr
        if not _unsettled_runs(journal) or time.monotonic() > deadline:
            return out
        time.sleep(2)


def _unsettled_runs(journal):
    j = Journal(journal)
    runs = [r for r in j.unfinished_runs()]
    runs += [r for r in j.recent_final_runs(MOVE_VERBS) if unsettled(j, r)]
    return runs


def _second_recover_is_empty(minicloud, journal):
    out = _cli(minicloud, journal, "recover", "-f", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(out.stdout or "[]")
    assert rows == [], f"a second recover still had work: {rows}"


@pytest.fixture
def services_put_back(minicloud):
    """If a point fails, put the computes back as they were so the next point starts clean (the
    failure itself is already recorded)."""
    before = {s.host: s for s in minicloud.conn().compute.services(binary="nova-compute")}
    yield
    for s in minicloud.conn().compute.services(binary="nova-compute"):
        was = before.get(s.host)
        if was is not None and (s.status, s.disabled_reason) != (was.status, was.disabled_reason):
            body = {"status": was.status}
            if was.status == "disabled":
                body["disabled_reason"] = was.disabled_reason
            minicloud.conn().compute.put(f"/os-services/{s.id}", json=body, microversion="2.53")


@pytest.mark.parametrize("scenario,step,action,moment", SELECTED,
                         ids=[f"{s}-{st}-{a}-{m}" for s, st, a, m in SELECTED])
def test_fault_point(minicloud, servers, services_put_back, tmp_path, table, scenario, step, action, moment):
    point = f"{scenario} {step}:{moment}:{action}"
    OUTCOMES.append((point, "FAILED"))
    journal = tmp_path / "journal.sqlite"
    verb, args, _ = SCENARIOS[scenario]
    fault = f"{step}:{moment}:{action}:1"
    if verb in ("migrate", "back"):
        code = _single_move(minicloud, servers, journal, verb, args, fault)
    else:
        code = _drain_point(minicloud, servers, journal, verb, args, fault)
    if action == "kill":
        assert code == -9, f"the fault at {point} never fired (exit {code})"
    OUTCOMES[-1] = (point, f"ok (run exit {code})")


def _single_move(minicloud, servers, journal, verb, args, fault):
    (server,) = servers(1, host=SOURCE)
    target = "compute2"
    if verb == "back":
        # `back` needs a move in the journal: make it (no fault), then go back with the fault.
        first = _cli(minicloud, journal, "migrate", server.id, "--to", target, "-f", "json")
        assert first.returncode == 0, first.stdout + first.stderr
        source, target = target, SOURCE
    else:
        source = SOURCE
    before = _services(minicloud)
    cmd = ["migrate", server.id, "--to", target] if verb == "migrate" else ["back", server.id]
    run = _cli(minicloud, journal, *cmd, *args, "--timeout", "120", "-f", "json", fault=fault)
    assert "Traceback" not in run.stderr, run.stderr
    _recover_until_clean(minicloud, journal)
    wait_until(lambda: _settled(minicloud, server.id), timeout=120, what="the server to settle")
    s = minicloud.server(server.id)
    assert s.compute_host in (source, target), f"{s.name} on {s.compute_host}"
    assert s.status != "VERIFY_RESIZE" and not s.task_state
    assert _services(minicloud) == before
    assert not _unsettled_runs(journal)
    _second_recover_is_empty(minicloud, journal)
    return run.returncode


def _drain_point(minicloud, servers, journal, verb, args, fault):
    live = servers(2, host=SOURCE)
    cold = servers(2, host=SOURCE)
    conn = minicloud.conn()
    for s in cold:
        conn.compute.stop_server(s)
    for s in cold:
        wait_until(lambda s=s: minicloud.server(s.id).status == "SHUTOFF", timeout=120, what="SHUTOFF")
    mine = {s.id for s in live + cold}
    before = _services(minicloud)
    caps = ["--max-parallel", "2", "--max-per-host", "2", "-q", "-f", "json"]
    if verb == "undrain":
        drained = _cli(minicloud, journal, "drain", SOURCE, *caps)
        assert drained.returncode == 0, drained.stdout + drained.stderr
        run = _cli(minicloud, journal, "undrain", SOURCE, *args, *caps, fault=fault)
    else:
        run = _cli(minicloud, journal, "drain", SOURCE, *caps, fault=fault)
    assert "Traceback" not in run.stderr, run.stderr
    _cli(minicloud, journal, "recover", "-f", "json")
    if verb == "drain":
        # The README's way on after a drain that stopped: run it again, then undrain.
        again = _cli(minicloud, journal, "drain", SOURCE, *caps)
        assert again.returncode == 0, again.stdout + again.stderr
        assert not mine & {s.id for s in conn.compute.servers(all_projects=True, host=SOURCE)}
        back = _cli(minicloud, journal, "undrain", SOURCE, "--move-back", *caps)
    else:
        back = _cli(minicloud, journal, "undrain", SOURCE, *args, *caps)
    assert back.returncode == 0, back.stdout + back.stderr
    for sid in mine:
        wait_until(lambda sid=sid: _settled(minicloud, sid), timeout=120, what="servers to settle")
        assert minicloud.host_of(sid) == SOURCE
    assert {minicloud.server(s.id).status for s in cold} == {"SHUTOFF"}
    assert _services(minicloud) == before
    assert not _unsettled_runs(journal)
    _second_recover_is_empty(minicloud, journal)
    return run.returncode
