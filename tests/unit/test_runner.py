"""The loop every batch verb shares (engine/runner.py): drains and evacuations alike stop
gracefully on Ctrl-C, SIGTERM and SIGHUP, and ride out an unreachable API with one helper."""

import signal

import pytest

from novamove import errors
from novamove.engine.batch import BatchRunner
from novamove.engine.evacuate import EvacuationRunner


RUNNERS = {
    "drain": lambda: BatchRunner(None, None, "r1", [], max_parallel=1, max_per_host=1),
    "evacuate": lambda: EvacuationRunner(None, None, "r2", "c1", [], power="auto", max_parallel=1,
                                         max_per_host=1, expected={}),
}


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_every_runner_stops_gracefully_on_a_signal_and_leaves_on_the_second(kind, sig):
    runner = RUNNERS[kind]()
    lines = []
    runner.progress = lines.append
    before = signal.getsignal(sig)
    restore = runner._install_signals()
    try:
        handler = signal.getsignal(sig)
        assert handler is not before                  # installed for this signal
        handler(sig, None)                            # what the signal does, delivered now
        assert runner.stop_requested and runner.interrupted and "starting nothing new" in lines[0]
        with pytest.raises(KeyboardInterrupt):
            handler(sig, None)
    finally:
        restore()
    assert signal.getsignal(sig) == before


@pytest.mark.parametrize("kind", RUNNERS)
def test_every_runner_rides_out_an_unreachable_api_with_the_one_retry_helper(kind):
    runner = RUNNERS[kind]()
    calls, pauses = [], []
    runner.sleep = pauses.append

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise errors.Unreachable("cannot reach the cloud API")
        return "ok"
    assert runner._call(flaky, "servers") == "ok" and pauses == [1.0, 2.0]
    with pytest.raises(errors.Unreachable):
        runner._call(lambda: (_ for _ in ()).throw(errors.Unreachable("down")), "servers")
