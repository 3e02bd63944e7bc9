"""README's first command ends in scripts/demo.sh: it must really move a server."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from cloudtest import REPO

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module", autouse=True)
def demo_servers_removed_after(minicloud):
    """The demo's servers stay in a `make demo` cloud (the user's); in the tests' own cloud they
    would wander onto hosts later tests need empty (drains move them), so they go afterwards."""
    yield
    from pathlib import Path
    users = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "novamove" / "minicloud"
    if minicloud.manager.state.resolve() == users.resolve():
        return
    conn = minicloud.manager.connection("minicloud")
    made = [s for s in conn.compute.servers(all_projects=True) if s.name.startswith("demo-")]
    for s in made:
        conn.compute.delete_server(s.id)
    for s in made:
        conn.compute.wait_for_delete(s, wait=120, interval=1)


def _what_happened_to_demo_servers(minicloud) -> str:
    """Evidence for a failure: every demo server, deleted ones too, with its instance actions."""
    conn = minicloud.conn()
    lines = []
    for deleted in (False, True):
        for s in conn.compute.servers(all_projects=True, deleted_only=deleted, name="^demo-"):
            actions = [f"{a.action}@{a.start_time} by {a.user_id} ({a.request_id})"
                       for a in conn.compute.server_actions(s.id)]
            lines.append(f"{'deleted ' if deleted else ''}{s.name} {s.id} {s.status} on "
                         f"{s.compute_host}: {', '.join(actions)}")
    return "\n".join(lines)


def test_demo_moves_demo_1_to_another_host(minicloud):
    env = {**os.environ, "NOVAMOVE_MINICLOUD_DIR": str(minicloud.manager.state)}
    out = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, (out.stdout[-1500:] + out.stderr[-1500:] + "\n"
                                 + _what_happened_to_demo_servers(minicloud))
    m = re.search(r"demo-1 was migrated from (\S+) to (\S+) and has a status of ACTIVE", out.stdout)
    assert m and m.group(1) != m.group(2), out.stdout
    assert minicloud.manager.demo_servers()["demo-1"] == m.group(2)
    # demo-2 and demo-3 were not touched by the move: they are where the demo booted them.
    demo = minicloud.manager.demo_servers()
    assert {"demo-1", "demo-2", "demo-3"} <= set(demo), demo
    assert (demo["demo-2"], demo["demo-3"]) == (minicloud.computes[1], minicloud.computes[2]), demo


def test_demo_reboots_only_missing_demo_servers(minicloud):
    manager = minicloud.manager
    before = manager.ensure_demo_servers(3)
    conn = minicloud.conn()
    [gone] = list(conn.compute.servers(all_projects=True, name="^demo-2$"))
    minicloud.delete([gone])
    after = manager.ensure_demo_servers(3)
    assert set(after) >= {"demo-1", "demo-2", "demo-3"}
    assert after["demo-2"] == minicloud.computes[1]       # booted again where demo-2 belongs
    assert after["demo-1"] == before["demo-1"] and after["demo-3"] == before["demo-3"]
    again = list(conn.compute.servers(all_projects=True, name="^demo-2$"))
    assert [s.id for s in again] != [gone.id] and len(again) == 1
