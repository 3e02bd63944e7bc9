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


# ------------------------------------------------------------------------------ maintenance campaigns

OUTCOME_STYLE = {"done": "green", "failed": "red", "refused": "red", "skipped": "yellow",
                 "not-started": "yellow", "interrupted": "yellow"}


def _res_text(r: dict) -> str:
    return f"{r.get('vcpus', 0):g} vCPU / {r.get('memory_mb', 0):g} MB / {r.get('disk_gb', 0):g} GB"


def campaign_plan_tables(plan: dict) -> list[Table]:
    """The dry run of a campaign (CampaignPlan.to_dict()): stages, then hosts."""
    stages = Table(title=f"campaign plan: stages of at most {plan['max_hosts']} host(s) out", header_style="bold")
    for col in ("stage", "hosts out", "moves", "capacity left (destinations)", "N+K"):
        stages.add_column(col)
    for st in plan["stages"]:
        moves = "\n".join(f"{m['server']}: {m['from']} -> {m['to']} ({m['mode']})" for m in st["moves"][:8])
        if len(st["moves"]) > 8:
            moves += f"\n... {len(st['moves']) - 8} more"
        left = "\n".join(f"{h}: {_res_text(r)}" for h, r in list(st["free_after"].items())[:8])
        if len(st["free_after"]) > 8:
            left += f"\n... {len(st['free_after']) - 8} more"
        verdict = "[green]fits[/]" if st["ok"] else f"[red]does not fit[/]: {st['problem']}"
        stages.add_row(str(st["stage"]), ", ".join(st["hosts"]), moves or "-", left or "-", verdict)
    hosts = Table(title="hosts in order", header_style="bold")
    for col in ("host", "stage", "servers", "moves", "stop", "skip", "estimate", "note"):
        hosts.add_column(col)
    for hp in plan["host_plans"]:
        hosts.add_row(hp["name"], str(hp["stage"] or "-"), str(hp["servers"]), str(hp["moves"]),
                      ", ".join(hp["stop"]) or "-", ", ".join(hp["skip"]) or "-",
                      f"{hp['estimate_seconds']:.0f} s" if hp["serviced"] else "-",
                      f"[yellow]not serviced[/]: {hp['why_not']}" if not hp["serviced"] else "")
    return [stages, hosts]


def campaign_table(report: dict) -> Table:
    """The final per-host table of a campaign run (CampaignReport.to_dict())."""
    table = Table(title=f"maintain (run {report['run_id']})", header_style="bold")
    for col in ("host", "result", "moved", "stopped", "hook", "gate", "check", "back", "seconds", "detail"):
        table.add_column(col)
    for r in report["results"]:
        style = OUTCOME_STYLE.get(r["outcome"], "")
        hook = "-" if r["hook_exit"] is None else f"exit {r['hook_exit']} ({r['hook_seconds']:.0f} s)"
        table.add_row(r["host"], f"[{style}]{r['outcome']}[/]" if style else r["outcome"], str(r["moved"]),
                      ", ".join(r["stopped"]) or "-", hook, r["gate"] or "-",
                      "-" if r["check_exit"] is None else f"exit {r['check_exit']}", str(r["moved_back"] or "-"),
                      f"{r['seconds']:.0f}" if r["seconds"] else "-", r["detail"] or "")
    return table


class CampaignView:
    """The live view of a campaign on stderr. On a terminal: an overall progress bar (hosts and
    servers done / total, in flight, failed, ETA) and one line per host in flight, under the
    scrolling event log. Elsewhere (pipes, CI): one plain line per event."""

    def __init__(self, enabled: bool = True, force_terminal: Optional[bool] = None):
        from rich.console import Console as _Console
        self.console = _Console(stderr=True, highlight=False, force_terminal=force_terminal)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._progress = None
        self._hosts_task = self._servers_task = None
        self._inflight_task = None

    def __enter__(self) -> "CampaignView":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), console=self.console, transient=False)
            self._progress.__enter__()
            self._hosts_task = self._progress.add_task("hosts", total=None)
            self._servers_task = self._progress.add_task("servers moved", total=None)
            self._inflight_task = self._progress.add_task("", total=None, start=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        import time as _time
        stamp = _time.strftime("%H:%M:%S")
        if self._progress is not None:
            self._progress.console.print(f"[dim]{stamp}[/] {text}")
        else:
            print(f"{stamp} {text}", file=sys.stderr, flush=True)

    def update(self, campaign) -> None:
        """Called by the campaign engine after every change of state."""
        if self._progress is None:
            return
        results = campaign.results.values()
        done = sum(r.outcome == "done" for r in results)
        failed = sum(r.outcome in ("failed", "refused") for r in results)
        self._progress.update(self._hosts_task, total=len(campaign.results), completed=done,
                              description=f"hosts (failed {failed})")
        self._progress.update(self._servers_task, total=max(campaign.servers_total, campaign.servers_done),
                              completed=campaign.servers_done)
        now = campaign.clock()
        parts = []
        if campaign.current:
            parts.append(f"{campaign.current}: drain")
        for o in campaign.out.values():
            extra = f" {now - o.hook_t0:.0f} s" if o.phase == "hook" and o.hook_t0 else ""
            parts.append(f"{o.host}: {o.phase}{extra}")
        self._progress.update(self._inflight_task, description="in flight: " + (", ".join(parts) or "none"))
