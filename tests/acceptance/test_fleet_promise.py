"""`novamove maintain` keeps the project's promise on the minicloud (issue 17), on 3 computes.

1. One campaign over compute1 and compute2 at compute API 2.70 (servers show no groups there:
   membership comes from the group listing): a server deleted by its owner while compute1 drains
   is "gone"; compute1's hook deletes a stop-tagged server it powered off and a server of
   compute2 (not drained yet); a stop-tagged server already SHUTOFF stays SHUTOFF; two
   stop-tagged members of an anti-affinity group (one on each host) are never off at once
   (--group-budget 1, --max-hosts 2). The campaign exits 0: the rest is honest.
2. nova-api stopped (~15-20 s: as long as its start takes) during a campaign's drain, and again during its gate: the campaign
   rides both out and ends honest (exit 0, the host back, every server moved once).
3. SIGHUP (a closed terminal: its pipes gone too) during a drain stops the campaign as SIGTERM
   does: the host is given back, the run is "interrupted", nothing is left disabled. Then two
   `maintain --resume RUN` from two terminals: the second is refused in one line while the
   first runs; the first finishes it (exit 0).

Hooks that restart nothing gate on the heartbeat (`--gate heartbeat`), as in test_maintain.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cloudtest import REPO, wait_until, read_until
from novamove.engine.journal import Journal
from test_maintain import last_migration_id, moved_count, tag

pytestmark = pytest.mark.acceptance


def _popen(minicloud, *args: str) -> subprocess.Popen:
    """`novamove ARGS` as from a terminal: report on stdout, progress on stderr."""
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud"}
    return subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)




def _finish(proc: subprocess.Popen, progress: list, timeout: float = 600) -> str:
    """Wait for proc, its progress (stderr) appended to `progress`; returns its stdout. (The
    pipes are read from here on only: a second reader of stderr would lose lines.)"""
    out: list[str] = []
    readers = [threading.Thread(target=lambda: progress.extend(x.rstrip() for x in proc.stderr), daemon=True),
               threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)]
    for t in readers:
        t.start()
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    for t in readers:
        t.join(10)
    return "".join(out)


def _all_back(minicloud) -> None:
    assert all(v[:2] == ("enabled", "up") and not v[3] for v in minicloud.services().values()), \
        minicloud.services()


def _gone(conn, server_id: str) -> bool:
    return conn.compute.find_server(server_id, ignore_missing=True, all_projects=True) is None


# ------------------------------------------------------------------------------ 1. a campaign

GROUP_HOOK = """#!/bin/sh
{python} - <<'EOF' >> {record}
import json, os, time, openstack
c = openstack.connect(cloud="minicloud")
host = os.environ["NOVAMOVE_HOST"]
ids = json.loads('{ids}')
status = {{k: c.compute.get_server(v).status for k, v in ids.items() if k in ("g1", "g2", "off")}}
if host == "{first}":
    # the owners of two servers delete them: one this campaign powered off on this host, one
    # on the next host, not drained yet
    for k in ("doomed", "victim"):
        c.compute.delete_server(ids[k])
    # (gone at once on a quiet cloud: get_server would then raise NotFound, so poll for absence)
    deadline = time.monotonic() + 60
    while any(c.compute.find_server(ids[k], ignore_missing=True) for k in ("doomed", "victim")):
        assert time.monotonic() < deadline, "servers not deleted within 60 s"
        time.sleep(1)
