"""A campaign plans each stage on its view of the cloud (engine/campaign/view.py, issue 24),
and still sees what someone else changed before the stage that depends on it, on 3 computes
(a minicloud with more has the others disabled for the test: they would be destinations too).

compute1 and compute2 are serviced in that order (--max-hosts 1). compute1 keeps a server
(tagged skip, --allow-skip: it stays, untouched), so once back it has less free RAM than
compute3, where compute1's other server went. compute1's hook boots a big server onto compute3:
compute2's server no longer fits there. The stage of compute2 must plan it onto compute1 at
once: no move refused by Nova and planned again, no host overfilled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from cloudtest import REPO
from test_maintain import last_migration_id, migrations, tag

pytestmark = pytest.mark.acceptance

BOOT_HOOK = """#!/bin/sh
[ "$NOVAMOVE_HOST" = "{first}" ] || exit 0
{python} - <<'PY' >> {record}
import json, openstack
c = openstack.connect(cloud="minicloud")
s = c.compute.create_server(name="cv-other", image_id="{image}", flavor_id="{flavor}", networks="none",
                            availability_zone="nova:{dest}")
c.compute.wait_for_server(s, wait=120, interval=1)
print(json.dumps({{"booted": s.id}}))
PY
"""


def _ram_capacity(conn, host: str) -> int:
    """What Placement lets compute `host` hold of RAM (MB)."""
    providers = [p for p in conn.placement.resource_providers() if p.name.split(".")[0] == host.split(".")[0]]
    inv = {i.resource_class: i for i in conn.placement.resource_provider_inventories(providers[0])}["MEMORY_MB"]
    return int((inv.total - inv.reserved) * inv.allocation_ratio)


# Defined only with NOVAMOVE_CAMPAIGN_VIEW_ACCEPTANCE=1 (`make acceptance-campaign-view`): about
# 40 s that `make test`'s 45-minute budget cannot hold; the unit test of the same rule
# (tests/unit/test_campaign_cost.py) runs in `make test`. A skipped test would fail CI.
if os.environ.get("NOVAMOVE_CAMPAIGN_VIEW_ACCEPTANCE") == "1":

    def test_a_server_booted_onto_the_next_stages_destination_is_planned_around(minicloud, servers, tmp_path):
        c1, c2, c3 = minicloud.computes[:3]
        conn = minicloud.conn()
        t0 = time.monotonic()
        # The test's premise is three computes: any more (a fourth would take compute2's server,
        # being the emptiest) are out of play while it runs, enabled again at its end.
        extra = [svc for svc in conn.compute.services(binary="nova-compute")
                 if svc.host in minicloud.computes[3:] and svc.status == "enabled"]
        cap = _ram_capacity(conn, c3)
        # compute3 after compute1's stage and the hook: 1536 MB free, less than compute2's server
        # (m1.medium, 2048 MB); compute1, back, has cap - 2048 MB free.
        big = conn.compute.create_flavor(name=f"cv-big-{uuid.uuid4().hex[:6]}", vcpus=1, ram=cap - 1664, disk=1,
                                         is_public=True)
        record = tmp_path / "record.jsonl"
        booted: list[str] = []
        try:
            for svc in extra:
                conn.compute.disable_service(svc, disabled_reason="test_campaign_view: only three computes in play")
            [stays] = servers(1, host=c1, flavor="m1.medium", prefix="cv-stay", wait=False)
            [small] = servers(1, host=c1, flavor="m1.nano", prefix="cv-small", wait=False)
            [mover] = servers(1, host=c2, flavor="m1.medium", prefix="cv-move", wait=False)
            for s in (stays, small, mover):
                conn.compute.wait_for_server(s, wait=180, interval=1)
            tag(minicloud, stays, "skip")
            image = conn.compute.get_server(small.id).image["id"]
            hook = tmp_path / "hook.sh"
            hook.write_text(BOOT_HOOK.format(python=sys.executable, record=record, image=image, flavor=big.id, dest=c3,
                                            first=c1))
            hook.chmod(0o755)
            first_mig = last_migration_id(minicloud)
            env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud"}
            proc = subprocess.run([sys.executable, "-m", "novamove", "maintain", c1, c2, "--order", "given",
                                   "--max-hosts", "1", "--allow-skip", "--hook", str(hook), "--gate", "heartbeat",
                                   "-f", "json"],
                                  env=env, cwd=REPO, text=True, capture_output=True, timeout=300)
            if record.exists():
                booted = [json.loads(line)["booted"] for line in record.read_text().splitlines()]
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            assert len(booted) == 1, proc.stderr[-3000:]
            assert conn.compute.get_server(booted[0]).compute_host == c3
            # compute2's server went to compute1 at once: planned around the server booted on
            # compute3, not sent there, refused by Nova and planned again.
            assert conn.compute.get_server(mover.id).compute_host == c1
            rows = [m for m in migrations(minicloud) if int(m["id"]) > first_mig and m["instance_uuid"] == mover.id]
            assert [(m["dest_compute"], m["status"]) for m in rows] == [(c1, "completed")], rows
            assert "planning them again" not in proc.stderr, proc.stderr[-3000:]
            x = conn.compute.get_server(stays.id)
            assert (x.compute_host, x.status) == (c1, "ACTIVE")          # stayed
            print(f"campaign view acceptance: {time.monotonic() - t0:.0f} s")
        finally:
            for b in booted:
                try:
                    conn.compute.delete_server(b)
                    conn.compute.wait_for_delete(conn.compute.get_server(b), wait=60, interval=1)
                except Exception:
                    pass
            conn.compute.delete_flavor(big, ignore_missing=True)
            for svc in extra:
                conn.compute.enable_service(svc)
