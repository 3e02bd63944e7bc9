"""`novamove rebalance` end to end on the minicloud (a real Nova and Placement on loopback).

`make test` runs one test: an unbalanced cloud (compute1 holding most servers) planned with
`--goal spread --dry-run -o plan.json` (nothing changes), applied with `novamove apply`, and read
back from Placement's own API (inventories x allocation ratio - reserved, usages): the most
loaded host ends within the plan's predicted figure.

With NOVAMOVE_REBALANCE_ACCEPTANCE=all (`make acceptance-rebalance`, docs/testing.md) two more:
`pack --disable-emptied` empties the host its plan names and leaves it disabled with a drain tag
(then `undrain` gives it back); and a rebalance killed (SIGKILL, NOVAMOVE_FAULT) right after
Nova accepted its second move is finished by `novamove recover`, then a rerun ends within plan.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.acceptance

NOVAMOVE = str(Path(sys.executable).parent / "novamove")
HOSTS = ("compute1", "compute2", "compute3")
TOLERANCE = 0.5        # points: engine/batch/rebalance.py TOLERANCE


def flagged(test):
    """Defined only under NOVAMOVE_REBALANCE_ACCEPTANCE=all: a skipped test fails CI."""
    return test if os.environ.get("NOVAMOVE_REBALANCE_ACCEPTANCE") == "all" else None


def _cli(env, journal, *args, extra_env=None, timeout=600):
    full = dict(os.environ, **env, NOVAMOVE_JOURNAL=str(journal), **(extra_env or {}))
    return subprocess.run([NOVAMOVE, *args], env=full, capture_output=True, text=True, timeout=timeout)


def placement_usage(conn, hosts=HOSTS) -> dict[str, float]:
    """Each host's usage (percent of its scarcest resource) from Placement's API alone."""
    headers = {"OpenStack-API-Version": "placement 1.14", "Accept": "application/json"}
    rps = conn.placement.get("/resource_providers", headers=headers).json()["resource_providers"]
    out = {}
    for host in hosts:
        rp = next(r for r in rps if r["name"].split(".")[0] == host)
        inv = conn.placement.get(f"/resource_providers/{rp['uuid']}/inventories",
                                 headers=headers).json()["inventories"]
        used = conn.placement.get(f"/resource_providers/{rp['uuid']}/usages", headers=headers).json()["usages"]
        shares = []
        for rc, i in inv.items():
            cap = (i["total"] - i["reserved"]) * i["allocation_ratio"]
            if cap > 0 and rc in ("VCPU", "MEMORY_MB", "DISK_GB", "PCPU"):
                shares.append(100.0 * used.get(rc, 0) / cap)
        out[host] = max(shares, default=0.0)
    return out


def _settled(minicloud, ids, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        states = [minicloud.server(i) for i in ids]
        if all(s.status in ("ACTIVE", "SHUTOFF") and not s.task_state for s in states):
            return {s.id: s.compute_host for s in states}
        time.sleep(1)
    raise AssertionError("servers still moving")


def test_spread_plan_then_apply_ends_within_the_plan_read_back_from_placement(minicloud, servers, tmp_path):
    conn = minicloud.conn()
    made = servers(5, host="compute1", prefix="rbs")
    journal, plan_file = tmp_path / "j.sqlite", tmp_path / "plan.json"
    before = placement_usage(conn)
    assert max(before, key=before.get) == "compute1"

    dry = _cli(minicloud.env, journal, "rebalance", *HOSTS, "--dry-run", "-o", str(plan_file), "-f", "json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    doc = json.loads(dry.stdout)
    plan = json.loads(plan_file.read_text())
    assert plan["kind"] == "rebalance" and plan["goal"] == "spread" and doc["moves"] >= 2
    assert abs(plan["before"]["max_usage"] - max(before.values())) < 0.1, (plan["before"], before)
    assert plan["after"]["max_usage"] < plan["before"]["max_usage"] - 2
    assert all(s["source"] == "compute1" for s in plan["steps"] if s["dest"])
    assert placement_usage(conn) == before and {minicloud.host_of(s.id) for s in made} == {"compute1"}

    out = _cli(minicloud.env, journal, "apply", str(plan_file), "-f", "json", "--poll-interval", "0.3")
    assert out.returncode == 0, out.stdout + out.stderr
    rep = json.loads(out.stdout)
    assert rep["ok"] and rep["within_plan"] and all(r["result"] == "moved" for r in rep["results"])
    after = placement_usage(conn)
    assert max(after.values()) <= plan["after"]["max_usage"] + TOLERANCE, (after, plan["after"])
    assert abs(max(after.values()) - rep["read_back"]["max_usage"]) < 0.1
    hosts = _settled(minicloud, [s.id for s in made])
    assert sum(h == "compute1" for h in hosts.values()) < 5


@flagged
def test_pack_empties_the_host_its_plan_names_and_leaves_it_disabled(minicloud, servers, tmp_path):
    conn = minicloud.conn()
    servers(2, host="compute3", prefix="rbp")
    servers(1, host="compute2", prefix="rbp")
    journal = tmp_path / "j.sqlite"
    out = _cli(minicloud.env, journal, "rebalance", "compute2", "compute3", "--goal", "pack",
               "--disable-emptied", "--reason", "acceptance", "-f", "json", "--poll-interval", "0.3")
    assert out.returncode == 0, out.stdout + out.stderr
    rep = json.loads(out.stdout)
    assert rep["ok"] and len(rep["emptied"]) == 1 and rep["disabled"] == rep["emptied"]
    emptied = rep["emptied"][0]
    try:
        assert list(conn.compute.servers(all_projects=True, host=emptied)) == []
        status, _, reason, _ = minicloud.services()[emptied]
        assert status == "disabled" and ": drain: rebalance pack emptied: acceptance" in reason
        assert placement_usage(conn, [emptied])[emptied] == 0.0
    finally:
        back = _cli(minicloud.env, journal, "undrain", emptied)
    assert back.returncode == 0, back.stdout + back.stderr
    assert minicloud.services()[emptied][0] == "enabled"


@flagged
def test_a_rebalance_killed_mid_apply_is_recovered_then_finished(minicloud, servers, tmp_path):
    conn = minicloud.conn()
    made = servers(5, host="compute1", prefix="rbk")
    journal = tmp_path / "j.sqlite"
    minicloud.set_fakevirt(live_migration_seconds=3)      # (the session fixture resets it after)
    killed = _cli(minicloud.env, journal, "rebalance", *HOSTS, "-f", "json", "--max-parallel", "2",
                  extra_env={"NOVAMOVE_FAULT": "drain.move:after:kill:2"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    refused = _cli(minicloud.env, journal, "rebalance", *HOSTS)
    assert refused.returncode == 4 and "novamove recover" in refused.stderr, refused.stderr
    rec = _cli(minicloud.env, journal, "recover", "-f", "json")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    mine = [r for r in json.loads(rec.stdout) if r["verb"] == "rebalance"]
    assert len(mine) == 1, rec.stdout
    # The second move was in flight when the process died: recover followed it to its end.
    assert re.search(r"[1-9]\d* move\(s\) left in flight followed to their end, [2-9]\d* landed",
                     mine[0]["summary"]), mine[0]["summary"]
    _settled(minicloud, [s.id for s in made])
    again = _cli(minicloud.env, journal, "rebalance", *HOSTS, "-f", "json", "--poll-interval", "0.3")
    assert again.returncode == 0, again.stdout + again.stderr
    rep = json.loads(again.stdout)
    after = placement_usage(conn)
    assert max(after.values()) <= rep["predicted"]["max_usage"] + TOLERANCE
