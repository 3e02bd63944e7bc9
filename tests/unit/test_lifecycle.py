"""The one judge of a move (engine/lifecycle.py): pure, shared by migrate/wait and drains."""

from __future__ import annotations

import pytest

from novamove.engine import lifecycle as lc
from novamove.model import Migration, Server


def srv(host="c2", status="ACTIVE", task=None):
    return Server(id="s", name="vm", status=status, host=host, task_state=task)


def mig(status, kind="live-migration"):
    return Migration(id="1", server_id="s", source_host="c1", dest_host="c2", status=status, migration_type=kind)


@pytest.mark.parametrize("mode,server,migration,verdict", [
    ("live", srv(), mig("completed"), lc.LANDED),
    ("live", srv(host="c1"), mig("completed"), lc.FAILED),           # rolled back: completed, yet on source
    ("live", srv(host="c3"), mig("completed"), lc.ELSEWHERE),        # another host than the target
    ("live", srv(task="migrating"), mig("error"), lc.WAIT),          # a stale "error" mid-move
    ("live", srv(host="c1"), mig("error"), lc.FAILED),
    ("live", srv(status="ERROR", task="migrating"), mig("running"), lc.FAILED),
    ("live", srv(task="migrating"), mig("running"), lc.WAIT),
    ("cold", srv(status="VERIFY_RESIZE"), mig("finished", "migration"), lc.VERIFY),
    ("cold", srv(status="VERIFY_RESIZE", host="c3"), mig("finished", "migration"), lc.ELSEWHERE),
    ("cold", srv(status="SHUTOFF"), mig("confirmed", "migration"), lc.LANDED),
    ("cold", srv(task="resize_confirming", status="VERIFY_RESIZE"), mig("confirming", "migration"), lc.WAIT),
    ("cold", srv(), None, lc.WAIT),
])
def test_judge(mode, server, migration, verdict):
    assert lc.judge(mode, server, migration, "c2", source="c1") == verdict


def test_the_reason_is_waited_for_briefly():
    assert not lc.reason_due(100.0, 101.0, None)
    assert lc.reason_due(100.0, 101.0, "NoValidHost")
    assert lc.reason_due(100.0, 100.0 + lc.REASON_PATIENCE, None)
