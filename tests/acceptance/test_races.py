"""Runs that race each other, on the minicloud: novamove processes with their own journals
(as on two operators' machines) coordinate only through what the cloud shows them.

The promise under test: each run either does its job or refuses cleanly (one line, a
documented exit code, nothing of its own left behind); a drained host is never re-enabled by
someone else's run; no server lands anywhere but where a run asked for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cloudtest import REPO, wait_until
from novamove.engine.tags import is_drain_tag, reason_run_id

pytestmark = pytest.mark.acceptance


def _start(minicloud, journal, *args):
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud", "NOVAMOVE_JOURNAL": str(journal)}
    return subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _services(minicloud):
    return {s.host: (s.status, s.disabled_reason) for s in
            minicloud.conn().compute.services(binary="nova-compute")}


def _undrain(minicloud, journal, host):
    out = minicloud.cli("undrain", host, "-f", "json", env={"NOVAMOVE_JOURNAL": str(journal)})
    assert out.returncode == 0, out.stdout + out.stderr


def _one_line(err):
    return err.strip().count("\n") == 0 and "Traceback" not in err


def test_isolate_and_drain_started_within_a_second(minicloud, servers, tmp_path):
    (mover,) = servers(1, host="compute1")
    drained = servers(2, host="compute2")
    minicloud.set_fakevirt(live_migration_seconds=2)
    iso = _start(minicloud, tmp_path / "a.sqlite", "migrate", mover.id, "--to", "compute3",
                 "--strategy", "isolate", "--live", "-q", "-f", "json")
    time.sleep(0.5)
    drain = _start(minicloud, tmp_path / "b.sqlite", "drain", "compute2", "-q", "-f", "json")
    iso_code, _, iso_err = _finish(iso)
    drain_code, drain_out, drain_err = _finish(drain)
    assert drain_code == 0, drain_out + drain_err
    # The isolate run either moved its server or refused cleanly; never elsewhere.
    assert iso_code in (0, 4), iso_err
    assert minicloud.host_of(mover.id) == ("compute3" if iso_code == 0 else "compute1")
    if iso_code:
        assert _one_line(iso_err), iso_err
    # The drained host is still disabled, by the drain: the isolate run did not re-enable it.
    status, reason = _services(minicloud)["compute2"]
    assert status == "disabled" and is_drain_tag(reason), reason
    assert all(minicloud.host_of(s.id) != "compute2" for s in drained)
    assert all(_services(minicloud)[h][0] == "enabled" for h in ("compute1", "compute3"))
    _undrain(minicloud, tmp_path / "b.sqlite", "compute2")


def test_two_isolate_runs_within_100_ms(minicloud, servers, tmp_path):
    a, b = servers(2, host="compute1")
    before = _services(minicloud)
    first = _start(minicloud, tmp_path / "a.sqlite", "migrate", a.id, "--to", "compute2",
                   "--strategy", "isolate", "--live", "-q", "-f", "json")
    time.sleep(0.1)
    second = _start(minicloud, tmp_path / "b.sqlite", "migrate", b.id, "--to", "compute3",
                    "--strategy", "isolate", "--live", "-q", "-f", "json")
    results = {a.id: (_finish(first), "compute2"), b.id: (_finish(second), "compute3")}
    for sid, ((code, out, err), target) in results.items():
        # Done, or refused/backed off cleanly; a server is on its target or where it was.
        assert code in (0, 1, 4), out + err
        assert minicloud.host_of(sid) == (target if code == 0 else "compute1"), (code, out, err)
        if code:
            assert _one_line(err), err
    assert _services(minicloud) == before


def test_undrain_from_another_machine_while_the_drain_runs_is_refused(minicloud, servers, tmp_path):
    made = servers(3, host="compute2")
    minicloud.set_fakevirt(live_migration_seconds=3)
    drain = _start(minicloud, tmp_path / "a.sqlite", "drain", "compute2", "--max-parallel", "1",
                   "-q", "-f", "json")
    try:
        wait_until(lambda: any(minicloud.server(s.id).status == "MIGRATING" for s in made), timeout=120,
                   what="the drain's first move")
        early = minicloud.cli("undrain", "compute2", env={"NOVAMOVE_JOURNAL": str(tmp_path / "b.sqlite")})
    finally:
        code, out, err = _finish(drain)
    assert early.returncode == 4 and _one_line(early.stderr), early.stdout + early.stderr
    assert "is draining it" in early.stderr
    assert code == 0, out + err
    assert _services(minicloud)["compute2"][0] == "disabled"
    _undrain(minicloud, tmp_path / "b.sqlite", "compute2")      # after the drain: allowed


def test_two_drains_of_one_host_from_two_journals(minicloud, servers, tmp_path):
    made = servers(3, host="compute2")
    minicloud.set_fakevirt(live_migration_seconds=2)
    first = _start(minicloud, tmp_path / "a.sqlite", "drain", "compute2", "-q", "-f", "json")
    time.sleep(0.2)
    second = _start(minicloud, tmp_path / "b.sqlite", "drain", "compute2", "-q", "-f", "json")
    outcomes = [_finish(first), _finish(second)]
    codes = sorted(code for code, _, _ in outcomes)
    # Exactly one drained the host; the other refused with one line and left nothing behind.
    assert codes == [0, 4], outcomes
    loser = next(o for o in outcomes if o[0] == 4)
    assert _one_line(loser[2]) and "is draining it" in loser[2], loser
    assert all(minicloud.host_of(s.id) != "compute2" for s in made)
    status, reason = _services(minicloud)["compute2"]
    assert status == "disabled" and is_drain_tag(reason) and reason_run_id(reason)
    _undrain(minicloud, tmp_path / "a.sqlite", "compute2")
