"""A change's Nova request id goes with its journal entry (novamove.requestids hands it over)."""

import pytest

from novamove import errors, requestids
from novamove.engine.journal import Journal


def test_the_request_id_of_a_change_is_journaled(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", "migrate")
    requestids.note("req-stale")                  # from before: not this change's
    with j.change("r1", "server.migrate", "s1"):
        requestids.note("req-1")
    with j.change("r1", "server.confirm", "s1"):
        pass                                      # nothing answered: no id
    assert j.request_ids("r1") == ["req-1"]


def test_a_failed_change_keeps_the_id_of_the_error(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", "migrate")
    exc = errors.NovamoveError("HTTP 500")
    exc.request_id = "req-err"
    with pytest.raises(errors.NovamoveError):
        with j.change("r1", "server.migrate", "s1"):
            raise exc
    (ev,) = [e for e in j.events("r1") if e.kind == "server.migrate"]
    assert ev.state == "failed" and ev.data["request_id"] == "req-err"
