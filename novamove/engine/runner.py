"""The loop every batch verb shares (drain, undrain, apply: engine/batch/moves.py; evacuate:
engine/evacuate/): start what the caps allow, follow what is in flight with one listing per
poll, pause, and treat Ctrl-C, SIGTERM (systemd, kill, a CI runner) and SIGHUP (a closed terminal)
as "start nothing new, finish what is in flight"; a second one means "leave now", and what was in
flight is reported so (its journal intent stays open for a rerun or `novamove recover`).

A subclass says how steps start (`_start_what_fits`), how in-flight work is followed (`_poll`),
what an interrupt does to it (`_on_stop`) and how a step's outcome is written (`_outcome`).
"""

from __future__ import annotations

import signal
import statistics
import threading
from typing import Any, Callable, Optional

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
DUE_FRACTION = 0.9
DUE_POLL = 0.5
IDLE_POLL = 2.0


class CappedRunner:
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
        self.stop_requested = False
        self.interrupted = False
        self.actions = 0               # changes made: moves started, confirms, reverts, aborts
        self.peak_in_flight = len(self.inflight)
        self.durations: list[float] = []   # seconds each step this runner started took, finished

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

    # -------------------------------------------------------------- public

    def request_stop(self) -> None:
        """What Ctrl-C does: start nothing new; finish (or abort) what is in flight."""
        if not self.stop_requested:
            self.stop_requested = True
            self.interrupted = True
            self.progress(f"interrupt: starting nothing new; {self._stop_message()} "
                          "(Ctrl-C again to leave now)")

    def run(self) -> list:
        restore = self._install_signals()
        try:
            self._before_loop()
            self._loop()
        except KeyboardInterrupt:
            self.interrupted = True
            for f in self.inflight.values():
                self.results[f.step.server_id] = self._outcome(
                    f.step, IN_FLIGHT, f"left in flight by a second Ctrl-C: {self.rerun} or run "
                    "`novamove recover`", f.migration)
            self.inflight.clear()
            raise
        finally:
            restore()
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
            self.peak_in_flight = max(self.peak_in_flight, len(self.inflight))
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
        return min(self.poll_interval * IDLE_POLL, max(self.poll_interval * DUE_POLL, due_in))

    def _record_duration(self, f: Any, seconds: float) -> None:
        """A step this runner started finished as planned after `seconds` (adopted ones, whose
        start is not known, do not count)."""
        if not f.adopted:
            self.durations.append(seconds)

    def _pause(self, seconds: float) -> None:
        end = self.clock() + seconds
        while True:
            left = end - self.clock()
            if left <= 0 or (self.stop_requested and not self.inflight):
                return
            self.sleep(min(left, 0.2))

    def _install_signals(self) -> Callable[[], None]:
        """Ctrl-C, SIGTERM and SIGHUP all mean "stop gracefully"; the second one "leave now"."""
        def on_signal(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.request_stop()
        return install_stop_signals(on_signal)

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
