"""Drains under the conditions of a real cloud, on the minicloud: pages smaller than the host
(Nova `[api] max_limit`), tokens that expire during the drain, and the control plane
restarting under it. Each ends with the host empty, no server left mid-move or awaiting
confirmation, no compute left disabled but the drained one, and an exit code that tells the
truth; where a drain could not finish, a rerun does.

`make test` runs paging and a nova-api restart; `make faults` (with NOVAMOVE_FAULT_MATRIX=full)
also lets a token expire during a drain (over a minute of a slow drain and a keystone
reconfigured), restarts RabbitMQ, nova-conductor and keystone, and stops the scheduler during
an isolation window.
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

FULL = os.environ.get("NOVAMOVE_FAULT_MATRIX") == "full"
SOURCE = "compute2"


def _cli(minicloud, journal, *args, timeout=900):
    return minicloud.cli(*args, env={"NOVAMOVE_JOURNAL": str(journal)}, timeout=timeout)


def _start(minicloud, journal, *args):
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud", "NOVAMOVE_JOURNAL": str(journal)}
    return subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _on(minicloud, host):
    return {s.id for s in minicloud.conn().compute.servers(all_projects=True, host=host)}


def _settled_everywhere(minicloud, ids):
    for sid in ids:
        s = minicloud.server(sid)
        assert not s.task_state and s.status in ("ACTIVE", "SHUTOFF"), (s.name, s.status, s.task_state)


def _undrain(minicloud, journal):
    out = _cli(minicloud, journal, "undrain", SOURCE, "-f", "json")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_host_holding_more_servers_than_a_page_is_emptied_and_every_migration_listed(
        minicloud, servers, tmp_path):
    """Before the fix the per-host listing stopped at the first page shorter than 1000: with
    max_limit 500 a drain saw 500 of 1200 servers and exited 0."""
    journal = tmp_path / "journal.sqlite"
    with minicloud.reconfigured(max_limit=5):
        made = servers(12, host=SOURCE)
        out = _cli(minicloud, journal, "drain", SOURCE, "--max-parallel", "4", "--max-per-host", "4",
                   "-q", "-f", "json")
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert sum(r["result"] == "moved" for r in report["results"]) == 12
        assert not _on(minicloud, SOURCE) & {s.id for s in made}
        # Every one of the 12 migration records, though a page holds 5.
        listed = _cli(minicloud, journal, "migrations", "--host", SOURCE, "-f", "json")
        assert listed.returncode == 0, listed.stderr
        ids = {m.get("server_id") or m.get("instance_uuid") for m in json.loads(listed.stdout)}
        assert {s.id for s in made} <= ids
        _undrain(minicloud, journal)


# Only under `make faults` (over a minute of a slow drain): defined there, not skipped here (in
# CI a skip counts as a failure).
if FULL:
    def test_a_token_that_expires_during_the_drain_is_renewed(minicloud, servers, tmp_path):
        journal = tmp_path / "journal.sqlite"
        with minicloud.reconfigured(token_expiration=40):
            made = servers(4, host=SOURCE)
            minicloud.set_fakevirt(live_migration_seconds=15)
            started = time.monotonic()
            out = _cli(minicloud, journal, "drain", SOURCE, "--max-parallel", "1", "--max-per-host", "1",
                       "-q", "-f", "json")
            took = time.monotonic() - started
            assert out.returncode == 0, out.stdout + out.stderr
            assert took > 45, f"the drain took {took:.0f} s, not longer than a token lives"
            assert not _on(minicloud, SOURCE) & {s.id for s in made}
            _settled_everywhere(minicloud, [s.id for s in made])
            minicloud.set_fakevirt(live_migration_seconds=0.5)
            _undrain(minicloud, journal)


RESTARTS = ["nova-api"] + (["rabbitmq", "nova-conductor", "keystone"] if FULL else [])


@pytest.mark.parametrize("component", RESTARTS)
def test_the_control_plane_restarting_under_a_drain(minicloud, servers, tmp_path, component):
    journal = tmp_path / "journal.sqlite"
    made = servers(8, host=SOURCE)
    minicloud.set_fakevirt(live_migration_seconds=3)
    proc = _start(minicloud, journal, "drain", SOURCE, "--max-parallel", "2", "--max-per-host", "2",
                  "-q", "-f", "json")
    try:
        wait_until(lambda: sum(minicloud.server(s.id).compute_host != SOURCE for s in made) >= 2,
                   timeout=300, what="two servers moved")
        minicloud.restart_component(component)
    finally:
        out, err = proc.communicate(timeout=900)
    minicloud.set_fakevirt(live_migration_seconds=0.5)
    ids = [s.id for s in made]
    if proc.returncode != 0:
        # The drain said it did not finish (honestly); the documented way on is to rerun it.
        assert "Traceback" not in err, err
        report = json.loads(out)
        for r in report["results"]:
            if "recorded no migration" in r["detail"]:
                # A restart can lose a move request inside Nova (no record, the server stuck in
                # task state migrating): novamove says so and what clears it; do that, as the
                # operator would.
                assert r["result"] == "failed" and "openstack server set --state active" in r["detail"], r
                minicloud.conn().compute.reset_server_state(r["server_id"], "active")
        again = _cli(minicloud, journal, "drain", SOURCE, "-q", "-f", "json")
        assert again.returncode == 0, again.stdout + again.stderr
    else:
        assert json.loads(out)["left"] == []
    wait_until(lambda: not (_on(minicloud, SOURCE) & set(ids)), timeout=120, what="the host empty")
    _settled_everywhere(minicloud, ids)
    _undrain(minicloud, journal)
    assert all(v[0] == "enabled" for v in minicloud.services().values())


# Only under `make faults`: defined there, not skipped here (in CI a skip counts as a failure).
if FULL:
    def test_a_scheduler_stopped_during_an_isolation_window(minicloud, servers, tmp_path):
        """The window closes at its own deadline (--schedule-timeout), the computes come back,
        and once the scheduler is back the move is judged like any other."""
        journal = tmp_path / "journal.sqlite"
        (server,) = servers(1, host="compute1")
        before = minicloud.services()
        minicloud.manager.stop_component("nova-scheduler")
        try:
            proc = _start(minicloud, journal, "migrate", server.id, "--to", "compute3", "--strategy", "isolate",
                          "--live", "--schedule-timeout", "10", "--timeout", "300", "-q", "-f", "json")
            wait_until(lambda: any(v[0] == "disabled" for v in minicloud.services().values()), timeout=60,
                       what="the isolation window")
            wait_until(lambda: minicloud.services() == before, timeout=60,
                       what="the window to close at its deadline, scheduler still down")
        finally:
            minicloud.manager.start_component("nova-scheduler")
        out, err = proc.communicate(timeout=600)
        assert "Traceback" not in err, err
        rec = _cli(minicloud, journal, "recover", "-f", "json")
        assert rec.returncode == 0, rec.stderr
        wait_until(lambda: not minicloud.server(server.id).task_state, timeout=300, what="the server settled")
        assert minicloud.services() == before
        host = minicloud.host_of(server.id)
        if host not in ("compute1", "compute3"):
            # The request waited for the scheduler past the window's deadline, and the scheduler
            # then chose freely (seen once under load): docs/reference.md says a live move Nova
            # puts on another host is a failure (exit 1) reported with the host it is on.
            assert proc.returncode == 1, (proc.returncode, out, err)
            assert host in out + err, out + err
