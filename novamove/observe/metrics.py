"""`--metrics-textfile PATH` and `--metrics-push URL`: the run's Prometheus metrics.

RunMetrics is a journal observer: it keeps the last state of every event it was told of and
derives the series from that, so the counters equal the journal's counts (a provisional
"failed" that a read-back reopens is not counted twice). The textfile is replaced atomically
(prometheus_client writes a temporary file and renames it) at most every WRITE_EVERY seconds
while the run goes, and at its end; a push goes to the Pushgateway at the same moments.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from novamove.engine import events

LOG = logging.getLogger(__name__)
WRITE_EVERY = 2.0      # seconds between two textfile writes / pushes while a run goes
JOB = "novamove"

# A move: one server's move POST, whatever the verb (its outcome marks the event done/failed).
MOVE_KINDS = frozenset({events.SERVER_MIGRATE, events.DRAIN_MOVE, events.EVACUATE_SERVER})
# A host is out of service from its disable's "done" until an enable of the same host is done.
DISABLE_KINDS = frozenset({events.SERVICE_DISABLE, events.DRAIN_DISABLE, events.MAINTAIN_DISABLE,
                           events.EVACUATE_DISABLE})
ENABLE_KINDS = frozenset({events.SERVICE_ENABLE, events.DRAIN_ENABLE, events.MAINTAIN_ENABLE,
                          events.UNFENCE_ENABLE, events.DOCTOR_ENABLE})
OUTCOMES = ("done", "failed")
DURATION_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)


@dataclass
class _Move:
    verb: str
    kind: str
    state: str


def _seconds(start: str, end: Optional[str]) -> Optional[float]:
    if not end:
        return None
    try:
        return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
    except ValueError:
        return None


def is_stall(kind: str) -> bool:
    """A stall note (and the action taken on it): kinds ending in `.stall` or `.stall_*`."""
    last = kind.rsplit(".", 1)[-1]
    return last == "stall" or last.startswith("stall_") or last.startswith("stall-")


class RunMetrics:
    """A journal observer (callable with one record) and a prometheus_client collector."""

    def __init__(self, textfile: Optional[str] = None, push_url: Optional[str] = None,
                 clock=time.monotonic):
        self.textfile, self.push_url, self._clock = textfile, push_url, clock
        self.__name__ = "metrics"
        self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram("novamove_move_duration_seconds",
                                  "Seconds from a move's journaled intent to its outcome.",
                                  ["verb", "result"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.verbs: dict[str, str] = {}              # run id -> verb
        self.moves: dict[int, _Move] = {}            # event id -> its last state
        # Outcomes counted, never taken back: a Prometheus counter only grows, so a move whose
        # provisional failure is reopened and then done counts once under each result.
        self.outcomes: dict[tuple[str, str, str], int] = {}
        self.counted: set[tuple[int, str]] = set()
        self.timed: set[int] = set()                 # moves whose duration is observed
        self.out: dict[str, str] = {}                # host -> run id that took it out of service
        self.campaign_hosts: dict[tuple[str, str], str] = {}   # (run, host) -> outcome
        self.stalls = 0
        self.findings: dict[str, int] = {}
        self._written = -WRITE_EVERY
        self.registry.register(self)

    # ------------------------------------------------------------------ observer

    def __call__(self, record: dict) -> None:
        if record["record"] == "run":
            run = record["run"]
            self.verbs[run["id"]] = run["verb"]
            self.write(force=record["kind"] == "run.finish")
            return
        ev = record["event"]
        verb = self.verbs.get(ev.run_id, "unknown")
        if ev.kind in MOVE_KINDS:
            self.moves[ev.id] = _Move(verb, ev.kind, ev.state)
            if ev.state in OUTCOMES and (ev.id, ev.state) not in self.counted:
                self.counted.add((ev.id, ev.state))
                key = (verb, ev.kind, ev.state)
                self.outcomes[key] = self.outcomes.get(key, 0) + 1
            if ev.state in OUTCOMES and ev.id not in self.timed:
                seconds = _seconds(ev.at, ev.ended_at)
                if seconds is not None:
                    self.timed.add(ev.id)
                    self.duration.labels(verb, ev.state).observe(seconds)
        elif ev.state == "done" and ev.target and ev.kind in DISABLE_KINDS:
            self.out[ev.target] = ev.run_id
        elif ev.state == "done" and ev.target and ev.kind in ENABLE_KINDS:
            self.out.pop(ev.target, None)
        elif ev.kind == events.MAINTAIN_HOST and ev.target:
            self.campaign_hosts[(ev.run_id, ev.target)] = str(ev.data.get("outcome"))
        if ev.state == "note" and is_stall(ev.kind):
            self.stalls += 1
        self.write()

    def doctor_findings(self, classes: Iterable[str]) -> None:
        """`doctor`'s findings (they are a report, not journal changes): count by class."""
        self.findings = {}
        for c in classes:
            self.findings[c] = self.findings.get(c, 0) + 1

    # ------------------------------------------------------------------ collector

    def collect(self):
        moves = CounterMetricFamily("novamove_moves", "Moves that reached an outcome, by verb, journal "
                                    "kind and result (done or failed).", labels=["verb", "kind", "result"])
        flight = sum(1 for m in self.moves.values() if m.state == "intent")
        for key, n in sorted(self.outcomes.items()):
            moves.add_metric(list(key), n)
        yield moves
        yield GaugeMetricFamily("novamove_moves_in_flight", "Moves started and not yet ended.", value=flight)
        yield GaugeMetricFamily("novamove_hosts_out_of_service",
                                "Computes this run disabled and has not re-enabled yet.", value=len(self.out))
        hosts = GaugeMetricFamily("novamove_campaign_hosts", "Hosts of a maintenance campaign by outcome.",
                                  labels=["result"])
        outcomes = list(self.campaign_hosts.values())
        for result in (events.HOST_DONE, events.HOST_FAILED):
            hosts.add_metric([result], outcomes.count(result))
        yield hosts
        yield CounterMetricFamily("novamove_stalls", "Stalled moves noted (and acted on) by the run.",
                                  value=self.stalls)
        findings = GaugeMetricFamily("novamove_doctor_findings", "Drift doctor found, by class.",
                                     labels=["class"])
        for cls, n in sorted(self.findings.items()):
            findings.add_metric([cls], n)
        yield findings

    # ------------------------------------------------------------------ output

    def write(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._written < WRITE_EVERY:
            return
        self._written = now
        if self.textfile:
            try:
                from prometheus_client import write_to_textfile
                write_to_textfile(self.textfile, self.registry)
            except Exception as exc:  # noqa: BLE001 -- metrics never fail a run
                LOG.warning("--metrics-textfile %s: cannot write (%s); no more metrics written there",
                            self.textfile, exc)
                self.textfile = None
        if self.push_url:
            try:
                from prometheus_client import push_to_gateway
                push_to_gateway(self.push_url, job=JOB, registry=self.registry, timeout=5)
            except Exception as exc:  # noqa: BLE001 -- a Pushgateway gone must not stop the night
                LOG.warning("--metrics-push %s: push failed (%s); no more pushes this run", self.push_url, exc)
                self.push_url = None

    def flush(self) -> None:
        """The last write, when the command ends (whatever happened to the run)."""
        self.write(force=True)

    def text(self) -> str:
        from prometheus_client import generate_latest
        return generate_latest(self.registry).decode()
