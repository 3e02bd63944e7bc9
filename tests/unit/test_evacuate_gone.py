"""A server deleted by its owner in the middle of its evacuation is "gone", the others go on
(engine/evacuate/kind.py)."""

from __future__ import annotations

from novamove.engine.evacuate import evacuate
from novamove.engine.journal import Journal
from test_evacuate import failed_host_cloud, fast


def test_a_server_deleted_mid_evacuation_is_gone_and_the_others_finish(tmp_path):
    nova = failed_host_cloud()
    seen = {"n": 0}

    def delete_v0():
        seen["n"] += 1
        if seen["n"] == 2 and "v0" in nova.servers:
            del nova.servers["v0"]               # its owner deletes it while Nova rebuilds it
    nova.on_list = delete_v0
    rep = evacuate(nova, "c3", journal=Journal(tmp_path / "j.sqlite"), fenced=True, **fast())
    by = {r.server_id: r for r in rep.results}
    assert by["v0"].result == "gone", by["v0"]
    assert all(by[s].result == "evacuated" for s in ("v1", "v2", "v3", "v4", "off", "err", "a1"))
    assert "1 gone" in rep.summary and rep.exit_code != 1          # not a failure of novamove's


def test_a_server_deleted_before_its_turn_is_gone_not_skipped(tmp_path):
    """Deleted by its owner while the evacuations before it run (--max-parallel 1): nothing
    left to evacuate, "gone" as a drain says, not "skipped"."""
    nova = failed_host_cloud()

    def delete_v4():
        if "v4" in nova.servers and any(r["server"] != "v4" for r in nova.records):
            del nova.servers["v4"]               # the first evacuation runs; v4's turn is to come
    nova.on_list = delete_v4
    rep = evacuate(nova, "c3", journal=Journal(tmp_path / "j.sqlite"), fenced=True, max_parallel=1, **fast())
    by = {r.server_id: r for r in rep.results}
    assert by["v4"].result == "gone" and "no longer exists" in by["v4"].detail, by["v4"]
    assert all(by[s].result == "evacuated" for s in ("v0", "v1", "v2", "v3", "off", "err", "a1"))
    assert "1 gone" in rep.summary and rep.exit_code != 1          # (paused, busy: not evacuable)
