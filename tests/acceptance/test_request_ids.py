"""Nova's request ids on the minicloud (a real Nova on loopback): the `x-openstack-request-id`
of every change novamove makes is journaled with it, returned as `request_ids` (-f json), and
named at the end of a failure's message; each one is the id Nova itself logged and recorded.

One server, three moves: a live migration that lands, a cold one Nova accepts and then rolls
back (the source fails to copy the disk), and one refused by novamove's own pre-check (no
request was made, so no id is named).
"""

from __future__ import annotations

import json
import re

import pytest

from novamove.engine.journal import Journal

pytestmark = pytest.mark.acceptance

REQ = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIRST, SECOND, THIRD = "compute1", "compute2", "compute3"


@pytest.fixture
def vm(servers):
    [server] = servers(1, host=FIRST, prefix="rid")
    return server


def _migrate(minicloud, journal, *args):
    return minicloud.cli("migrate", *args, "-f", "json", env={"NOVAMOVE_JOURNAL": str(journal)})


def _move_actions(minicloud, server_id) -> dict:
    """Nova's own record of the server's moves: request id -> instance action."""
    conn = minicloud.conn()
    return {a.request_id: a for a in conn.compute.server_actions(server_id)
            if a.action in ("live-migration", "migrate")}


def _api_log_lines(minicloud, request_id: str) -> list[str]:
    """nova-api's request log lines (oslo.log context: [global-id request-id user project ...])."""
    log = minicloud.manager.layout.logs / "nova-api.out"
    return [line for line in log.read_text(errors="replace").splitlines()
            if f" {request_id} " in line and "nova.api.openstack.requestlog" in line]


def test_request_ids_of_a_move_are_nova_s_and_journaled(minicloud, vm, tmp_path):
    journal = tmp_path / "journal.sqlite"

    # 1. A live migration that lands: its one change (the os-migrateLive POST) has an id.
    res = _migrate(minicloud, journal, vm.id, "--to", SECOND)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["dest_compute"] == SECOND and minicloud.host_of(vm.id) == SECOND
    ids = doc["request_ids"]
    assert len(ids) == 1 and REQ.fullmatch(ids[0]), ids
    assert Journal(journal).request_ids(doc["run_id"]) == ids
    # Nova recorded the live migration under that request id, and nova-api logged the POST.
    actions = _move_actions(minicloud, vm.id)
    assert list(actions) == ids and actions[ids[0]].action == "live-migration"
    [line] = _api_log_lines(minicloud, ids[0])
    assert f'"POST /v2.1/servers/{vm.id}/action" status: 202' in line, line

    # 2. Nova accepts the next one, then the source fails it and puts the server back: the
    # error names the request that started it, the one Nova recorded the failed action under.
    minicloud.set_fakevirt(cold_migration_rollback=1)
    try:
        failed = _migrate(minicloud, journal, vm.id, "--to", THIRD, "--cold")
    finally:
        minicloud.set_fakevirt(cold_migration_rollback=0)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    doc2 = json.loads(failed.stdout)
    assert not doc2["ok"] and minicloud.host_of(vm.id) == SECOND
    [rid] = doc2["request_ids"]
    assert REQ.fullmatch(rid) and rid not in ids
    assert Journal(journal).request_ids(doc2["run_id"]) == [rid]
    error = failed.stderr.strip().splitlines()[-1]          # after the progress lines
    assert error.startswith("novamove: error: cold migration of ") and "disk copy to" in error, failed.stderr
    assert error.endswith(f" (request ID {rid})"), error
    actions = _move_actions(minicloud, vm.id)
    assert set(actions) == {ids[0], rid}
    assert (actions[rid].action, actions[rid].message) == ("migrate", "Error")
    [line] = _api_log_lines(minicloud, rid)
    assert f'"POST /v2.1/servers/{vm.id}/action" status: 202' in line, line
    # The source's nova-compute logged the failure in the context of that same request.
    compute_log = (minicloud.manager.layout.logs / f"nova-compute-{SECOND}.out").read_text(errors="replace")
    assert any(f" {rid} " in line and " ERROR " in line for line in compute_log.splitlines()), \
        f"no ERROR line of {rid} in nova-compute-{SECOND}.out"

    # 3. Refused by novamove's pre-check (target disabled): no request was made, none is named.
    conn = minicloud.conn()
    [svc] = [s for s in conn.compute.services() if s.binary == "nova-compute" and s.host == THIRD]
    conn.compute.disable_service(svc, disabled_reason="ops: request id test")
    try:
        refused = _migrate(minicloud, journal, vm.id, "--to", THIRD)
    finally:
        conn.compute.enable_service(svc)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "is disabled" in refused.stderr and "request ID" not in refused.stderr, refused.stderr
    assert minicloud.host_of(vm.id) == SECOND
    assert set(_move_actions(minicloud, vm.id)) == {ids[0], rid}
