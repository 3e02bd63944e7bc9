"""The campaign stops the way every long verb does (engine/runner.py's stop machinery): the first
Ctrl-C, SIGTERM or SIGHUP starts no new host and finishes the hosts out; the second leaves now,
the hosts out reported in flight (interrupted, with the command that continues them), never
"not started"."""

from __future__ import annotations

import signal

import pytest

from novamove import errors
from novamove.engine import campaign as camp
from novamove.engine.batch import drain as drainmod
from novamove.engine.campaign import Options, run_campaign
from novamove.engine.journal import Journal

from fakenova import FakeNova

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                                  ids=["INT", "TERM", "HUP"])


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(camp.common, "POLL", 0.01)
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.01)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.sqlite")


def fleet():
    f = FakeNova()
    for i in range(2):
        f.add(f"a{i}", "c1")
    f.add("b0", "c2")
    f.add("d0", "c3")
    return f


def opts(**kw):
    base = dict(hook="sleep 0.2", max_hosts=1, poll_interval=0.01, gate_timeout=5, gate="heartbeat",
                order="given")
    base.update(kw)
    return Options(**base)


def deliver(sig, times: int = 1) -> None:
    """What the signal does, delivered now (the handler the campaign installed for it)."""
    handler = signal.getsignal(sig)
    assert callable(handler) and handler not in (signal.default_int_handler,)
    for _ in range(times):
        handler(sig, None)


@SIGNALS
def test_a_first_signal_starts_no_new_host_and_finishes_the_one_out(journal, sig):
    f = fleet()
    lines: list[str] = []
    before = signal.getsignal(sig)

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("c3: hook started"):
            deliver(sig)
    rep = run_campaign(f, journal, ["c3", "c2", "c1"], options=opts(), progress=say)
    outcomes = {r.host: (r.outcome, r.detail) for r in rep.results}
    assert outcomes["c3"][0] == "done"                      # in flight: finished
    assert outcomes["c2"] == ("not-started", "not started (interrupted)")
    assert outcomes["c1"] == ("not-started", "not started (interrupted)")
    assert rep.interrupted and rep.stopped_by == "interrupted" and not rep.ok
    assert rep.exit_code == errors.EXIT_INTERRUPTED
    assert any(line.startswith("interrupted: starting no new host") and "Ctrl-C again" in line
               for line in lines)
    assert all(s.enabled for s in f.services.values())     # the host out came back
    assert journal.get_run(rep.run_id)["status"] == "interrupted"
    assert signal.getsignal(sig) == before                  # the handlers are put back


@SIGNALS
def test_a_second_signal_leaves_now_and_reports_the_host_out_in_flight(journal, sig):
    f = fleet()
    seen = []
    before = signal.getsignal(sig)

    def say(line: str) -> None:
        if line.startswith("c3: hook started"):
            deliver(sig, times=2)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(f, journal, ["c3", "c2", "c1"], options=opts(), progress=say,
                     on_update=seen.append)
    results = seen[-1].results
    assert results["c3"].outcome == "interrupted"          # in flight, never "not started"
    assert "left hook" in results["c3"].detail and "maintain --resume" in results["c3"].detail
    assert results["c2"].outcome == results["c1"].outcome == "not-started"
    assert seen[-1].interrupted and seen[-1].stop_requested
    run = journal.unfinished_runs()[0]
    assert run["status"] == "interrupted" and "second Ctrl-C" in run["error"]
    assert not f.services["c3"].enabled                    # left out, for --resume
    assert signal.getsignal(sig) == before


def test_a_signal_after_a_stop_loss_is_still_the_first_one(journal):
    """A stop that no signal asked for (the stop-loss) does not make the operator's first
    Ctrl-C a "leave now": it marks the run interrupted and the hosts out still finish."""
    f = fleet()
    stopped = []

    def say(line: str) -> None:
        if line.startswith("stop-loss") and not stopped:
            stopped.append(line)
            try:
                deliver(signal.SIGINT)
            except KeyboardInterrupt:                       # (kept from ending the test session)
                stopped.append("left now")
    rep = run_campaign(f, journal, ["c3", "c2", "c1"], progress=say,
                       options=opts(max_hosts=2, hook='if test "$NOVAMOVE_HOST" = c3; then sleep 0.5; exit 3; fi; sleep 1',
                                    max_failed_hosts=1))
    assert stopped == [stopped[0]]                          # the signal raised nothing
    assert rep.interrupted and rep.stopped_by.startswith("stop-loss")
    outcomes = {r.host: r.outcome for r in rep.results}
    assert outcomes == {"c3": "failed", "c2": "done", "c1": "not-started"}
