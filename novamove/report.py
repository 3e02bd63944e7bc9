"""Rendering results for people (rich tables) and programs (JSON, YAML). No API calls here."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Optional, Sequence

import yaml
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml")


def make_console() -> Console:
    """A console that never truncates table cells into "compu…" when output is not a terminal
    (pipes, logs, CI): there rich would assume 80 columns."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=200)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip()


def move_table(result) -> Table:
    """Before/after of one move."""
    table = Table(title=None, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("before")
    table.add_column("after")
    for key in ("host", "hypervisor_hostname", "status", "power_state", "flavor"):
        before = result.before.get(key)
        after = result.after.get(key)
        style = "bold" if before != after else ""
        table.add_row(key, str(before or "-"), f"[{style}]{after or '-'}[/]" if style else str(after or "-"))
    return table


def print_move(result, fmt: str, console: Optional[Console] = None) -> None:
    console = console or make_console()
    if fmt != "table":
        print(dump(result.to_dict(), fmt))
        return
    if result.before:
        console.print(move_table(result))
    details = [f"mode {result.mode}" if result.mode else None,
               f"strategy {result.strategy}" if result.strategy else None,
               f"migration {result.migration_id} ({result.migration_status})" if result.migration_id else None,
               f"other computes disabled for {result.isolation_seconds:.1f}s"
               if result.strategy == "isolate" and result.isolation_seconds else None,
               f"run {result.run_id}" if result.run_id else None]
    line = ", ".join(d for d in details if d)
    if line:
        console.print(f"[dim]{line}[/]", highlight=False)
    print(result.summary)


def rows_table(rows: Sequence[dict], columns: Iterable[str], title: Optional[str] = None) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    columns = list(columns)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return table


def print_rows(rows: Sequence[dict], columns: Iterable[str], fmt: str, empty: str = "nothing") -> None:
    if fmt != "table":
        print(dump(list(rows), fmt))
        return
    if not rows:
        print(empty)
        return
    make_console().print(rows_table(rows, columns))


def _bytes(n: Optional[int]) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def describe(snapshot) -> str:
    """One line for a progress Snapshot."""
    parts = [f"{snapshot.elapsed:5.1f}s", snapshot.phase]
    if snapshot.server_status:
        parts.append(f"server {snapshot.server_status}")
    if snapshot.task_state:
        parts.append(f"task {snapshot.task_state}")
    if snapshot.host:
        parts.append(f"on {snapshot.host}")
    if snapshot.migration_status:
        dest = f" -> {snapshot.dest}" if snapshot.dest else ""
        parts.append(f"migration {snapshot.migration_status}{dest}")
    if snapshot.memory_total_bytes and snapshot.memory_remaining_bytes is not None:
        parts.append(f"memory remaining {_bytes(snapshot.memory_remaining_bytes)} of "
                     f"{_bytes(snapshot.memory_total_bytes)}")
    if snapshot.disk_total_bytes and snapshot.disk_remaining_bytes is not None:
        parts.append(f"disk remaining {_bytes(snapshot.disk_remaining_bytes)} of "
                     f"{_bytes(snapshot.disk_total_bytes)}")
    return ", ".join(parts)


class ProgressDisplay:
    """The live display of a move on stderr: an updating line on a terminal, a line per change
    otherwise (logs, CI)."""

    def __init__(self, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = self.enabled and self.console.is_terminal
        self._status = None
        self._last_key = None

    def __enter__(self) -> "ProgressDisplay":
        if self.live:
            self._status = self.console.status("starting", spinner="dots")
            self._status.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def __call__(self, snapshot) -> None:
        if not self.enabled:
            return
        text = describe(snapshot)
        if self.live and self._status is not None:
            self._status.update(text)
            return
        key = (snapshot.phase, snapshot.server_status, snapshot.task_state, snapshot.host,
               snapshot.migration_status, snapshot.dest, snapshot.memory_remaining_bytes,
               snapshot.disk_remaining_bytes)
        if key != self._last_key:
            self._last_key = key
            print(f"novamove: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ evacuation

_EVAC_STYLE = {"evacuated": "green", "moved": "green", "planned": "cyan", "skipped": "yellow",
               "not-evacuated": "red", "failed": "red", "not-started": "yellow", "in-flight": "red"}


def evacuation_table(rep) -> Table:
    """One row per server of an EvacuateReport (novamove.engine.evacuate)."""
    title = f"{'plan: ' if rep.dry_run else ''}{rep.verb} {rep.host}"
    table = Table(title=title, header_style="bold")
    for col in ("server", "status", "from", "to", "result", "seconds", "detail"):
        table.add_column(col)
    status_of = {s.server_id: getattr(s, "status", "") for s in (rep.plan.steps if rep.plan else [])}
    for r in rep.results:
        style = _EVAC_STYLE.get(r.result, "")
        table.add_row(r.server_name, status_of.get(r.server_id, "") or "", r.source or "-", r.dest or "-",
                      f"[{style}]{r.result}[/]" if style else r.result,
                      f"{r.seconds:.0f}" if r.seconds else "", r.detail)
    return table


def print_evacuation(rep, fmt: str, console: Optional[Console] = None) -> None:
    """Table (or JSON/YAML) of an evacuate/unfence report, then its summary line."""
    if fmt != "table":
        print(dump(rep.to_dict(), fmt))
        return
    console = console or make_console()
    if rep.results:
        console.print(evacuation_table(rep))
    if rep.dry_run and rep.plan is not None and rep.plan.checks:
        checks = Table(title="pre-checks", header_style="bold")
        for col in ("check", "result", "detail"):
            checks.add_column(col)
        for c in rep.plan.checks:
            checks.add_row(c.name, "[green]ok[/]" if c.ok else "[yellow]warn[/]", c.detail)
        console.print(checks)
    for line in (rep.fence if rep.verb == "evacuate" else "", rep.service):
        if line:
            console.print(f"[dim]{line}[/]", highlight=False)
    extra = [f"run {rep.run_id}" if rep.run_id else None,
             f"power policy {rep.power}" if rep.verb == "evacuate" else None,
             None if rep.dry_run else f"peak {rep.peak_in_flight} in flight",
             f"{rep.api_requests} API requests", f"{rep.elapsed_seconds:.0f} s"]
    console.print(f"[dim]{', '.join(e for e in extra if e)}[/]", highlight=False)
    print(rep.summary)
