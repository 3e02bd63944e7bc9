"""The run frame (engine/frame.py) is the one place a run starts and finishes: the verbs that
used to do it by hand (a single move, wait, confirm/revert/abort/force-complete, recover's
break-lock) keep their journaled words through `frame.end`, and a run can no longer be left
"running" by an error the verb did not expect."""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.engine import recover as recovery
from novamove.engine.frame import RunFrame, mark_recovered
from novamove.engine.journal import Journal
from novamove.engine.single import operations
from novamove.engine.tags import tagged_reason

from fakenova import FakeNova


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.sqlite")


class Report:
    summary, ok, interrupted = "the report's summary", True, False


def test_the_verbs_own_words_are_journaled_however_the_block_ends(journal):
    with RunFrame(journal, "migrate", cloud=None, report=Report()) as frame:
        frame.end("failed", summary="its summary", error="its error")
    run = journal.get_run(frame.run_id)
    assert (run["status"], run["summary"], run["error"]) == ("failed", "its summary", "its error")

    with pytest.raises(KeyboardInterrupt):
        with RunFrame(journal, "wait", cloud=None, interrupt_error="frame's words") as frame:
            frame.end("interrupted", error="stopped waiting")
            raise KeyboardInterrupt
    run = journal.get_run(frame.run_id)
    assert (run["status"], run["error"]) == ("interrupted", "stopped waiting")

    with pytest.raises(RuntimeError):                     # the verb said nothing: the frame does
        with RunFrame(journal, "confirm", cloud=None) as frame:
            raise RuntimeError("boom")
    run = journal.get_run(frame.run_id)
    assert (run["status"], run["error"]) == ("failed", "boom")

    mark_recovered(journal, frame.run_id, "recovered: nothing to undo")
    assert journal.get_run(frame.run_id)["status"] == "recovered"


def test_a_read_failing_after_a_confirm_finishes_the_run_failed_not_running(journal):
    f = FakeNova()
    f.add("s1", "c2", status="VERIFY_RESIZE")
    f.confirm_resize = lambda sid: None

    def unreachable(sid):
        raise errors.Unreachable("get_server: the cloud API is unavailable (503)")
    f.get_server = unreachable
    with pytest.raises(errors.Unreachable):
        operations.confirm(f, journal, "s1")
    [run] = journal.runs()
    assert run["verb"] == "confirm" and run["status"] == "failed" and "503" in run["error"]
    [change] = [e for e in journal.events(run["id"]) if e.kind == "server.confirm"]
    assert change.state == "done"                         # the change itself stays journaled


def test_a_refused_change_is_journaled_failed_with_novas_words(journal):
    f = FakeNova()
    f.add("s1", "c2", status="VERIFY_RESIZE")

    def refused(sid):
        raise errors.PreconditionFailed("Conflict (409): instance is locked")
    f.confirm_resize = refused
    with pytest.raises(errors.PreconditionFailed):
        operations.confirm(f, journal, "s1")
    [run] = journal.runs()
    assert run["status"] == "failed" and run["error"] == "Conflict (409): instance is locked"


def test_break_lock_journals_a_recover_run_of_its_own(journal):
    f = FakeNova()
    svc = f.services["c3"]
    f.disable_service(svc, tagged_reason("0123456789ab", None))
    [report] = recovery.recover(f, journal, "0123456789ab", break_lock=True)
    assert report["summary"] == "broke run 0123456789ab's lock: re-enabled c3"
    assert f.services["c3"].enabled
    [run] = journal.runs()
    assert (run["verb"], run["status"], run["mode"], run["source"]) == ("recover", "ok", "break-lock",
                                                                        "0123456789ab")
    assert run["summary"] == report["summary"]
