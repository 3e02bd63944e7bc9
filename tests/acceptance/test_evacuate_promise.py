"""`novamove evacuate` / `unfence` keep the project's promise on the minicloud (issue 17).

One story on compute3 (booting servers and restarting a compute are the slow parts):
  1. compute3 dies (nova-compute killed); `evacuate --fenced --max-parallel 1` runs; while the
     first evacuation is in flight the owner of another server on compute3 deletes it: that
     server is "gone" (not a failure, not skipped), the others are evacuated, exit 0;
  2. compute3 is repaired and its nova-compute runs again, but someone else disables it for
     their own work before the operator unfences it: `unfence --move-back` clears the
     forced_down novamove set, leaves the host disabled, moves nothing and fails (exit 1)
     naming the servers left where they are.
"""

from __future__ import annotations

import json
import time

import pytest

from cloudtest import wait_until, read_until
from test_evacuate import (HOST, _bring_back, _evacuations, _novamove, _service, _start_compute,
                           ensure_instance_quota)
from novamove.engine.evacuate import is_our_evacuate_reason

pytestmark = pytest.mark.acceptance




def test_server_deleted_mid_evacuation_is_gone_then_move_back_to_a_host_someone_else_disabled_fails(
        minicloud, servers):
    conn = minicloud.conn()
    others = [s.name for s in conn.compute.servers(all_projects=True, compute_host=HOST)]
    assert not others, f"{HOST} must start empty for this test (it holds {others})"
    ensure_instance_quota(conn, 4)
    vms = servers(2, host=HOST, prefix="ep")
    ids = {v.id for v in vms}
    t0 = time.monotonic()
    theirs = "alice: DIMM swap, do not use"
    minicloud.manager.stop_compute(HOST, kill=True)          # the host "dies"
    minicloud.set_fakevirt(evacuation_seconds=2)
    try:
        # 1. evacuate; the owner deletes a server whose evacuation has not started yet
        proc = _novamove(minicloud, "evacuate", HOST, "--fenced", "--max-parallel", "1", "-f", "json")
        progress: list[str] = []
        read_until(proc, "started (1 in flight)", progress)
        waiting = [v for v in vms if (s := conn.compute.get_server(v.id)).compute_host == HOST
                   and not s.task_state and not [m for m in _evacuations(conn) if m.server_id == v.id]]
        deleted = waiting[-1]
        conn.compute.delete_server(deleted.id)
        out, err = proc.communicate(timeout=600)
        progress += err.splitlines()
        text = "\n".join(progress)
        assert proc.returncode == 0, out[-3000:] + text[-3000:]
        rep = json.loads(out)
        by = {r["server_id"]: r for r in rep["results"]}
        assert by[deleted.id]["result"] == "gone", (by[deleted.id], text[-2000:])
        assert "1 gone" in rep["summary"], rep["summary"]
        rest = ids - {deleted.id}
        assert {by[i]["result"] for i in rest} == {"evacuated"}, rep["results"]
        for i in rest:
            s = conn.compute.get_server(i)
            assert s.compute_host != HOST and s.status == "ACTIVE" and not s.task_state, (s.name, s.compute_host)
        assert [m.server_id for m in _evacuations(conn) if m.server_id in ids].count(deleted.id) == 0
        svc = _service(conn, HOST)
        assert svc.is_forced_down and svc.status == "disabled" and is_our_evacuate_reason(svc.disabled_reason)

        print(f"evacuated in {time.monotonic() - t0:.0f} s")
        # 2. compute3 repaired and running again; someone else disables it for their own work
        _start_compute(minicloud, HOST)
        wait_until(lambda: {m.status for m in _evacuations(conn) if m.server_id in rest} == {"completed"},
                   120, 1, f"{HOST} to clean up its evacuated servers")
        conn.compute.put(f"/os-services/{svc.id}", json={"status": "disabled", "disabled_reason": theirs},
                         microversion="2.53")
        print(f"cleaned up in {time.monotonic() - t0:.0f} s")
        where = {i: conn.compute.get_server(i).compute_host for i in rest}
        migrations = len(list(conn.compute.migrations()))
        back = minicloud.cli("unfence", HOST, "--move-back", "--wait", "60", "-f", "json", timeout=600)
        assert back.returncode == 1, back.stdout[-3000:] + back.stderr[-3000:]
        rep = json.loads(back.stdout)
        assert not rep["ok"]
        left = {r["server_id"]: r for r in rep["results"]}
        assert set(left) == rest, rep["results"]
        for r in left.values():
            assert r["result"] == "failed" and "disabled by someone else" in r["detail"] and theirs in r["detail"], r
        svc = _service(conn, HOST)
        assert (svc.status, svc.disabled_reason, svc.is_forced_down) == ("disabled", theirs, False)
        assert {i: conn.compute.get_server(i).compute_host for i in rest} == where     # nothing moved
        assert len(list(conn.compute.migrations())) == migrations
        print(f"evacuation story took {time.monotonic() - t0:.0f} s")
    finally:
        minicloud.set_fakevirt(evacuation_seconds=0)
        svc = _service(conn, HOST)
        if svc.status == "disabled" and svc.disabled_reason == theirs:
            conn.compute.enable_service(svc)    # alice is done with it (the test's cleanup)
        _bring_back(minicloud)
