"""The crash-point matrix: every journaled step x {kill, error, timeout} x {before, after} the
API call, for native and isolate moves (cold and live), `back`, a drain, an undrain with
move-back, a maintenance campaign (`maintain`) and an evacuation of a dead host (`evacuate`,
then `unfence`), on the minicloud (NOVAMOVE_FAULT, see novamove/engine/faults.py).

After each fault: `novamove recover` (and, for drains, the rerun the README documents), then
the invariants: every compute service exactly as before (status and reason), every server on
its source or its target, settled (no task state, not VERIFY_RESIZE), the journal without an
unsettled run, and a second `recover` with nothing to do. The fleet scenarios take the way on
their docs give (docs/maintain.md: `recover`, then `maintain --resume RUN`, with `--rerun-hook`
when refused for a hook whose end was not seen; docs/evacuate.md: `recover`, the same
`evacuate` again, the compute started, `unfence` (run again)) and check their own ends: the
campaign ended ok with the host back as it was; every server evacuated, settled, none in ERROR,
and after unfence the host's service exactly as before (enabled, not forced down, up).

`make test` runs a representative subset (FAULT_SUBSET); `make faults` runs all of it
(NOVAMOVE_FAULT_MATRIX=full). Each point's outcome is printed in a table at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
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
    # compute1 (1 ACTIVE, 1 SHUTOFF, 1 tagged novamove:maintenance=stop) maintained with a hook
    "maintain": ("maintain", [], ["maintain.disable", "drain.move", "maintain.stop", "maintain.hook",
                                  "maintain.start", "maintain.enable",
                                  # reads (NOVAMOVE_FAULT cloud.VERB): the first call of each kind
                                  "cloud.list_compute_services", "cloud.list_servers_on_host",
                                  "cloud.get_server", "cloud.list_migrations_changed_since"]),
    # compute1 (1 ACTIVE, 1 SHUTOFF) dead: evacuated with a fence command, then unfenced
    "evacuate": ("evacuate", [], ["evacuate.fence", "evacuate.force-down", "evacuate.disable",
                                  "evacuate.server", "unfence.force-up", "unfence.enable",
                                  # reads of the evacuation run
                                  "cloud.compute_hosts", "cloud.compute_service_heartbeat",
                                  "cloud.list_evacuations", "cloud.get_server"]),
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
    ("maintain", "maintain.hook", "kill", "after"),
    ("maintain", "maintain.enable", "timeout", "before"),
    ("evacuate", "evacuate.server", "kill", "after"),
    ("evacuate", "unfence.enable", "error", "before"),
    ("maintain", "cloud.list_compute_services", "timeout", "before"),
    ("evacuate", "cloud.get_server", "error", "after"),
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
        # Each fault that fires leaves a line here: the point proves its fault fired, also
        # when novamove absorbed it (an error retried, a timeout read back) and exited 0.
        env["NOVAMOVE_FAULT_LOG"] = str(journal.parent / "faults.log")
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
    elif verb == "maintain":
        code = _maintain_point(minicloud, servers, journal, step, fault, tmp_path)
    elif verb == "evacuate":
        code = _evacuate_point(minicloud, servers, journal, step, fault, tmp_path)
    else:
        code = _drain_point(minicloud, servers, journal, verb, args, fault)
    if action == "kill":
        assert code == -9, f"the fault at {point} never fired (exit {code})"
    fired = (tmp_path / "faults.log").read_text() if (tmp_path / "faults.log").exists() else ""
    assert f"{step}:{moment}:{action}" in fired, f"the fault at {point} never fired (exit {code})"
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


# -- maintain ----------------------------------------------------------------------------------

STOP_TAG = "novamove:maintenance=stop"


def _maintain_point(minicloud, servers, journal, step, fault, tmp_path):
    """A campaign over compute1 (one ACTIVE, one SHUTOFF, one stop-tagged server) with a hook
    that records its run, stopped at `fault`; then the way on docs/maintain.md gives."""
    from novamove.engine.campaign import campaign_runs, read_campaign
    conn = minicloud.conn()
    live, cold, stop = servers(3, host=SOURCE, prefix="fm-mt")
    conn.compute.stop_server(cold)
    wait_until(lambda: _settled(minicloud, cold.id) and minicloud.server(cold.id).status == "SHUTOFF",
               timeout=120, what="SHUTOFF")
    conn.compute.put(f"/servers/{stop.id}/tags/{STOP_TAG}", microversion="2.26")
    before = _services(minicloud)
    record = tmp_path / "hook.record"
    hook = f'echo "$NOVAMOVE_HOST $NOVAMOVE_RUN_ID" >> {shlex.quote(str(record))}'
    opts = ["--hook", hook, "--gate", "heartbeat", "--hook-timeout", "60", "--gate-timeout", "60", "--timeout", "120",
            "--max-parallel", "2", "-q", "-f", "json"]
    run = _cli(minicloud, journal, "maintain", SOURCE, *opts, fault=fault)
    faulted = run.returncode
    assert "Traceback" not in run.stderr, run.stderr
    rec = _cli(minicloud, journal, "recover", "-f", "json")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    if not campaign_runs(Journal(journal)):
        # The fault came before the campaign's run began (a read of its plan): nothing was
        # changed and nothing journaled, so the way on is to run it again.
        assert faulted != 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert _services(minicloud) == before
        assert all(minicloud.host_of(s.id) == SOURCE for s in (live, cold, stop))
        assert minicloud.server(live.id).status == "ACTIVE" and minicloud.server(cold.id).status == "SHUTOFF"
        run = _cli(minicloud, journal, "maintain", SOURCE, *opts)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [campaign] = campaign_runs(Journal(journal))
    run_id = campaign["id"]
    if campaign["status"] != "ok":
        # docs/maintain.md: a stopped campaign goes on with `maintain --resume RUN`; a hook whose
        # end the stopped run did not see makes it refuse until told (--rerun-hook).
        resume = _cli(minicloud, journal, "maintain", "--resume", run_id, "-q", "-f", "json")
        if resume.returncode == 4 and "--rerun-hook" in resume.stderr:
            _, _, prior = read_campaign(Journal(journal), run_id)
            assert prior.get(SOURCE, {}).get("hook") == "running", (resume.stderr, prior)
            resume = _cli(minicloud, journal, "maintain", "--resume", run_id, "--rerun-hook", "-q", "-f", "json")
        assert resume.returncode == 0, resume.stdout[-3000:] + resume.stderr[-3000:]
    else:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # The campaign ended, compute1 serviced: its hook ran (and ended) under this run.
    assert Journal(journal).get_run(run_id)["status"] == "ok"
    _, _, hosts = read_campaign(Journal(journal), run_id)
    assert hosts[SOURCE].get("outcome") == "done" and hosts[SOURCE].get("hook") == "done", hosts
    assert f"{SOURCE} {run_id}" in record.read_text().splitlines()
    for s in (live, cold, stop):
        wait_until(lambda s=s: _settled(minicloud, s.id), timeout=120, what="servers to settle")
    assert minicloud.server(cold.id).status == "SHUTOFF"
    assert minicloud.server(live.id).status == "ACTIVE"
    stopped = minicloud.server(stop.id)
    assert stopped.compute_host == SOURCE and stopped.status == "ACTIVE", (stopped.compute_host, stopped.status)
    hosts_now = {minicloud.host_of(s.id) for s in (live, cold)}
    assert SOURCE not in hosts_now, hosts_now          # drained, no --move-back
    assert _services(minicloud) == before
    assert not _unsettled_runs(journal)
    _second_recover_is_empty(minicloud, journal)
    return faulted


# -- evacuate / unfence ------------------------------------------------------------------------

def _compute_service(conn, host):
    [svc] = list(conn.compute.services(binary="nova-compute", host=host))
    return svc


def _launch_compute(minicloud, host):
    """Start a compute's process. The minicloud's start waits until Nova shows it up, which never
    happens while it is forced down: then only launch it (as test_evacuate.py does)."""
    if not _compute_service(minicloud.conn(), host).is_forced_down:
        minicloud.manager.start_compute(host)
        return
    from novamove.minicloud import procs
    from novamove.minicloud.manager import _Starter
    m = minicloud.manager
    name = m.compute_component(host)
    if name not in procs.running(m.state / "run", m.state):
        _Starter(m.layout, m._saved_venv(), m.log).launch(name)


def _evacuations_done(conn, ids):
    """Evacuation records of these servers still `done` (compute1 has not cleaned them up)."""
    return [m for m in conn.compute.migrations(migration_type="evacuation", source_compute=SOURCE)
            if m.server_id in ids and m.status in ("accepted", "pre-migrating", "done")]


def _bring_compute1_back(minicloud, ids):
    """After a failed point: compute1 running, its evacuations cleaned up, not forced down,
    enabled (before the servers are deleted, so no record of a deleted server stays `done`)."""
    from novamove.engine.evacuate import is_our_evacuate_reason
    conn = minicloud.conn()
    _launch_compute(minicloud, SOURCE)
    try:
        wait_until(lambda: not _evacuations_done(conn, ids), timeout=120, what="compute1 to clean up")
    finally:
        svc = _compute_service(conn, SOURCE)
        if svc.is_forced_down:
            conn.compute.put(f"/os-services/{svc.id}", json={"forced_down": False}, microversion="2.53")
        if svc.status == "disabled" and is_our_evacuate_reason(svc.disabled_reason):
            conn.compute.enable_service(svc)


UNFENCE_READS = {"cloud.compute_service_heartbeat"}


def _evacuate_point(minicloud, servers, journal, step, fault, tmp_path):
    vms = servers(2, host=SOURCE, prefix="fm-ev")
    ids = {v.id for v in vms}
    try:
        return _evacuate_then_unfence(minicloud, vms, journal, step, fault, tmp_path)
    except BaseException:
        _bring_compute1_back(minicloud, ids)
        raise


def _evacuate_then_unfence(minicloud, vms, journal, step, fault, tmp_path):
    """compute1 dies; `evacuate --fence-cmd` (faulted at an evacuate.* step), `recover`, the same
    evacuate again; compute1 started again; `unfence` (faulted at an unfence.* step), `recover`,
    unfence again (docs/evacuate.md)."""
    conn = minicloud.conn()
    live, cold = vms
    conn.compute.stop_server(cold)
    wait_until(lambda: _settled(minicloud, cold.id) and minicloud.server(cold.id).status == "SHUTOFF",
               timeout=120, what="SHUTOFF")
    status = {v.id: minicloud.server(v.id).status for v in vms}
    before = minicloud.services()
    minicloud.manager.stop_compute(SOURCE, kill=True)          # the host "dies"
    minicloud.wait_service_state(SOURCE, "down")
    fenced = tmp_path / "fence.record"
    fence = ["--fence-cmd", f'echo "$NOVAMOVE_HOST" >> {shlex.quote(str(fenced))}']
    # The heartbeat is read by evacuate only when Nova does not show the compute down (here it
    # does: the compute was killed and seen down), and by unfence to see it report again: that
    # read is faulted in the unfence.
    in_unfence = step.startswith("unfence.") or step in UNFENCE_READS
    evac_fault = None if in_unfence else fault
    run = _cli(minicloud, journal, "evacuate", SOURCE, *fence, "-f", "json", fault=evac_fault)
    assert "Traceback" not in run.stderr, run.stderr
    rec = _cli(minicloud, journal, "recover", "-f", "json")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    again = _cli(minicloud, journal, "evacuate", SOURCE, *fence, "-f", "json")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for v in vms:
        wait_until(lambda v=v: _settled(minicloud, v.id), timeout=120, what="servers to settle")
        s = minicloud.server(v.id)
        assert s.compute_host not in (SOURCE, None) and s.status == status[v.id], (s.name, s.compute_host, s.status)
    assert not [s for s in conn.compute.servers(all_projects=True) if s.id in {v.id for v in vms}
                and s.status == "ERROR"]
    assert not _unsettled_runs(journal)
    # The repair: compute1 runs again (still forced down) and cleans up the evacuated copies.
    _launch_compute(minicloud, SOURCE)
    wait_until(lambda: not _evacuations_done(conn, {v.id for v in vms}), timeout=180,
               what="compute1 to clean up its evacuations")
    unfence_fault = fault if in_unfence else None
    first = _cli(minicloud, journal, "unfence", SOURCE, "--wait", "60", "-f", "json", fault=unfence_fault)
    assert "Traceback" not in first.stderr, first.stderr
    rec = _cli(minicloud, journal, "recover", "-f", "json")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    second = _cli(minicloud, journal, "unfence", SOURCE, "--wait", "60", "-f", "json")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    minicloud.wait_service_state(SOURCE, "up")
    assert minicloud.services() == before
    for v in vms:
        s = minicloud.server(v.id)
        assert s.compute_host != SOURCE and s.status == status[v.id] and not s.task_state
    assert not _unsettled_runs(journal)
    _second_recover_is_empty(minicloud, journal)
    return (run if evac_fault else first).returncode
