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


# ------------------------------------------------------------------ next_step: the one "what now"

def move(mode="live", m=None, **flags):
    mv = lc.Move(mode, "c2", "c1", migration=m)
    for k, v in flags.items():
        setattr(mv, k, v)
    return mv


@pytest.mark.parametrize("mv,server,expected", [
    (move(), None, lc.Next.WAIT),                                            # no record yet
    (move(), srv(status="ERROR"), lc.Next.FAILED),                           # ERROR before any record
    (move(m=mig("running")), None, lc.Next.WAIT),                            # the record is enough
    (move(m=mig("running"), abort_wanted=True), None, lc.Next.ABORT),
    (move(m=mig("running"), abort_wanted=True, abort_sent=True), None, lc.Next.WAIT),
    (move(m=mig("completed")), None, lc.Next.READ_SERVER),                   # over: the server decides
    (move(m=mig("completed")), srv(), lc.Next.LANDED),
    (move(m=mig("completed")), srv(status="MIGRATING"), lc.Next.WAIT),       # not settled yet
    (move(m=mig("completed")), srv(host="c3"), lc.Next.ELSEWHERE),
    (move(m=mig("completed")), srv(host="c1"), lc.Next.FAILED),              # rolled back
    (move(m=mig("error")), None, lc.Next.READ_SERVER),
    (move(m=mig("error")), srv(task="migrating"), lc.Next.WAIT),             # stale "error" mid-move
    (move(m=mig("error")), srv(host="c1"), lc.Next.FAILED),
    (move(m=mig("cancelled"), abort_wanted=True, abort_sent=True), None, lc.Next.ABORTED),
    (move("cold", mig("finished", "migration")), srv(status="VERIFY_RESIZE"), lc.Next.CONFIRM),
    (move("cold", mig("finished", "migration")), srv(status="ACTIVE"), lc.Next.WAIT),    # settling
    (move("cold", mig("finished", "migration"), confirm_sent=True), srv(status="VERIFY_RESIZE"), lc.Next.WAIT),
    (move("cold", mig("finished", "migration")), srv(status="VERIFY_RESIZE", host="c3"), lc.Next.REVERT),
    (move("cold", mig("finished", "migration"), abort_wanted=True), srv(status="VERIFY_RESIZE"), lc.Next.REVERT),
    (move("cold", mig("reverted", "migration"), revert_sent=True), None, lc.Next.ABORTED),
    (move("cold", mig("confirmed", "migration"), confirm_sent=True), srv(status="SHUTOFF"), lc.Next.LANDED),
    (move(m=mig("completed"), abort_sent=True), srv(host="c1"), lc.Next.ABORTED),   # abort took late
])
def test_next_step(mv, server, expected):
    assert lc.next_step(mv, server) is expected


def test_phases_follow_what_was_sent():
    mv = move("cold")
    assert mv.phase is lc.Phase.SUBMITTED
    mv.migration = mig("migrating", "migration")
    lc.next_step(mv)
    assert mv.phase is lc.Phase.MIGRATING
    mv.sent(lc.Next.CONFIRM)
    assert (mv.phase, mv.confirm_sent) == (lc.Phase.CONFIRMING, True)
    mv.sent(lc.Next.REVERT)
    assert mv.phase is lc.Phase.REVERTING
    live = move()
    live.sent(lc.Next.ABORT)
    assert (live.phase, live.abort_sent) == (lc.Phase.ABORTING, True)
