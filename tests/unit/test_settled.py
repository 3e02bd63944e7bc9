"""'Already there' means settled there; confirm/revert/abort/force-complete judge the end state."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.engine.single import operations
from novamove.engine.journal import Journal
from test_migrate_engine import FakeCloud, run


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)


def test_already_there_and_settled_is_a_no_op(journal):
    cloud = FakeCloud()
    cloud.boot("vm1", host="compute2")
    result = run(cloud, journal, "vm1", "compute2")
    assert result.ok and not result.changed


@pytest.mark.parametrize("status,task_state,match", [
    ("ACTIVE", "migrating", "busy"),
    ("ERROR", None, "ERROR, not settled"),
])
def test_already_there_but_not_settled_is_refused(journal, status, task_state, match):
    cloud = FakeCloud()
    s = cloud.boot("vm1", host="compute2", status=status)
    cloud.servers[s.id] = s.replace(task_state=task_state)
    with pytest.raises(errors.PreconditionFailed, match=match):
        run(cloud, journal, "vm1", "compute2")


def test_already_there_awaiting_confirmation_is_confirmed(journal):
    cloud = FakeCloud()
    s = cloud.boot("vm1", host="compute1")
    cloud.migrate_server(s.id, host="compute2")
    for _ in range(4):
        cloud.get_server(s.id)                      # Nova carries the cold move to VERIFY_RESIZE
    assert cloud.servers[s.id].status == "VERIFY_RESIZE"
    result = run(cloud, journal, "vm1", "compute2")
    assert result.ok and result.changed and "awaiting confirmation" in result.summary
    assert cloud.servers[s.id].status == "ACTIVE" and cloud.servers[s.id].host == "compute2"


def test_a_revert_that_did_not_take_is_a_failure(journal):
    cloud = FakeCloud()
    s = cloud.boot("vm1", host="compute1")
    cloud.migrate_server(s.id, host="compute2")
    for _ in range(4):
        cloud.get_server(s.id)
    # The fake's revert leaves the server where it is: Nova "did" nothing.
    cloud.revert_resize = lambda sid: cloud.servers.__setitem__(sid, cloud.servers[sid].replace(status="ACTIVE"))
    result = operations.revert(cloud, journal, s.id, timeout=5)
    assert not result.ok and result.exit_code == errors.EXIT_FAILED and "did not take" in result.error


def test_a_confirm_that_left_the_server_in_error_is_a_failure(journal):
    cloud = FakeCloud()
    s = cloud.boot("vm1", host="compute1")
    cloud.migrate_server(s.id, host="compute2")
    for _ in range(4):
        cloud.get_server(s.id)
    cloud.confirm_resize = lambda sid: cloud.servers.__setitem__(sid, cloud.servers[sid].replace(status="ERROR"))
    result = operations.confirm(cloud, journal, s.id, timeout=5)
    assert not result.ok and "ERROR" in result.error
    assert journal.runs()[0]["status"] == "failed"
