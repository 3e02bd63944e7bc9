"""The run frame: one run's life in the journal, for every verb.

A verb opens a frame; the frame starts the run (id, verb, process, start time), counts its
requests and time, and, however the block ends, finishes the run exactly once:

- normal end: "ok", "failed" or "interrupted" from the report the verb filled in, and the earlier
  runs this one continued (`frame.continues`) are marked "recovered";
- a second Ctrl-C (KeyboardInterrupt): "interrupted", the report's summary kept;
- any other exception: "failed" with the error (what the run changed stays journaled for
  `novamove recover` or a rerun);
- unless the verb settled the outcome itself (`frame.end(status, summary=, error=)`): a verb
  whose words for an interrupt or a failure are its own (a single move names the migration
  that continues in Nova) says them there, and the frame writes them, however the block ends.

A run that finishes another one (recover) marks it with `mark_recovered`.

So "started and finished by hand" exists in one place, and a verb cannot forget either.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Optional

from novamove.engine import events


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def requests_made(cloud: Any) -> int:
    """Requests the adapter has sent so far (0 for fakes that do not count)."""
    counter = getattr(cloud, "requests", None)
    return int(getattr(counter, "count", 0) or 0) if counter is not None else 0


class RunFrame:
    """`with RunFrame(journal, verb, cloud=cloud, source=...) as frame:` ... `frame.report = r`.

    `report` is any object with `summary`, `ok` and `interrupted` (and, when it has them,
    `api_requests` and `elapsed_seconds`, filled in at the end)."""

    def __init__(self, journal: Any, verb: str, *, cloud: Any, run_id: Optional[str] = None,
                 report: Any = None, interrupt_error: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic, t0: Optional[float] = None,
                 requests0: Optional[int] = None, resume: bool = False, **fields: Any) -> None:
        self.journal, self.verb, self.cloud = journal, verb, cloud
        self.run_id = run_id or new_run_id()
        self.report = report
        self.fields = fields
        self.resume = resume              # continue run_id (journaled already) in this process
        self.interrupt_error = interrupt_error
        self.clock = clock
        self.continues: list[str] = []      # earlier runs this one finishes (marked recovered)
        self.on_exit: list[Callable[[], None]] = []   # e.g. a lease's release
        self.status: Optional[str] = None
        self.ending: Optional[tuple[str, Optional[str], Optional[str]]] = None  # set by end()
        # (A verb that read the cloud to plan before its run began passes when it began.)
        self.t0 = clock() if t0 is None else t0
        self.requests0 = requests_made(cloud) if requests0 is None else requests0

    def __enter__(self) -> "RunFrame":
        if self.resume:
            self.journal.resume_run(self.run_id)
        else:
            self.journal.start_run(self.run_id, self.verb, cloud=getattr(self.cloud, "cloud_name", None),
                                   **self.fields)
        return self

    def end(self, status: str, *, summary: Optional[str] = None, error: Optional[str] = None) -> None:
        """The run's outcome, said by the verb: the frame finishes the run with it on leaving the
        block, whether the block returns or raises (the last word counts)."""
        self.ending = (status, summary, error)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            for release in self.on_exit:
                release()
        finally:
            if self.ending is not None:
                status, summary, error = self.ending
                self._write_finish(status, summary, error)
                if exc_type is None:
                    self._mark_continued()
            elif exc_type is None:
                self._finish_normally()
            elif issubclass(exc_type, KeyboardInterrupt):
                if self.report is not None and hasattr(self.report, "interrupted"):
                    self.report.interrupted = True
                self._finish(events.RUN_INTERRUPTED, error=self.interrupt_error)
            else:
                self._finish(events.RUN_FAILED, error=str(exc)[:500])
        return False

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def _finish_normally(self) -> None:
        r = self.report
        if r is not None:
            if hasattr(r, "api_requests"):
                r.api_requests = requests_made(self.cloud) - self.requests0
            if hasattr(r, "elapsed_seconds"):
                r.elapsed_seconds = self.elapsed
        self._finish(run_status(r))
        self._mark_continued()

    def _mark_continued(self) -> None:
        for earlier in dict.fromkeys(self.continues):
            if earlier != self.run_id:
                mark_recovered(self.journal, earlier, f"continued by {self.verb} run {self.run_id}")

    def _finish(self, status: str, error: Optional[str] = None) -> None:
        summary = getattr(self.report, "summary", None) if self.report is not None else None
        self._write_finish(status, summary, error)

    def _write_finish(self, status: str, summary: Optional[str], error: Optional[str]) -> None:
        self.status = status
        self.journal.finish_run(self.run_id, status, summary=summary, error=error)


def mark_recovered(journal: Any, run_id: str, summary: str) -> None:
    """An earlier run is over: finished by `recover` or continued by a later run."""
    journal.finish_run(run_id, events.RUN_RECOVERED, summary=summary)


def run_status(report: Any) -> str:
    """The journal status of a run that ended normally: interrupted, ok or failed."""
    if report is None:
        return events.RUN_OK
    if getattr(report, "interrupted", False):
        return events.RUN_INTERRUPTED
    return events.RUN_OK if report.ok else events.RUN_FAILED
