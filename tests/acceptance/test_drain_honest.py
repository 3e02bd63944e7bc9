"""Honest drains on the minicloud: a drain is done when the host, read back, is empty.

Each test races the drain against something an operator meets in real life: another
operator's isolation window, a build landing on the host as it is disabled, a tenant deleting
a server, a server Nova cannot move, an earlier drain already closed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from cloudtest import REPO, wait_until

pytestmark = pytest.mark.acceptance

SOURCE = "compute2"


def _popen(minicloud, journal, *args):
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud", "NOVAMOVE_JOURNAL": str(journal)}
    return subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cli(minicloud, journal, *args):
    return minicloud.cli(*args, env={"NOVAMOVE_JOURNAL": str(journal)})


def _on_host(minicloud, host):
    return {s.id for s in minicloud.conn().compute.servers(all_projects=True, host=host)}


def _report(proc_or_out):
    out = proc_or_out if isinstance(proc_or_out, str) else proc_or_out.stdout
    return json.loads(out)


def _undrain(minicloud, journal, host=SOURCE):
    out = _cli(minicloud, journal, "undrain", host, "-f", "json")
    assert out.returncode == 0, out.stdout + out.stderr


def _service(minicloud, host):
    return next(s for s in minicloud.conn().compute.services(binary="nova-compute") if s.host == host)


def _set_service(minicloud, host, **body):
    """What another operator does by hand: PUT /os-services/{id} (2.53)."""
    svc = _service(minicloud, host)
    r = minicloud.conn().compute.put(f"/os-services/{svc.id}", json=body, microversion="2.53")
    assert r.status_code == 200, r.text


def test_a_destination_disabled_for_a_moment_is_waited_for_not_skipped(minicloud, servers, tmp_path):
    """Seen before the fix: '3 moved, 2 skipped (destination now disabled)', exit 0, 2 left."""
    journal = tmp_path / "journal.sqlite"
    made = servers(4, host=SOURCE)
    minicloud.set_fakevirt(live_migration_seconds=2)
    others = [h for h in minicloud.computes if h != SOURCE]
    proc = _popen(minicloud, journal, "drain", SOURCE, "--max-parallel", "1", "--max-per-host", "1",
                  "-f", "json", "-q")
    try:
        # Once the first move runs, another operator disables every other compute for 4 s.
        wait_until(lambda: any(minicloud.server(s.id).status == "MIGRATING" for s in made),
                   timeout=120, what="the first live migration")
        for h in others:
            _set_service(minicloud, h, status="disabled", disabled_reason="other operator: window")
        time.sleep(4)
    finally:
        for h in others:
            _set_service(minicloud, h, status="enabled")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    report = _report(out)
    assert sum(r["result"] == "moved" for r in report["results"]) >= 4, report["summary"]
    assert not ({s.id for s in made} & _on_host(minicloud, SOURCE))
    assert report["left"] == [] and "empty" in report["summary"]
    _undrain(minicloud, journal)


def test_servers_still_building_on_the_host_when_the_drain_starts_are_moved_too(minicloud, servers,
                                                                                  tmp_path):
    """Builds scheduled onto the host just before the drain disabled it: the first look at the
    host finds them in BUILD (or not at all). Before the fix they were skipped for good and the
    drain exited 0 with them on the host. (Nova 34 refuses new builds on a disabled compute,
    forced host or not: COMPUTE_STATUS_DISABLED, so "just before" is the race that matters.)"""
    journal = tmp_path / "journal.sqlite"
    first = servers(2, host=SOURCE)
    minicloud.set_fakevirt(live_migration_seconds=3)
    late = servers(2, host=SOURCE, wait=False)
    proc = _popen(minicloud, journal, "drain", SOURCE, "--max-parallel", "1", "--max-per-host", "1",
                  "-f", "json", "-q")
    try:
        wait_until(lambda: all(minicloud.server(s.id).status != "BUILD" for s in late), timeout=120,
                   what="the late builds")
    finally:
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    report = _report(out)
    moved = {r["server_id"] for r in report["results"] if r["result"] == "moved"}
    assert {s.id for s in first} | {s.id for s in late} <= moved, report["summary"]
    assert not _on_host(minicloud, SOURCE) & ({s.id for s in first} | {s.id for s in late})
    _undrain(minicloud, journal)


def test_a_server_deleted_by_its_owner_mid_drain_is_gone_not_a_failure(minicloud, servers, tmp_path):
    journal = tmp_path / "journal.sqlite"
    made = servers(3, host=SOURCE)
    minicloud.set_fakevirt(live_migration_seconds=3)
    proc = _popen(minicloud, journal, "drain", SOURCE, "--max-parallel", "1", "--max-per-host", "1",
                  "--order", "name", "-f", "json", "-q")
    try:
        wait_until(lambda: minicloud.server(made[0].id).status == "MIGRATING", timeout=120,
                   what="the first move")
        minicloud.conn().compute.delete_server(made[2].id)     # its turn has not come yet
    finally:
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    by = {r["server_id"]: r for r in _report(out)["results"]}
    assert by[made[2].id]["result"] == "gone"
    assert by[made[0].id]["result"] == by[made[1].id]["result"] == "moved"
    _undrain(minicloud, journal)


def test_a_server_nova_cannot_move_leaves_the_drain_incomplete_exit_8(minicloud, servers, tmp_path):
    journal = tmp_path / "journal.sqlite"
    ok, broken = servers(2, host=SOURCE)
    conn = minicloud.conn()
    conn.compute.reset_server_state(broken, "error")
    out = _cli(minicloud, journal, "drain", SOURCE, "-f", "json")
    assert out.returncode == 8, out.stdout + out.stderr
    report = _report(out.stdout)
    assert not report["ok"]
    left = {x["server_id"]: x for x in report["left"]}
    assert broken.id in left and "ERROR" in left[broken.id]["reason"]
    assert minicloud.host_of(ok.id) != SOURCE
    assert f"still on {SOURCE}" in report["summary"]
    conn.compute.reset_server_state(broken, "active")
    _undrain(minicloud, journal)


def test_move_back_returns_only_the_servers_of_the_drain_being_undone(minicloud, servers, tmp_path):
    """Seen before the fix: a server of an earlier drain, closed with a plain undrain, was pulled
    back by a later drain's undrain --move-back."""
    journal = tmp_path / "journal.sqlite"
    (early,) = servers(1, host=SOURCE)
    assert _cli(minicloud, journal, "drain", SOURCE, "-f", "json").returncode == 0
    _undrain(minicloud, journal)                                  # drain A closed, no move-back
    early_home = minicloud.host_of(early.id)
    (later,) = servers(1, host=SOURCE)
    assert _cli(minicloud, journal, "drain", SOURCE, "-f", "json").returncode == 0
    back = _cli(minicloud, journal, "undrain", SOURCE, "--move-back", "-f", "json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert [r["server_id"] for r in _report(back.stdout)["results"]] == [later.id]
    assert minicloud.host_of(later.id) == SOURCE
    assert minicloud.host_of(early.id) == early_home != SOURCE
    assert _service(minicloud, SOURCE).status == "enabled"