print(json.dumps({{"host": host, "status": status}}))
EOF
"""


def test_campaign_at_2_70_deleted_servers_are_gone_group_budget_kept_shutoff_stays_off(
        minicloud, servers, tmp_path):
    c1, c2, c3 = minicloud.computes[:3]
    conn = minicloud.conn()
    group = conn.compute.create_server_group(name="fp-aa", policy="anti-affinity")
    members = []
    try:
        on1 = servers(2, host=c1, prefix="fp-m", wait=False)
        doomed, off = servers(2, host=c1, prefix="fp-st", wait=False)
        n1, victim = servers(2, host=c2, prefix="fp-n", wait=False)
        image = conn.image.find_image("cirros-fake") or next(iter(conn.image.images()))
        flavor = conn.compute.find_flavor("m1.nano")
        for i, h in enumerate((c1, c2)):
            members.append(conn.compute.create_server(
                name=f"fp-g{i + 1}", image_id=image.id, flavor_id=flavor.id, networks="none",
                availability_zone=f"nova:{h}", scheduler_hints={"group": group.id}))
        everything = on1 + [doomed, off, n1, victim] + members
        for s in everything:
            conn.compute.wait_for_server(s, wait=180, interval=1)
        conn.compute.stop_server(off)
        conn.compute.wait_for_server(off, status="SHUTOFF", wait=60, interval=1)
        g1, g2 = members
        for s in (doomed, off, g1, g2):
            tag(minicloud, s, "stop")
        ids = {"g1": g1.id, "g2": g2.id, "off": off.id, "doomed": doomed.id, "victim": victim.id}
        record = tmp_path / "record.jsonl"
        hook = tmp_path / "hook.sh"
        hook.write_text(GROUP_HOOK.format(python=sys.executable, record=record, ids=json.dumps(ids), first=c1))
        hook.chmod(0o755)
        first_mig = last_migration_id(minicloud)
        minicloud.set_fakevirt(live_migration_seconds=2)

        t0 = time.monotonic()
        proc = _popen(minicloud, "--os-compute-api-version", "2.70", "maintain", c1, c2, "--order", "given",
                      "--max-hosts", "2", "--max-parallel", "1", "--hook", str(hook), "--gate", "heartbeat",
                      "-f", "json")
        progress: list[str] = []
        try:
            read_until(proc, "started (1 in flight)", progress)
            # the owner deletes a server of compute1 whose move has not started yet
            waiting = [s for s in on1 if (x := conn.compute.get_server(s.id)).compute_host == c1
                       and x.status == "ACTIVE" and not x.task_state]
            deleted = waiting[-1]
            conn.compute.delete_server(deleted)
            out = _finish(proc, progress)
        finally:
            if proc.poll() is None:
                proc.kill()
        took = time.monotonic() - t0
        text = "\n".join(progress)
        assert proc.returncode == 0, out[-3000:] + text[-3000:]
        data = json.loads(out)
        assert {r["host"]: r["outcome"] for r in data["results"]} == {c1: "done", c2: "done"}, data["results"]

        # The deleted server is "gone" in compute1's drain (not a failure, not a crash).
        # (A server gone before its move started has no move journaled: nothing was changed.)
        assert any(line.endswith(f"{c1}: {deleted.name}: gone: the server no longer exists")
                   or (f"{c1}: {deleted.name}: gone (" in line) for line in progress), text[-3000:]
        assert f"server {doomed.id} is gone" in text, text[-3000:]
        assert _gone(conn, deleted.id) and _gone(conn, doomed.id) and _gone(conn, victim.id)

        # The group budget held at 2.70: never both members off at once, compute2 waited.
        seen = {x["host"]: x["status"] for x in map(json.loads, record.read_text().splitlines())}
        assert seen[c1]["g1"] == "SHUTOFF" and seen[c1]["g2"] == "ACTIVE", seen
        assert seen[c2]["g2"] == "SHUTOFF" and seen[c2]["g1"] == "ACTIVE", seen
        assert data["peak_group"] == 1
        assert any(f"{c2} waits: server group" in line for line in progress), text[-3000:]
        # The stop-tagged server that was SHUTOFF already stayed off (not ours to start).
        assert seen[c1]["off"] == seen[c2]["off"] == "SHUTOFF"
        after = conn.compute.get_server(off.id)
        assert (after.status, after.compute_host) == ("SHUTOFF", c1)
        for s in (g1, g2):                       # powered off by the campaign: on again, at home
            x = conn.compute.get_server(s.id)
            assert x.status == "ACTIVE" and x.compute_host == s.compute_host, (x.name, x.status)
        for s, homes in [(x, {c3}) for x in on1 if x.id != deleted.id] + [(n1, {c1, c3})]:
            # (compute1's servers go where the campaign will not empty again: compute3)
            x = conn.compute.get_server(s.id)
            assert x.status == "ACTIVE" and x.compute_host in homes, (x.name, x.compute_host)
        moves = moved_count(minicloud, {s.id for s in everything}, first_mig)
        assert set(moves.values()) == {1} and len(moves) == 2, moves
        _all_back(minicloud)
        print(f"campaign of 2 hosts took {took:.0f} s")
    finally:
        minicloud.delete(members)
        conn.compute.delete_server_group(group, ignore_missing=True)


# ------------------------------------------------------------------------------ 2. nova-api away

# nova-api is away as long as its start takes (15-20 s on a busy 2-core machine), plus OUTAGE.
OUTAGE = 0

API_HOOK = """#!/bin/sh
# The hook's last act takes nova-api away: the campaign gates while it is gone.
{novamove} minicloud stop nova-api --dir {state} >/dev/null 2>&1
date +%s > {marker}
"""


def test_campaign_rides_out_nova_api_stopped_during_its_drain_and_its_gate(minicloud, servers, tmp_path):
    c1 = minicloud.computes[0]
    vms = servers(2, host=c1, prefix="fp-api")
    ids = {v.id for v in vms}
    first_mig = last_migration_id(minicloud)
    minicloud.set_fakevirt(live_migration_seconds=2)
    marker = tmp_path / "api-stopped"
    hook = tmp_path / "hook.sh"
    hook.write_text(API_HOOK.format(novamove=Path(sys.executable).parent / "novamove",
                                    state=minicloud.manager.state, marker=marker))
    hook.chmod(0o755)
    t0 = time.monotonic()
    proc = _popen(minicloud, "maintain", c1, "--max-parallel", "1", "--hook", str(hook), "--gate", "heartbeat",
                  "-f", "json")
    progress: list[str] = []
    try:
        # 1. during the drain: a move in flight, the next not started yet
        read_until(proc, "started (1 in flight)", progress)
        away = time.monotonic()
        minicloud.manager.stop_component("nova-api")
        time.sleep(OUTAGE)
        minicloud.manager.start_component("nova-api")
        outages = [time.monotonic() - away]
        # 2. during the gate: the hook stopped nova-api as it ended
        read_until(proc, "hook started", progress)
        wait_until(marker.exists, timeout=120, interval=0.2, what="the hook to stop nova-api")
        time.sleep(OUTAGE)
        minicloud.manager.start_component("nova-api")
        outages.append(time.time() - int(marker.read_text()))
        out = _finish(proc, progress)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.monotonic() - t0
    text = "\n".join(progress)
    assert proc.returncode == 0, out[-3000:] + text[-3000:]
    [r] = json.loads(out)["results"]
    assert r["outcome"] == "done" and r["moved"] == 2 and r["gate"], r
    for v in vms:
        s = minicloud.server(v.id)
        assert s.status == "ACTIVE" and s.compute_host != c1 and not s.task_state, (s.name, s.compute_host)
    assert set(moved_count(minicloud, ids, first_mig).values()) == {1}      # each moved once
    assert "Traceback" not in text
    _all_back(minicloud)
    print(f"campaign with nova-api away {outages[0]:.0f} s and {outages[1]:.0f} s took {took:.0f} s")


# ------------------------------------------------------------------------------ 3. SIGHUP, resumes

def test_sighup_from_a_closed_terminal_stops_gracefully_then_a_second_resume_is_refused(
        minicloud, servers, tmp_path):
    c1 = minicloud.computes[0]
    vms = servers(2, host=c1, prefix="fp-hup")
    ids = {v.id for v in vms}
    first_mig = last_migration_id(minicloud)
    minicloud.set_fakevirt(live_migration_seconds=2)
    t0 = time.monotonic()
    proc = _popen(minicloud, "maintain", c1, "--max-parallel", "1", "--hook", "sleep 8", "--gate", "heartbeat",
                  "-f", "json")
    progress: list[str] = []
    read_until(proc, "started (1 in flight)", progress)
    # The terminal closes: its pipes go away, then the kernel's SIGHUP.
    proc.stdout.close()
    proc.stderr.close()
    proc.send_signal(signal.SIGHUP)
    try:
        code = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
    # As SIGTERM: the move in flight finished, no new one, the host given back; "interrupted".
    assert code == 130, code
    journal = Journal(os.environ["NOVAMOVE_JOURNAL"])
    [run] = [r for r in journal.runs(20) if r["verb"] == "maintain"][:1]
    assert run["status"] == "interrupted", run
    _all_back(minicloud)                                   # nothing left disabled
    assert len(moved_count(minicloud, ids, first_mig)) == 1
    print(f"interrupted in {time.monotonic() - t0:.0f} s")
    status = minicloud.cli("campaign", "status")
    assert status.returncode == 0 and run["id"] in status.stdout, status.stdout + status.stderr
    # Two terminals resume it: the second is refused in one line while the first runs.
    first = _popen(minicloud, "maintain", "--resume", run["id"], "-f", "json")
    progress = []
    try:
        read_until(first, "hook started", progress)
        second = minicloud.cli("maintain", "--resume", run["id"])
        assert second.returncode == 4, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "is still running" in lines[0] and run["id"] in lines[0], second.stderr
        out = _finish(first, progress)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out[-3000:] + "\n".join(progress)[-3000:]
    data = json.loads(out)
    assert data["resumed"] and [r["outcome"] for r in data["results"]] == ["done"], data["results"]
    moves = moved_count(minicloud, ids, first_mig)
    assert set(moves.values()) == {1} and len(moves) == 2, moves
    assert all(minicloud.host_of(i) != c1 for i in ids)
    _all_back(minicloud)
    print(f"SIGHUP and two resumes took {time.monotonic() - t0:.0f} s")
