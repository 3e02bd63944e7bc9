"""The drain's progress snapshot (what the progress bar draws) adds rounds up honestly."""

from types import SimpleNamespace

from novamove.engine.batch.common import FAILED, MOVED, RETRY, SKIPPED
from novamove.engine.batch.moves import _InFlight
from novamove.engine.batch.report import _result, batch_progress
from novamove.planner import DrainStep


def _step(n, dest="c2"):
    return DrainStep(server_id=f"s{n}", server_name=f"vm{n}", source="c1", dest=dest, mode="live")


def test_counts_add_earlier_rounds_and_the_running_one():
    earlier = {"s1": _result(_step(1), MOVED, ""), "s2": _result(_step(2), RETRY, "busy"),
               "s9": _result(_step(9, dest=None), SKIPPED, "no destination")}
    runner = SimpleNamespace(
        results={"s3": _result(_step(3), FAILED, "boom")},
        inflight={"s2": _InFlight(_step(2), None, 0.0, set())},
        pending=[_step(4), _step(5)])
    p = batch_progress("drain", ["c1"], earlier, runner, elapsed=20.0)
    # s9 had no destination: not a move. s2 is in flight again (its retry is not final).
    assert (p.total, p.moved, p.failed, p.in_flight, p.waiting, p.other) == (5, 1, 1, 1, 2, 0)
    assert p.in_flight_names == ("vm2",)
    assert p.eta == 20.0 / 2 * 3          # 2 done in 20 s, 3 to go


def test_no_eta_before_anything_finished_and_final_snapshot_without_runner():
    runner = SimpleNamespace(results={}, inflight={}, pending=[_step(1)])
    assert batch_progress("drain", ["c1"], {}, runner, 5.0).eta is None
    done = batch_progress("undrain", ["c1"], {"s1": _result(_step(1), MOVED, "")}, None, 9.0)
    assert (done.total, done.moved, done.in_flight, done.waiting, done.eta) == (1, 1, 0, 0, 0.0)
