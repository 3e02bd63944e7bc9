"""`novamove doctor` against the real minicloud: each drift class made by its realistic cause
(a move left unconfirmed, a compute killed mid-migration, a server deleted during a move, a
compute forced down that keeps reporting, a drain killed with its host disabled), detected by
`novamove doctor -f json`, repaired by `novamove doctor --fix [CLASS]` where the class is
repairable (else by the operator's command the finding names), and the cloud read back clean
(doctor exits 0). Where no API can make the drift, the test writes Nova's database directly and
says so. And: a scan while 4 live and 2 cold moves are in flight finds nothing.

The test minicloud's computes report every 2 s (conftest TEST_OPTIONS): doctor's settle time
and heartbeat gap are shortened to match (NOVAMOVE_DOCTOR_SETTLE, NOVAMOVE_DOCTOR_HEARTBEAT_GAP;
docs/doctor.md), so a finding is judged in seconds, not the 120 s a real cloud gets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cloudtest import REPO, wait_until

pytestmark = pytest.mark.acceptance

# Every doctor here: judged after 3 s (a report interval is 2 s), two heartbeat reads 5 s apart.
DOCTOR_ENV = {"NOVAMOVE_DOCTOR_SETTLE": "3", "NOVAMOVE_DOCTOR_HEARTBEAT_GAP": "5"}


def doctor(mc, *args: str) -> tuple[int, list[dict]]:
    """`novamove doctor -f json ARGS`: (exit code, rows)."""
    proc = mc.cli("doctor", "-f", "json", *args, env=DOCTOR_ENV)
    assert proc.returncode in (0, 10), f"doctor {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    rows = json.loads(proc.stdout) if proc.stdout.strip() else []
    for row in rows:      # the stable keys of docs/doctor.md
        assert {"class", "server_id", "host", "detail", "evidence", "fix", "repairable", "safe",
                "level"} <= set(row), row
    return proc.returncode, rows


def classes(rows: list[dict]) -> set[str]:
    return {r["class"] for r in rows}


def about(rows: list[dict], klass: str, target: str) -> list[dict]:
    return [r for r in rows if r["class"] == klass
            and target in (r["server_id"], r["host"], r["evidence"].get("consumer"))]


def assert_clean(mc) -> None:
    """The cloud read back clean: doctor (every class, every age) exits 0, no finding."""
    code, rows = doctor(mc, "--older-than", "0")
    assert code == 0 and rows == [], json.dumps(rows, indent=1)


def sql(mc, database: str, statement: str) -> str:
    """Nova's database, written directly (only where no API can make or mend the drift)."""
    lay = mc.manager.layout
    proc = subprocess.run(["mariadb", "--no-defaults", f"--socket={lay.mysql_socket}", "-uroot", "-N",
                           "-B", database, "-e", statement], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def migration_of(mc, server_id: str):
    rows = [m for m in mc.conn().compute.migrations() if m.server_id == server_id]
    return max(rows, key=lambda m: m.id) if rows else None


def live_migrate(mc, server, dest: str) -> None:
    compute = mc.conn().compute
    compute.live_migrate_server(server, host=dest, block_migration="auto")


def wait_migration(mc, server_id: str, statuses: set[str], timeout: float = 60):
    wait_until(lambda: (m := migration_of(mc, server_id)) is not None and m.status in statuses,
               timeout=timeout, interval=0.5, what=f"a migration of {server_id} in {statuses}")
    return migration_of(mc, server_id)


# ------------------------------------------------------------------------- servers and moves

def test_forgotten_verify_resize_found_and_confirmed(minicloud, servers):
    """A cold move left unconfirmed: verify-resize-forgotten with --older-than 0 (one-way:
    only `--fix verify-resize-forgotten` confirms it; the default --fix leaves it)."""
    src, dst = minicloud.computes[0], minicloud.computes[1]
    server = servers(1, host=src)[0]
    compute = minicloud.conn().compute
    compute.default_microversion = "2.56"
    try:
        compute.migrate_server(server, host=dst)
    finally:
        compute.default_microversion = None
    compute.wait_for_server(server, status="VERIFY_RESIZE", wait=120, interval=1)

    code, rows = doctor(minicloud, "--older-than", "0")
    assert code == 10 and classes(rows) == {"verify-resize-forgotten"}, rows
    (row,) = rows
    assert row["server_id"] == server.id and row["host"] == dst and row["repairable"] and not row["safe"]
    assert row["fix"] == f"openstack server resize confirm {server.id}"
    assert row["evidence"]["source"] == src and row["evidence"]["dest"] == dst
    # The default threshold (3600 s) does not flag a move minutes old.
    assert doctor(minicloud) == (0, [])
    # --fix with no class repairs only the safe classes: the server is untouched.
    code, _ = doctor(minicloud, "--older-than", "0", "--fix")
    assert code == 10 and minicloud.server(server.id).status == "VERIFY_RESIZE"

    code, rows = doctor(minicloud, "--older-than", "0", "--fix", "verify-resize-forgotten")
    assert code == 0 and [r["repair"] for r in rows] == ["fixed"], rows
    s = minicloud.server(server.id)
    assert s.status == "ACTIVE" and s.compute_host == dst
    assert_clean(minicloud)


def test_compute_killed_mid_live_migration(minicloud, servers):
    """The source's nova-compute is SIGKILLed while a live migration runs. While it is down:
    compute-down-holding-servers (nobody evacuated it). Once it is back, Nova's start-up resets
    the task state and errors the migration, but nobody gives Placement back: the migration's
    consumer still holds the source (migration-allocation-leaked, safe: `--fix` deletes it with
    the consumer generation) and the server's own allocation sits on the destination it never
    reached (server-allocation-elsewhere, operator: the nova-manage command the finding names)."""
    src, dst = minicloud.computes[0], minicloud.computes[1]
    server = servers(1, host=src)[0]
    minicloud.set_fakevirt(live_migration_seconds=600)
    live_migrate(minicloud, server, dst)
    mig = wait_migration(minicloud, server.id, {"running"})
    minicloud.stop_compute(src, kill=True)
    minicloud.wait_service_state(src, "down")

    code, rows = doctor(minicloud, "--older-than", "0")
    assert code == 10 and classes(rows) == {"compute-down-holding-servers"}, rows
    assert rows[0]["host"] == src and not rows[0]["repairable"]

    minicloud.set_fakevirt(live_migration_seconds=0.5)
    minicloud.start_compute(src)
    wait_until(lambda: not minicloud.server(server.id).task_state, timeout=60,
               what="nova-compute to reset the stuck task state at start")
    ended = wait_migration(minicloud, server.id, {"error", "failed"})
    assert ended.id == mig.id
    time.sleep(4)                                    # older than the settle time
    code, rows = doctor(minicloud, "--older-than", "0")
    assert code == 10 and classes(rows) == {"migration-allocation-leaked", "server-allocation-elsewhere"}, rows
    (leaked,) = about(rows, "migration-allocation-leaked", server.id)
    assert leaked["safe"] and leaked["evidence"]["providers"] == [f"{src}.fake.local"], leaked
    assert leaked["evidence"]["migration_id"] == str(mig.id)
    (elsewhere,) = about(rows, "server-allocation-elsewhere", server.id)
    assert not elsewhere["repairable"] and elsewhere["evidence"]["providers"] == [f"{dst}.fake.local"]
    assert f"heal_allocations --instance {server.id} --force" in elsewhere["fix"]

    code, rows = doctor(minicloud, "--older-than", "0", "--fix")
    assert code == 10, rows                          # the operator's class is left
    assert [r["repair"] for r in about(rows, "migration-allocation-leaked", server.id)] == ["fixed"], rows
    assert [r["left"] for r in about(rows, "server-allocation-elsewhere", server.id)] == [True], rows
    # The operator's repair, as the finding names it.
    healed = nova_manage(minicloud, "placement", "heal_allocations", "--instance", server.id, "--force")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert_clean(minicloud)
    assert minicloud.host_of(server.id) == src


def test_migration_record_stuck(minicloud, servers):
    """migration-stuck: no API (and no crash the minicloud can stage: a restarted nova-compute
    errors its own running migrations) leaves a record `running` while its server is still, so
    the test writes Nova's database: a completed live migration's record back to `running`.
    The repair is the operator's UPDATE the finding names (made here), never doctor's."""
    src, dst = minicloud.computes[1], minicloud.computes[2]
    server = servers(1, host=src)[0]
    live_migrate(minicloud, server, dst)
    done = wait_migration(minicloud, server.id, {"completed"})
    sql(minicloud, "nova", f"UPDATE migrations SET status='running' WHERE id={int(done.id)}")
    time.sleep(4)
    code, rows = doctor(minicloud, "--older-than", "0")
    assert code == 10 and classes(rows) == {"migration-stuck"}, rows
    (row,) = rows
    assert row["server_id"] == server.id and row["evidence"]["migration_id"] == str(done.id)
    assert not row["repairable"] and f"WHERE id={done.id}" in row["fix"]
    # the default threshold: a record minutes old is not stuck yet
    assert doctor(minicloud) == (0, [])
    refused = minicloud.cli("doctor", "--fix", "migration-stuck", env=DOCTOR_ENV)
    assert refused.returncode == 2 and "operator" in refused.stderr, refused.stderr
    sql(minicloud, "nova", f"UPDATE migrations SET status='completed' WHERE id={int(done.id)}")
    assert_clean(minicloud)


def _heal_leftovers(mc, rows: list[dict]) -> None:
    """Operator classes left after a --fix: run the command the finding names (nova-manage)."""
    for r in rows:
        if r["class"] in ("server-allocation-elsewhere", "server-allocation-missing") and r.get("left", True):
            nova_manage(mc, "placement", "heal_allocations", "--instance", r["server_id"],
                        *(["--force"] if "--force" in r["fix"] else []))


def nova_manage(mc, *args: str) -> subprocess.CompletedProcess:
    """nova-manage of the minicloud's OpenStack venv, with its nova.conf."""
    exe = mc.manager._saved_venv() / "bin" / "nova-manage"
    conf = mc.manager.layout.etc / "nova" / "nova.conf"
    return subprocess.run([exe, "--config-file", str(conf), *args], capture_output=True, text=True,
                          timeout=120)
