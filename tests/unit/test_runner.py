"""The loop every batch verb shares (engine/runner.py): drains and evacuations alike stop
gracefully on Ctrl-C, SIGTERM and SIGHUP, and ride out an unreachable API with one helper."""

import signal

import pytest

from novamove import errors
from novamove.engine import runner as runner_mod
from novamove.engine.batch.moves import BatchRunner
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


class _Step:
    def __init__(self, started, adopted=False):
        self.started, self.adopted = started, adopted


@pytest.mark.parametrize("kind", RUNNERS)
def test_a_runner_polls_sooner_when_a_move_is_due_and_later_when_none_is(kind):
    runner = RUNNERS[kind]()
    now = [100.0]
    runner.clock = lambda: now[0]
    runner.poll_interval = 0.5
    runner.inflight = {"a": _Step(started=99.0)}
    assert runner._next_pause() == 0.5               # nothing finished yet: the plain interval
    runner.durations = [3.0, 6.0, 3.2, 2.0, 3.4]     # the median: 3.2 s
    # due at 99 + 0.9 x 3.2 = 101.88: not yet: wait until then (a listing before saw nothing end)
    assert runner._next_pause() == pytest.approx(1.88)
    runner.durations = [30.0, 60.0, 32.0]            # long moves: listed at least every NOT_DUE_MOST
    assert runner._next_pause() == pytest.approx(runner_mod.NOT_DUE_MOST)
    runner.durations = [3.0, 6.0, 3.2, 2.0, 3.4]
    now[0] = 101.2                                   # due in 0.68 s: wait exactly that
    assert runner._next_pause() == pytest.approx(0.68)
    now[0] = 101.5                                   # due in 0.38 s: not sooner than the interval
    assert runner._next_pause() == pytest.approx(0.5)
    now[0] = 102.0                                   # just due: every poll_interval until seen
    assert runner._next_pause() == pytest.approx(0.5)
    now[0] = 103.08                                  # 1.2 s overdue: half that
    assert runner._next_pause() == pytest.approx(0.6)
    now[0] = 110.0                                   # long overdue: no longer than the idle bound
    assert runner._next_pause() == pytest.approx(0.5 * 2.0)
    # a step adopted from an earlier run has no known start: it does not make anything due
    runner.inflight = {"b": _Step(started=102.5, adopted=True)}
    assert runner._next_pause() == 0.5


def test_a_finished_move_teaches_the_runner_its_duration_but_an_adopted_one_does_not():
    runner = RUNNERS["drain"]()
    runner._record_duration(_Step(0.0), 3.5)
    runner._record_duration(_Step(0.0, adopted=True), 0.4)
    assert runner.durations == [3.5]


def test_refills_within_a_second_share_one_services_listing():
    listed = []

    class Cloud:
        def list_compute_services(self):
            listed.append(1)
            return []
    runner = BatchRunner(Cloud(), None, "r1", [], max_parallel=1, max_per_host=1)
    now = [10.0]
    runner.clock = lambda: now[0]
    runner._services()
    now[0] = 11.9
    runner._services()
    assert len(listed) == 1
    now[0] = 12.5                                    # older than SERVICES_FRESH: read again
    runner._services()
    assert len(listed) == 2


def test_the_campaign_stops_by_the_runners_machinery_not_its_own():
    """One stop machinery (engine/runner.py GracefulLoop) for the batch runners and the
    campaign: none of them has signals, a stop or a pause of its own."""
    from novamove.engine.campaign.runner import Campaign
    from novamove.engine.runner import CappedRunner, GracefulLoop
    own = ("_on_signal", "_install_signals", "request_stop", "_stoppable", "_pause", "_note_peak")
    for cls in (Campaign, CappedRunner, BatchRunner, EvacuationRunner):
        assert issubclass(cls, GracefulLoop)
        for name in own:
            assert getattr(cls, name) is getattr(GracefulLoop, name), (cls.__name__, name)


def test_a_stop_asked_for_during_a_long_pause_ends_it_so_the_loop_acts_on_it():
    # A pause until the next move is due may be long (NOT_DUE_MOST): a Ctrl-C (abort what is
    # in flight) is acted on at once, not when that move is due.
    runner = RUNNERS["drain"]()
    now = [0.0]
    runner.clock = lambda: now[0]
    runner.inflight = {"a": _Step(started=0.0)}

    def sleep(seconds):
        now[0] += seconds
        if now[0] >= 1.0:
            runner.stop_requested = True
    runner.sleep = sleep
    runner._pause(8.0)
    assert now[0] == pytest.approx(1.0)
    runner._pause(0.6)                     # stopping already, moves in flight: the pause is kept
    assert now[0] == pytest.approx(1.6)
