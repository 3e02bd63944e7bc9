"""The loop every batch verb shares (drain, undrain, apply: engine/batch/moves.py; evacuate:
engine/evacuate/): start what the caps allow, follow what is in flight with one listing per
poll, pause, and treat Ctrl-C, SIGTERM (systemd, kill, a CI runner) and SIGHUP (a closed terminal)
as "start nothing new, finish what is in flight"; a second one means "leave now", and what was in
flight is reported so (its journal intent stays open for a rerun or `novamove recover`).

The stop machinery (GracefulLoop: the signals, the first and second one, the peak, the pause)
is the campaign's too (engine/campaign/runner.py), so a long verb stops one way.

A CappedRunner subclass says how steps start (`_start_what_fits`), how in-flight work is followed (`_poll`),
what an interrupt does to it (`_on_stop`) and how a step's outcome is written (`_outcome`).
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
from typing import Any, Callable, Iterator, Optional

from novamove.engine import events
from novamove.retry import patiently

NOT_STARTED = events.NOT_STARTED    # interrupted before its turn
IN_FLIGHT = events.IN_FLIGHT        # left running by a hard exit: `novamove recover` / rerun picks it up

# Polling when a move is due. Once some steps have finished, a runner knows how long one takes
# here (the median of them); when an in-flight step reaches DUE_FRACTION of that, it polls every
# poll_interval x DUE_POLL until the step is seen finished, and otherwise waits until the next
# one is due (at most poll_interval x IDLE_POLL). A finished move is then seen sooner than at a
# fixed half-second (and its slot refilled as much sooner) for about as many listings
# (bench/drain_scale.py at N = 63: 1.37x the bound with a fixed half-second, 1.17-1.29x with this).
# Not yet due, the runner waits until the first move is due, however far off (at most
# NOT_DUE_MOST seconds): one listing serves every move in flight, and listings taken before any
# is due saw nothing finish (a campaign's drains on the minicloud listed migrations about 3 times
# per move while every pause before a due move was capped at poll_interval x IDLE_POLL; issue 24).
# Once due and not yet seen finished, the pause grows with how long it is overdue
# (OVERDUE_BACKOFF x that, from poll_interval x DUE_POLL up to poll_interval x IDLE_POLL): a
# move that runs long on a loaded cloud is not listed four times a second until it ends (a
# campaign's drains listed migrations about 4 times per move on the minicloud, now half as often),
# and one seen finished is still seen within half the time it overran. Due, it is listed every
# poll_interval at first (DUE_POLL 1, was 0.5): with moves whose times spread by a second or
# two, listings every quarter second found nothing most of the time (a simulation of the
# campaign bench's drains, 30 moves, 2 in flight, 5 +- 1 s each: 2.7 listings a move at 0.25 s
# and 2.1 at 0.5 s once not-due pauses are uncapped, 4.4 before either; a move is seen finished
# 0.1 s later on average).
DUE_FRACTION = 0.9
DUE_POLL = 1.0
IDLE_POLL = 2.0
OVERDUE_BACKOFF = 0.5
NOT_DUE_MOST = 10.0
# The longest single sleep of a pause: a loop told to stop with nothing in flight leaves soon.
PAUSE_SLICE = 0.2


class GracefulLoop:
    """How a long loop stops, once for every verb that has one (CappedRunner below: drain,
    undrain, apply, evacuate, unfence; the campaign, engine/campaign/runner.py):

    - the first Ctrl-C, SIGTERM or SIGHUP is `request_stop()`: start nothing new (the loop looks
      at `stop_requested` before it starts anything), finish what is in flight; the run is
      `interrupted`;
    - the second, once interrupted, is KeyboardInterrupt: leave now; `_left_in_flight` reports
      what was in flight so (with the way on), never "not started";
    - a stop no signal asked for (`request_stop(why)`: the campaign's stop-loss, a refused host)
      stops the starting but is no interrupt: the operator's first signal after it is still
      the graceful one.

    Also the loop's `peak` (most in flight at once) and its pause between polls. A user calls
    `_init_stop()`, runs its loop inside `with self._stoppable():` and provides `_announce`,
    `_in_flight`, `_stop_message` and `_left_in_flight` (and `clock`, `sleep`)."""

    INTERRUPT = "interrupt"                 # the word a signal's stop is announced and reported with
    STARTS = "starting nothing new"         # what a stop does to the loop, in its own words

    def _init_stop(self) -> None:
        self.stop_requested = False
        self.interrupted = False
        self.stopped_by = ""                # why the loop stopped starting (the first reason)
        self.peak = 0

    # -------------------------------------------------------------- what users provide

    def _announce(self, line: str) -> None:
        raise NotImplementedError

    def _in_flight(self) -> int:
        raise NotImplementedError

    def _stop_message(self) -> str:
        return "finishing what is in flight"

    def _left_in_flight(self) -> None:
        """A second signal: report what was in flight as in flight (the loop leaves now)."""

    # -------------------------------------------------------------- the machinery

    def request_stop(self, why: Optional[str] = None) -> None:
        """Start nothing new; finish (or abort) what is in flight. `why` None is a signal's."""
        why = why or self.INTERRUPT
        if why == self.INTERRUPT:
            self.interrupted = True
        if not self.stop_requested:
            self.stop_requested = True
            self.stopped_by = why
            self._announce(f"{why}: {self.STARTS}; {self._stop_message()} (Ctrl-C again to leave now)")

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_requested and self.interrupted:
            raise KeyboardInterrupt
        self.request_stop()

    def _install_signals(self) -> Callable[[], None]:
        """Ctrl-C, SIGTERM and SIGHUP all mean "stop gracefully"; the second one "leave now"."""
        return install_stop_signals(self._on_signal)

    @contextlib.contextmanager
    def _stoppable(self) -> Iterator[None]:
        """The loop's signal handlers for its life; a second signal reports what was in flight."""
        restore = self._install_signals()
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted = True
            self._left_in_flight()
            raise
        finally:
            restore()

    def _note_peak(self) -> None:
        self.peak = max(self.peak, self._in_flight())

    def _pause(self, seconds: float) -> None:
        """Wait until the next poll, in short sleeps; at once when stopping with nothing in
        flight, or when a stop is asked for meanwhile (the loop acts on it: an abort is sent
        now, not when the next move is due)."""
        end = self.clock() + seconds
        stopping = self.stop_requested
        while True:
            left = end - self.clock()
            if left <= 0 or (self.stop_requested and (not self._in_flight() or not stopping)):
                return
            self.sleep(min(left, PAUSE_SLICE))


class CappedRunner(GracefulLoop):
    """State and loop of a runner: `pending` steps, `inflight` work keyed by server id (each
    with `step`, `started` and `adopted`), `results` by server id in `order`."""

    rerun = "rerun the drain"        # the way on after a second Ctrl-C, in the in-flight detail

    def _init_loop(self, *, poll_interval: float, progress: Optional[Callable[[str], None]],
                   clock: Callable[[], float], sleep: Callable[[float], None], retries: int,
                   backoff: float, on_tick: Optional[Callable[[Any], None]] = None) -> None:
        self.poll_interval = poll_interval
        self.progress = progress or (lambda line: None)
        self.clock, self.sleep = clock, sleep
        self.backoff = backoff
        # Seconds of pauses _call spends riding out an unreachable API (1, 2, 4, 8 ... s).
        self.patience = float(sum(min(backoff * 2 ** i, 15.0) for i in range(retries)))
        self.on_tick = on_tick         # called every loop with the runner (a progress bar)
        self._init_stop()
        self.actions = 0               # changes made: moves started, confirms, reverts, aborts
        self._note_peak()              # moves adopted in flight count from the start
        self.durations: list[float] = []   # seconds each step this runner started took, finished

    @property
    def peak_in_flight(self) -> int:
        return self.peak

    # -------------------------------------------------------------- what subclasses provide

    def _outcome(self, step: Any, outcome: str, detail: str, m: Any = None) -> Any:
        raise NotImplementedError

    def _start_what_fits(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        raise NotImplementedError

    def _stop_message(self) -> str:
        return f"finishing {len(self.inflight)} in-flight move(s)"

    def _before_loop(self) -> None:
        """Once, before the first start."""

    def _keep_going(self) -> bool:
        """Every loop: False means "stop starting" (a lost lease)."""
        return True

    def _on_stop(self) -> None:
        """Once stopping: what happens to the work in flight (default: it is finished)."""

    # -------------------------------------------------------------- the stop machinery's hooks

    def _announce(self, line: str) -> None:
        self.progress(line)

    def _in_flight(self) -> int:
        return len(self.inflight)

    def _left_in_flight(self) -> None:
        for f in self.inflight.values():
            self.results[f.step.server_id] = self._outcome(
                f.step, IN_FLIGHT, f"left in flight by a second Ctrl-C: {self.rerun} or run "
                "`novamove recover`", f.migration)
        self.inflight.clear()

    # -------------------------------------------------------------- public

    def run(self) -> list:
        try:
            with self._stoppable():
                self._before_loop()
                self._loop()
        finally:
            for s in self.pending:
                self.results.setdefault(s.server_id, self._outcome(s, NOT_STARTED, "interrupted before its turn"))
        return [self.results[sid] for sid in dict.fromkeys(self.order) if sid in self.results]

    # -------------------------------------------------------------- loop

    def _loop(self) -> None:
        while self.pending or self.inflight:
            if not self._keep_going() and not self.stop_requested:
                self.request_stop()
            if self.inflight:
                self._poll()
            if self.stop_requested:
                for s in self.pending:
                    self.results[s.server_id] = self._outcome(s, NOT_STARTED, "interrupted before its turn")
                self.pending = []
                self._on_stop()
            else:
                self._start_what_fits()
            self._note_peak()
            if self.on_tick is not None:
                self.on_tick(self)
            if self.inflight or self.pending:
                # (Nothing in flight yet something pending: every pending step waits for a cap;
                # never spin.)
                self._pause(self._next_pause())

    def _next_pause(self) -> float:
        """Seconds until the next poll: sooner while a step is due to finish, later while none
        is (see DUE_FRACTION); poll_interval until the runner has seen one finish."""
        started = [f.started for f in self.inflight.values() if not f.adopted]
        if not self.durations or not started:
            return self.poll_interval
        typical = statistics.median_high(self.durations)
        due_in = min(started) + DUE_FRACTION * typical - self.clock()
        if due_in <= 0:
            return min(self.poll_interval * IDLE_POLL, max(self.poll_interval * DUE_POLL, -due_in * OVERDUE_BACKOFF))
        return min(max(self.poll_interval * IDLE_POLL, NOT_DUE_MOST), max(self.poll_interval * DUE_POLL, due_in))

    def _record_duration(self, f: Any, seconds: float) -> None:
        """A step this runner started finished as planned after `seconds` (adopted ones, whose
        start is not known, do not count)."""
        if not f.adopted:
            self.durations.append(seconds)

    # -------------------------------------------------------------- API calls with retries

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Ride out an API that is briefly unreachable (502/503/504, lost connection): reads
        only, or writes that set a state. The one retry helper, with this runner's clock."""
        def pause(seconds: float) -> None:
            self.progress(f"{what}: transient error, retrying in {seconds:.0f} s")
            self.sleep(seconds)
        return patiently(fn, what, patience=self.patience, sleep=pause)


def install_stop_signals(handler: Callable[[int, Any], None]) -> Callable[[], None]:
    """`handler` for SIGINT, SIGTERM and SIGHUP (a long verb stops the same way on each), in
    the main thread only; returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:
                pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return restore
