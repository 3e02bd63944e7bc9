"""Small helpers for acceptance tests (import as `from cloudtest import ...`)."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_until(proc, needle: str, lines: list, timeout: float = 180) -> None:
    """Read proc's progress (stderr) into `lines` until a line holds `needle`; else kill it and
    fail with what it printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if needle in line:
            return
    proc.kill()
    raise AssertionError(f"never saw {needle!r}:\n" + "\n".join(lines))


# ------------------------------------------------------------------ --events / --metrics-textfile

def check_stream(journal, lines: list[dict]) -> int:
    """The event stream of one or more runs against their journal: every line valid against the
    shipped JSON Schema; per run, the same event ids with the same kinds and targets, the
    stream's last state of each the journal's, a run.start first and the journal's status last.
    Returns how many journal events the stream covered."""
    import jsonschema

    from novamove.observe import stream

    validator = jsonschema.Draft202012Validator(stream.schema(), format_checker=jsonschema.FormatChecker())
    for x in lines:
        validator.validate(x)
    count = 0
    runs = sorted({x["run_id"] for x in lines})
    assert runs, "the stream is empty"
    for run_id in runs:
        journal_events = journal.events(run_id)
        seen = [x for x in lines if x["record"] == "event" and x["run_id"] == run_id]
        assert stream.last_states(seen) == {e.id: e.state for e in journal_events}
        assert {x["event_id"]: (x["kind"], x["target"]) for x in seen} == \
            {e.id: (e.kind, e.target) for e in journal_events}
        run_lines = [x for x in lines if x["record"] == "run" and x["run_id"] == run_id]
        assert run_lines[0]["kind"] == "run.start" and run_lines[-1]["kind"] == "run.finish"
        assert run_lines[-1]["status"] == journal.get_run(run_id)["status"]
        count += len(journal_events)
    return count


def check_run_stream(journal_path, events_path, run_id: str | None = None) -> list[dict]:
    """check_stream on an --events FILE and the journal it mirrors; with `run_id`, that run
    must be in the stream. Returns the lines."""
    from novamove.engine.journal import Journal
    from novamove.observe import stream

    t0 = time.monotonic()
    lines = stream.read(str(events_path))
    assert check_stream(Journal(journal_path), lines) > 0
    if run_id is not None:
        assert run_id in {x["run_id"] for x in lines}
    print(f"[events] {len(lines)} lines checked against the journal in {time.monotonic() - t0:.2f} s")
    return lines


def check_textfile(path, journal_path=None, run_ids=None) -> str:
    """promtool check metrics accepts an --metrics-textfile; with `journal_path`, its move
    counters equal the journal's moves by verb, kind and result (of the runs `run_ids`, default
    every run of the journal: the command that wrote the textfile). Returns the text."""
    import shutil
    import subprocess

    from prometheus_client.parser import text_string_to_metric_families

    t0 = time.monotonic()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (scripts/system-deps.sh installs Debian's prometheus)"
    with open(path, "rb") as f:
        done = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    text = Path(path).read_text()
    if journal_path is not None:
        from novamove.engine.journal import Journal
        from novamove.observe.metrics import MOVE_KINDS

        counted = {(s.labels["verb"], s.labels["kind"], s.labels["result"]): s.value
                   for family in text_string_to_metric_families(text) if family.name == "novamove_moves"
                   for s in family.samples if s.name == "novamove_moves_total"}
        journal = Journal(journal_path)
        expected: dict = {}
        for run in journal.runs(limit=1000):
            if run_ids is not None and run["id"] not in run_ids:
                continue
            for e in journal.events(run["id"]):
                if e.kind in MOVE_KINDS and e.state in ("done", "failed"):
                    key = (run["verb"], e.kind, e.state)
                    expected[key] = expected.get(key, 0) + 1
        assert counted == expected, (counted, expected)
    print(f"[metrics] textfile checked (promtool, counters) in {time.monotonic() - t0:.2f} s")
    return text
