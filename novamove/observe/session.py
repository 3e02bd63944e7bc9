"""The observers one command asks for (--events, --metrics-textfile, --metrics-push), built
once and closed once: what `novamove.api.observing` hands the Ansible modules."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from novamove.observe.stream import EventStream, Redact


class Observation:
    """`observers` for an api verb's `observers=`; `close()` writes the metrics one last time
    and closes the stream. Opening the events file may raise OSError (nothing opened then)."""

    def __init__(self, events: Optional[str] = None, metrics_textfile: Optional[str] = None,
                 metrics_push: Optional[str] = None, redact: Optional[Redact] = None):
        self.observers: list[Any] = []
        self.stream: Optional[EventStream] = None
        self.metrics = None
        if events:
            self.stream = EventStream.open(events, redact=redact)
            self.observers.append(self.stream)
        if metrics_textfile or metrics_push:
            from novamove.observe.metrics import RunMetrics
            self.metrics = RunMetrics(textfile=metrics_textfile, push_url=metrics_push)
            self.observers.append(self.metrics)
        self._asked = (metrics_textfile, metrics_push)

    def doctor_findings(self, classes: Iterable[str]) -> None:
        if self.metrics is not None:
            self.metrics.doctor_findings(classes)

    def flush(self) -> None:
        """The metrics' last write (and push) of the run; closing flushes too."""
        if self.metrics is not None:
            self.metrics.flush()

    @property
    def given_up(self) -> list[str]:
        """One line per metrics output given up on so far (a write or push failed: the run
        went on without it; the log has the reason)."""
        out = []
        textfile, push = self._asked
        if textfile and self.metrics is not None and self.metrics.textfile is None:
            out.append(f"metrics textfile {textfile}: cannot write it; no metrics were written there")
        if push and self.metrics is not None and self.metrics.push_url is None:
            out.append(f"metrics push to {push} failed; no more metrics were pushed")
        return out

    def close(self) -> list[str]:
        """Flush and close; returns `given_up`."""
        self.flush()
        if self.stream is not None:
            self.stream.close()
        return self.given_up
