"""Split brain on the minicloud: why `evacuate` wants proof of fencing (docs/evacuate.md).

The fake driver keeps each compute's guests in a guest book that outlives nova-compute
(docs/minicloud.md), as a real hypervisor's guests outlive a crashed compute service. So:
  (a) compute2's nova-compute is SIGKILLed: its guests still run. `novamove evacuate compute2`
      while compute2 is merely down per Nova is refused in one line, exit 4, nothing changed.
      An operator without novamove forces it down and evacuates through the raw Nova API: the
      guest now runs on two hosts (both guest books), the split brain the fencing rule prevents;
  (b) compute2 starts again: Nova's own init_host cleanup (_destroy_evacuated_instances)
      destroys the evacuated guest there (the evacuation record goes `done` -> `completed`); the
      server runs on one host only, and compute2's other guest (SHUTOFF) is as Nova has it.
A fence command that exits 0 while the compute keeps reporting is refused in
test_evacuate.py::test_refusals_change_nothing (not repeated here).
"""

from __future__ import annotations

import pytest

from cloudtest import wait_until

pytestmark = pytest.mark.acceptance

HOST = "compute2"


def _service(conn, host: str):
    [svc] = list(conn.compute.services(binary="nova-compute", host=host))
    return svc


def _force_down(conn, host: str, down: bool) -> None:
    svc = _service(conn, host)
    r = conn.compute.put(f"/os-services/{svc.id}", json={"forced_down": down}, microversion="2.53")
    assert r.status_code == 200, r.text


def _evacuations(conn, server_id: str) -> list[str]:
    return [m.status for m in conn.compute.migrations(migration_type="evacuation",
                                                       source_compute=HOST)
            if m.server_id == server_id]


def _settled(conn, server_id: str, status: str):
    s = conn.compute.get_server(server_id)
    return s if s.status == status and not s.task_state else None


def _bring_back(minicloud) -> None:
    """compute2's nova-compute running, up and not forced down. Nova refuses to clear
    forced_down while `done` evacuations from the host remain (only the compute's start-up
    cleanup completes them), and the minicloud's start waits for "up", which a forced-down
    compute never is: so launch the process, let Nova clean up, then clear forced_down."""
    conn = minicloud.conn()
    if not _service(conn, HOST).is_forced_down:
        minicloud.start_compute(HOST)
        return
    from novamove.minicloud import procs
    from novamove.minicloud.manager import _Starter
    m = minicloud.manager
    if m.compute_component(HOST) not in procs.running(m.state / "run", m.state):
        _Starter(m.layout, m._saved_venv(), m.log).launch(m.compute_component(HOST))
    wait_until(lambda: not [g for g in conn.compute.migrations(migration_type="evacuation",
                                                                source_compute=HOST)
                            if g.status == "done"], 120, 1, "compute2's evacuation cleanup")
    _force_down(conn, HOST, False)
    minicloud.wait_service_state(HOST, "up")


def _holders(minicloud, server_id: str) -> dict[str, str]:
    """host -> power state of every fake hypervisor that has the guest."""
    return {h: g[server_id] for h in minicloud.computes
            if server_id in (g := minicloud.guests(h))}


def _nova_view(minicloud, ids) -> tuple:
    conn = minicloud.conn()
    return (minicloud.services(),
            {i: (conn.compute.get_server(i).compute_host, conn.compute.get_server(i).status)
             for i in ids},
            {i: _evacuations(conn, i) for i in ids})


def test_unfenced_evacuation_runs_a_guest_twice_until_nova_cleans_the_source(minicloud, servers):
    conn = minicloud.conn()
    act, off = servers(2, host=HOST, prefix="split")
    conn.compute.stop_server(off.id)
    wait_until(lambda: _settled(conn, off.id, "SHUTOFF"), 120, 1, "off SHUTOFF")
    assert _holders(minicloud, act.id) == {HOST: "running"}
    assert _holders(minicloud, off.id) == {HOST: "shutdown"}

    minicloud.stop_compute(HOST, kill=True)          # nova-compute crashes; the host runs on
    try:
        assert _holders(minicloud, act.id) == {HOST: "running"}
        minicloud.wait_service_state(HOST, "down")
        # (a) down per Nova is not fenced: novamove refuses, in one line, and changes nothing
        before = _nova_view(minicloud, [act.id, off.id])
        proc = minicloud.cli("evacuate", HOST)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("novamove: error: ") \
            and f"{HOST} is not fenced (down per Nova" in lines[0], proc.stderr
        assert _nova_view(minicloud, [act.id, off.id]) == before
        assert not _service(conn, HOST).is_forced_down

        # ... and what happens without novamove: forced down and evacuated, nothing fenced
        # (2.94: the guest is rebuilt running, as before 2.95, which leaves it stopped there)
        _force_down(conn, HOST, True)
        r = conn.compute.post(f"/servers/{act.id}/action", json={"evacuate": {}},
                              microversion="2.94")
        assert r.status_code == 200, r.text
        moved = wait_until(lambda: _settled(conn, act.id, "ACTIVE"), 120, 1, "evacuated ACTIVE")
        dest = moved.compute_host
        assert dest != HOST and _evacuations(conn, act.id) == ["done"]
        # split brain: the guest runs on both hosts
        assert _holders(minicloud, act.id) == {HOST: "running", dest: "running"}
    finally:
        # (b) compute2's nova-compute starts again (systemd restarts a crashed one), then the
        # operator clears forced_down
        _bring_back(minicloud)

    # Nova's own cleanup at start-up destroyed the evacuated guest on the source (its log says
    # so: a driver that merely forgot its guests would leave the same books and records)
    assert _evacuations(conn, act.id) == ["completed"]
    log = minicloud.manager.layout.logs / f"{minicloud.manager.compute_component(HOST)}.out"
    assert [line for line in log.read_text().splitlines() if act.id in line
            and "Destroying instance as it has been evacuated from this host" in line]
    assert _holders(minicloud, act.id) == {dest: "running"}
    assert conn.compute.get_server(act.id).compute_host == dest
    # the guest that was never evacuated is as Nova has it (init_host stopped or lost nothing)
    assert _holders(minicloud, off.id) == {HOST: "shutdown"}
    assert _settled(conn, off.id, "SHUTOFF").compute_host == HOST
    # deleting the servers removes their guests from every hypervisor
    minicloud.delete([act, off])
    assert _holders(minicloud, act.id) == {} and _holders(minicloud, off.id) == {}
