"""Rendering results for people (tables) and programs (JSON, YAML, value, CSV), like cliff's
formatters. No API calls here; rich and yaml are imported only when something is printed, so
`novamove --help` stays fast.

Every verb that prints rows goes through `print_rows` (lists), `print_move` (one move) or
`print_batch` (drain, undrain, plan, apply). Options, as in python-openstackclient:
  -f table|json|yaml|value|csv|shell   -c COLUMN (repeatable)   --noindent (compact JSON)
  --prefix PREFIX (-f shell)   --sort-column COLUMN (repeatable)   --sort-ascending|--sort-descending
-c and --sort-column take novamove's key (source_compute) or the `openstack` plugin's column
name for it ("Source Compute": osc_column); both name the same field.
Tables never truncate a value: they are as wide as their longest row, on a terminal or not.
Keys follow openstacksdk attribute names where one exists (source_compute, dest_compute,
migration_type, compute_host, availability_zone, host...); docs/cli.md lists the schema.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

# The document of one move and its key names (MoveResult.to_dict() is move_document).
from novamove.documents import FACT_KEYS, MOVE_KEYS, move_document, renamed  # noqa: E402,F401

FORMATS = ("table", "json", "yaml", "value", "csv", "shell")

# ---------------------------------------------------------------------------- the schema
# novamove key -> openstacksdk attribute name, per kind of object.
STEP_KEYS = {"source": "source_compute", "dest": "dest_compute", "host": "compute_host"}
LEFT_KEYS = {"name": "server_name", "host": "compute_host"}   # servers a drain left on its host
MIGRATION_KEYS = {"type": "migration_type", "source": "source_compute", "dest": "dest_compute"}
HOST_KEYS = {"name": "host", "zone": "availability_zone"}
RUN_KEYS = {"source": "source_compute", "dest": "dest_compute"}

# The columns each kind of row has (what -c accepts), default table columns first.
HOST_COLUMNS = ("host", "hypervisor_hostname", "availability_zone", "status", "state", "disabled_reason",
                "vcpus", "memory_mb", "disk_gb", "vcpus_used", "memory_mb_used", "disk_gb_used")
HOST_TABLE = HOST_COLUMNS[:9]
MIGRATION_COLUMNS = ("id", "uuid", "server_id", "migration_type", "source_compute", "dest_compute",
                     "status", "created_at", "updated_at")
MIGRATION_TABLE = ("id", "server_id", "migration_type", "source_compute", "dest_compute", "status",
                   "updated_at")
RUN_TABLE = ("id", "started_at", "verb", "server_name", "source_compute", "dest_compute", "mode",
             "strategy", "status")
RUN_COLUMNS = RUN_TABLE + ("finished_at", "cloud", "server_id", "pid", "process", "summary", "error",
                            "user_name", "machine", "command", "lease_until", "taken_over_user",
                            "taken_over_machine", "taken_over_command", "taken_over_at")
RECOVER_TABLE = ("run_id", "verb", "server", "status_before", "summary")
RECOVER_COLUMNS = RECOVER_TABLE + ("services_enabled", "services_left", "server_action", "server_state",
                                   "in_flight", "notes")
STEP_COLUMNS = ("server_id", "server_name", "source_compute", "dest_compute", "mode", "result", "detail",
                "migration_id", "compute_host", "seconds", "stall")
STEP_TABLE = ("server_name", "mode", "source_compute", "dest_compute", "result", "seconds", "detail")
PLAN_STEP_COLUMNS = ("step", "server_id", "server_name", "status", "mode", "source_compute", "dest_compute",
                     "vcpus", "memory_mb", "disk_gb", "groups", "skip_reason")
PLAN_STEP_TABLE = ("step", "server_name", "status", "mode", "source_compute", "dest_compute", "vcpus",
                   "memory_mb", "disk_gb", "skip_reason")
LEFT_COLUMNS = ("server_id", "server_name", "compute_host", "status", "reason", "accepted")
BATCH_COLUMNS = tuple(dict.fromkeys(STEP_COLUMNS + PLAN_STEP_COLUMNS))
MOVE_TABLE_FACTS = ("compute_host", "hypervisor_hostname", "status", "power_state", "flavor")

RESULT_STYLE = {"moved": "green", "skipped": "yellow", "failed": "red", "aborted": "yellow",
                "not-started": "yellow", "in-flight": "red", "gone": "dim"}


def move_fields(result_class) -> tuple[str, ...]:
    """The keys of a move's document (what -c accepts for migrate, back, wait, abort...)."""
    import dataclasses
    return tuple(MOVE_KEYS.get(f.name, f.name) for f in dataclasses.fields(result_class))



def error_line(result) -> str:
    """The one-line error of a failed move, with Nova's request ID of the last call it made
    (x-openstack-request-id, what to look for in Nova's logs) when there is one."""
    text = result.error or result.summary or "failed"
    ids = [i for i in (getattr(result, "request_ids", None) or []) if i]
    return f"{text} (request ID {ids[-1]})" if ids else text


def host_rows(rows: Iterable[Mapping]) -> list[dict]:
    return [renamed(r, HOST_KEYS) for r in rows]


def migration_rows(rows: Iterable[Mapping]) -> list[dict]:
    return [renamed(r, MIGRATION_KEYS) for r in rows]


def campaign_by(row: Mapping) -> str:
    """" by alice@bastion1; taken over by bob@bastion2 at T": who started a campaign and who
    resumed it last (`campaign status`'s header line); "" when the journal does not know."""
    text = f" by {row['started_by']}" if row.get("started_by") else ""
    return text + (f"; taken over by {taken_over(row)}" if row.get("taken_over_by") else "")


def taken_over(row: Mapping) -> Optional[str]:
    return f"{row['taken_over_by']} at {row['taken_over_at']}" if row.get("taken_over_by") else None


def run_rows(rows: Iterable[Mapping]) -> list[dict]:
    return [renamed(r, RUN_KEYS) for r in rows]


def plan_step_rows(plan_dict: Mapping) -> list[dict]:
    """Rows of a plan (from planner.plan_to_dict): one per server, moves numbered."""
    out, n = [], 0
    for s in plan_dict.get("steps", []):
        n += 1 if s.get("dest") else 0
        need = s.get("need") or {}
        out.append({"step": n if s.get("dest") else None, "server_id": s.get("server_id"),
                    "server_name": s.get("server_name"), "status": s.get("status"),
                    "mode": s.get("mode"), "source_compute": s.get("source"),
                    "dest_compute": s.get("dest"), "vcpus": need.get("vcpus"),
                    "memory_mb": need.get("memory_mb"), "disk_gb": need.get("disk_gb"),
                    "groups": list(s.get("groups") or []), "skip_reason": s.get("skip_reason")})
    return out


def batch_document(report) -> dict:
    """A BatchReport (drain, undrain, apply) or an EvacuateReport (evacuate, unfence) as
    JSON-ready data with SDK key names: what the CLI's -f json, the Ansible modules and OSC show.
    Takes the report or its to_dict()."""
    doc = dict(report) if isinstance(report, Mapping) else report.to_dict()
    doc["results"] = [renamed(r, STEP_KEYS) for r in doc.get("results", [])]
    if "left" in doc:
        doc["left"] = [renamed(x, LEFT_KEYS) for x in doc.get("left") or []]
    if doc.get("plan"):
        plan = dict(doc["plan"])
        plan["steps"] = plan_step_rows(plan)
        doc["plan"] = plan
    return doc


# ---------------------------------------------------------------------------- output options

ABBREVIATIONS = {"id": "ID", "uuid": "UUID", "az": "AZ", "mb": "MB", "gb": "GB", "vcpus": "VCPUs",
                 "pid": "PID"}
# The `openstack` plugin's column names that are not osc_column(key) (novamove/osc/v1.py):
# lower-cased name -> the novamove keys it may stand for, first available wins.
OSC_ALIASES = {"server uuid": ("server_id",), "type": ("migration_type", "mode")}


def osc_column(key: str) -> str:
    """The OSC column name of a `novamove -c` key: words title-cased, abbreviations upper
    (source_compute -> "Source Compute", run_id -> "Run ID")."""
    return " ".join(ABBREVIATIONS.get(w, w.capitalize()) for w in key.split("_"))


def column_key(name: str, available: Sequence[str]) -> Optional[str]:
    """The novamove key `name` stands for among `available`: the key itself, or its plugin
    column name (any case), or None."""
    if name in available:
        return name
    folded = name.strip().lower()
    for key in available:
        if key.lower() == folded or osc_column(key).lower() == folded:
            return key
    for key in OSC_ALIASES.get(folded, ()):
        if key in available:
            return key
    return None


@dataclass(frozen=True)
class Output:
    """How to print: the -f, -c, --noindent, --prefix and --sort-column of the command line."""
    fmt: str = "table"
    columns: tuple[str, ...] = ()
    noindent: bool = False
    prefix: str = ""
    sort_columns: tuple[str, ...] = ()
    sort_descending: bool = False

    def check(self, available: Iterable[str]) -> "Output":
        """Refuse an unknown -c or --sort-column COLUMN (a one-line UsageError) before anything
        is done; a plugin column name ("Source Compute") becomes its novamove key."""
        from dataclasses import replace
        from novamove.errors import UsageError
        available = list(available)
        resolved = {}
        for option, names in (("-c", self.columns), ("--sort-column", self.sort_columns)):
            keys = []
            for name in names:
                key = column_key(name, available)
                if key is None:
                    raise UsageError(f"unknown column {name!r} ({option}); available: {', '.join(available)}")
                keys.append(key)
            resolved[option] = tuple(keys)
        return replace(self, columns=resolved["-c"], sort_columns=resolved["--sort-column"])


def output_from(fmt: Any, meta: Mapping) -> Output:
    """An Output from a format name and the output options the command line stored."""
    from novamove.errors import UsageError
    if meta.get("sort_ascending") and meta.get("sort_descending"):
        raise UsageError("--sort-ascending and --sort-descending exclude each other: give one")
    return Output(fmt or "table", tuple(meta.get("columns") or ()), bool(meta.get("noindent")),
                  meta.get("prefix") or "", tuple(meta.get("sort_columns") or ()),
                  bool(meta.get("sort_descending")))


def as_output(fmt: Any = None) -> Output:
    """An Output from an Output, or from a format name plus the -c/--noindent/... of the
    running command (so verbs that only pass `fmt` get every option)."""
    if isinstance(fmt, Output):
        return fmt
    click = sys.modules.get("click")
    ctx = click.get_current_context(silent=True) if click else None
    meta = ctx.meta.get("novamove.output", {}) if ctx is not None else {}
    return output_from(fmt, meta)


def sorted_rows(rows: Sequence[Mapping], out: Output) -> list:
    """The rows in --sort-column order (stable, first column first, as cliff sorts); a missing
    value sorts last, numbers before text."""
    rows = list(rows)
    for key in reversed(out.sort_columns):
        def order(row, key=key):
            v = row.get(key)
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            return (v is None, 0 if number else 1, v if number else _text(v))
        rows.sort(key=order, reverse=out.sort_descending)
        if out.sort_descending:      # a missing value still last
            rows.sort(key=lambda r, key=key: r.get(key) is None)
    return rows


# ---------------------------------------------------------------------------- primitives

def dump(data: Any, fmt: str, noindent: bool = False) -> str:
    if fmt == "json":
        if noindent:
            return json.dumps(data, default=str)
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    import yaml
    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False,
                          default_flow_style=False, width=10**6).rstrip()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def make_console(stderr: bool = False):
    """A console for lines (not tables): never wraps or crops a line when not a terminal."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False, emoji=False)
    return Console(stderr=stderr, width=10**4, highlight=False, emoji=False)


def print_table(table, file=None) -> None:
    """Print a rich Table exactly as wide as its content needs (at least the terminal's
    width on a terminal): a narrow terminal or a pipe never truncates a cell."""
    import shutil
    from rich.console import Console
    stream = file or sys.stdout
    probe = Console(file=io.StringIO(), width=10**6, color_system=None)
    need = probe.measure(table).maximum
    term = shutil.get_terminal_size((80, 24)).columns if stream.isatty() else 0
    console = Console(file=stream, width=max(need, term, 10), highlight=False, emoji=False)
    console.print(table, crop=False, soft_wrap=False)


def rows_table(rows: Sequence[Mapping], columns: Iterable[str], title: Optional[str] = None,
               styles: Optional[Mapping[str, Mapping[str, str]]] = None):
    """A table of rows; cells are plain text (no rich markup is interpreted in values);
    `styles` maps column -> value -> style."""
    from rich.table import Table
    from rich.text import Text
    table = Table(title=title, show_header=True, header_style="bold")
    columns = list(columns)
    for col in columns:
        table.add_column(col, no_wrap=True, overflow="ignore")
    for row in rows:
        cells = []
        for c in columns:
            text = _text(row.get(c))
            style = (styles or {}).get(c, {}).get(text, "")
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    return table


def _selected(rows: Sequence[Mapping], columns: Sequence[str], out: Output) -> list[str]:
    return list(out.columns) if out.columns else list(columns)


def _emit_rows(rows: Sequence[Mapping], cols: Sequence[str], out: Output) -> None:
    """value / csv rendering of rows (cliff's)."""
    if out.fmt == "value":
        for r in rows:
            print(" ".join(_text(r.get(c)) for c in cols))
        return
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow([r.get(c) if isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                         else _text(r.get(c)) for c in cols])
    sys.stdout.write(buf.getvalue())


def print_rows(rows: Sequence[Mapping], columns: Iterable[str], fmt: Any = "table", empty: str = "nothing",
               title: Optional[str] = None, styles: Optional[Mapping] = None) -> None:
    """A list: `columns` are the default table columns; -c picks others. JSON/YAML print every
    key of each row (only the -c ones when given)."""
    out = as_output(fmt)
    rows = sorted_rows(rows, out)
    cols = _selected(rows, list(columns), out)
    if out.fmt in ("json", "yaml"):
        data = [{c: r.get(c) for c in cols} if out.columns else dict(r) for r in rows]
        print(dump(data, out.fmt, out.noindent))
    elif out.fmt in ("value", "csv"):
        _emit_rows(rows, cols, out)
    elif not rows:
        print(empty)
    else:
        print_table(rows_table(rows, cols, title, styles))


def print_one(doc: Mapping, fmt: Any = "table") -> None:
    """One object (cliff's ShowOne): a field/value table, or the values one per line."""
    out = as_output(fmt)
    keys = list(out.columns) if out.columns else list(doc)
    if out.fmt in ("json", "yaml"):
        print(dump({k: doc.get(k) for k in keys}, out.fmt, out.noindent))
    elif out.fmt == "value":
        for k in keys:
            print(_text(doc.get(k)))
    elif out.fmt == "csv":
        _emit_rows([doc], keys, out)
    elif out.fmt == "shell":
        print(shell_lines(doc, keys, out.prefix), end="")
    else:
        print_table(rows_table([{"field": k, "value": doc.get(k)} for k in keys], ["field", "value"]))


def shell_lines(doc: Mapping, keys: Sequence[str], prefix: str = "") -> str:
    """cliff's shell formatter: one `PREFIXname="value"` line per field (":" and "-" in a name
    become "_"), for `eval`. Beyond cliff, \\, $ and ` are escaped too, so eval never expands
    a value; a missing value is "" and a list or mapping is JSON."""
    lines = []
    for key in keys:
        name = key.lower().replace(" ", "_").replace(":", "_").replace("-", "_")
        value = _text(doc.get(key))
        for ch in ("\\", '"', "$", "`"):
            value = value.replace(ch, "\\" + ch)
        lines.append(f'{prefix}{name}="{value}"\n')
    return "".join(lines)


# ---------------------------------------------------------------------------- one move

def move_table(result):
    """Before/after of one move (changed values in bold)."""
    from rich.table import Table
    from rich.text import Text
    before = renamed(result.before or {}, FACT_KEYS)
    after = renamed(result.after or {}, FACT_KEYS)
    table = Table(title=None, show_header=True, header_style="bold")
    for col in ("", "before", "after"):
        table.add_column(col, no_wrap=True, overflow="ignore")
    for key in MOVE_TABLE_FACTS:
        b, a = before.get(key), after.get(key)
        table.add_row(key, Text(_text(b) or "-"), Text(_text(a) or "-", style="bold" if b != a else ""))
    return table


def print_move(result, fmt: Any = "table", console=None) -> None:
    """One move's result: before/after table, details and summary; JSON/YAML/value/csv and -c
    print its document (move_document)."""
    out = as_output(fmt)
    if out.fmt != "table" or out.columns:
        print_one(move_document(result), out)
        return
    if result.before:
        print_table(move_table(result))
    details = [f"mode {result.mode}" if result.mode else None,
               f"strategy {result.strategy}" if result.strategy else None,
               f"migration {result.migration_id} ({result.migration_status})" if result.migration_id else None,
               f"other computes disabled for {result.isolation_seconds:.1f}s"
               if result.strategy == "isolate" and result.isolation_seconds else None,
               f"run {result.run_id}" if result.run_id else None]
    line = ", ".join(d for d in details if d)
    if line:
        (console or make_console()).print(line, style="dim", markup=False)
    print(result.summary)


# ---------------------------------------------------------------------------- batches

def checks_rows(plan_dict: Mapping) -> list[dict]:
    rows = [{"check": c["name"], "result": "ok" if c["ok"] else "warn", "detail": c.get("detail", "")}
            for c in plan_dict.get("checks", [])]
    rows.append({"check": "caps", "result": "ok",
                 "detail": f"max {plan_dict.get('max_parallel')} in flight, {plan_dict.get('max_per_host')} "
                           "per source/destination host"})
    return rows


def plan_document(plan) -> dict:
    """A DrainPlan (from api.plan_drain / api.load_plan) as a batch document (verb "plan")."""
    from novamove.planner import plan_to_dict
    data = plan_to_dict(plan)
    data["steps"] = plan_step_rows(data)
    moves = sum(1 for s in data["steps"] if s["dest_compute"])
    hosts = list(plan.sources)
    return {"verb": "plan", "hosts": hosts, "run_id": None, "dry_run": True, "ok": True, "changed": False,
            "exit_code": 0, "summary": f"plan for {', '.join(hosts)}: {moves} to move, "
                                       f"{len(data['steps']) - moves} skipped (dry run: nothing changed)",
            "service": "", "interrupted": False, "peak_in_flight": 0, "api_requests": 0,
            "elapsed_seconds": 0.0, "plan": data, "results": []}


def figure_rows(doc: Mapping) -> list[dict]:
    """A rebalance report's figures: before, as the plan predicted them, as read back."""
    names = (("max_usage", "max host usage %"), ("spread", "usage spread (points)"),
             ("hosts_empty", "hosts empty"), ("servers", "servers"))
    parts = [doc.get("before") or {}, doc.get("predicted") or {}, doc.get("read_back") or {}]
    return [{"figure": label, "before": parts[0].get(key), "predicted": parts[1].get(key),
             "read_back": parts[2].get(key)} for key, label in names]


def print_batch(report, fmt: Any = "table", written_to: Optional[str] = None) -> None:
    """A drain, undrain or apply report (BatchReport), or a plan (DrainPlan). Table, value and
    csv print its rows (the results; the plan's steps for a dry run or a plan); JSON and YAML
    print the whole document, with -c keeping only those keys in each row."""
    out = as_output(fmt)
    doc = plan_document(report) if hasattr(report, "steps") else batch_document(report)
    plan = doc.get("plan") or {}
    showing_plan = bool(doc["dry_run"] and plan)
    if out.sort_columns:
        doc["results"] = sorted_rows(doc["results"], out)
        if plan:
            plan["steps"] = sorted_rows(plan["steps"], out)
    rows = plan.get("steps", []) if showing_plan else doc["results"]
    if out.fmt in ("json", "yaml"):
        if out.columns:
            doc["results"] = [{c: r.get(c) for c in out.columns} for r in doc["results"]]
            if plan:
                plan["steps"] = [{c: r.get(c) for c in out.columns} for r in plan["steps"]]
        print(dump(doc, out.fmt, out.noindent))
        return
    cols = list(out.columns) or list(PLAN_STEP_TABLE if showing_plan else STEP_TABLE)
    if out.fmt in ("value", "csv"):
        _emit_rows(rows, cols, out)
        return
    hosts = ", ".join(doc["hosts"])
    if showing_plan:
        print_table(rows_table(rows, cols, title=f"{plan.get('kind') or 'drain'} plan for {hosts}"))
        if written_to is None and not out.columns:
            print_table(rows_table(checks_rows(plan), ["check", "result", "detail"], title="pre-checks",
                                   styles={"result": {"ok": "green", "warn": "yellow"}}))
    elif rows:
        print_table(rows_table(rows, cols, title=f"{doc['verb']} {hosts}", styles={"result": RESULT_STYLE}))
    if doc.get("read_back") and not out.columns:
        print_table(rows_table(figure_rows(doc), ["figure", "before", "predicted", "read_back"],
                               title="hosts in scope, read back from Placement"))
    if doc.get("left") and not out.columns:
        print_table(rows_table(doc["left"], LEFT_COLUMNS, title=f"still on {hosts}",
                               styles={"accepted": {"False": "red"}}))
    if written_to is not None:
        moves = sum(1 for s in plan.get("steps", []) if s.get("dest_compute"))
        print(f"plan written to {written_to}: {moves} moves, {len(plan.get('steps', [])) - moves} skipped")
        return
    console = make_console()
    if doc["service"]:
        console.print(doc["service"], style="dim", markup=False)
    extra = []
    if doc["run_id"]:
        extra.append(f"run {doc['run_id']}")
    if not doc["dry_run"]:
        extra.append(f"peak {doc['peak_in_flight']} in flight")
    extra.append(f"{doc['api_requests']} API requests")
    extra.append(f"{doc['elapsed_seconds']:.0f} s")
    console.print(", ".join(extra), style="dim", markup=False)
    print(doc["summary"])


# ---------------------------------------------------------------------------- progress

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


def progress_lines(enabled: bool = True):
    """A progress callback for batches (drain, undrain, apply): timestamped lines on stderr."""
    if not enabled:
        return None
    import time
    console = make_console(stderr=True)

    def say(line: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] ", end="")
        console.print(line, markup=False)
    return say


def duration(seconds: Optional[float]) -> str:
    """A short duration for progress lines: 45s, 1m12s, 2h05m."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def terminal_gone() -> None:
    """The terminal went away (SIGHUP: a closed window, a dropped SSH session): writes to it
    fail with EIO or EPIPE. The run goes on to its end (it stops gracefully on the SIGHUP, and
    its journal and exit code say how it ended), so what it would have printed there is
    dropped instead of failing the run."""
    import os
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            stream.flush()
            alive = True
        except (OSError, ValueError):
            alive = False
        if not alive or name == "stderr":
            setattr(sys, name, open(os.devnull, "w"))


def _say(print_line) -> bool:
    """Run one write to the terminal; False (and the terminal dropped) when it is gone."""
    try:
        print_line()
        return True
    except OSError:
        terminal_gone()
        return False


def emit_report(write) -> None:
    """Print a verb's final report; dropped, not fatal, when the terminal is gone (a SIGHUP'd
    run still ends with the exit code that says how it ended, its journal holds the rest)."""
    def write_and_flush() -> None:
        write()
        sys.stdout.flush()          # a pipe's buffer would otherwise fail at exit (status 120)
    _say(write_and_flush)


class BatchView:
    """The live view of a drain, undrain or apply on stderr. On a terminal: the event lines
    scroll above a progress bar and the servers moving now:

        drain compute3  ████░░░░ 12/40 moved · 3 in flight · 1 failed · 25 waiting · 1m12s · ETA 2m30s
        in flight: web-1, web-2, db-1

    Elsewhere (pipes, CI, logs): one plain timestamped line per event, no bar. `line` is the
    batch's `progress` callback, `update` its `status` callback; `update` takes a snapshot with
    verb, hosts, total, moved, failed, in_flight, waiting, other, elapsed, eta and
    in_flight_names (novamove.engine.batch.moves.BatchProgress; read by attribute only)."""

    BAR_WIDTH = 24
    MAX_NAMES = 6           # servers named under the bar; the rest are counted

    def __init__(self, enabled: bool = True, force_terminal: Optional[bool] = None, console=None):
        from rich.console import Console as _Console
        self.console = console or _Console(stderr=True, highlight=False, force_terminal=force_terminal)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.snapshot = None
        self._live = None

    def __enter__(self) -> "BatchView":
        if self.live:
            from rich.live import Live
            self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            _say(lambda: live.__exit__(*exc))

    def line(self, text: str) -> None:
        """One event (the batch's `progress` callback)."""
        if not self.enabled:
            return
        import time as _time
        stamp = _time.strftime("%H:%M:%S")
        if self._live is not None:
            from rich.text import Text
            ok = _say(lambda: self.console.print(Text.assemble((stamp, "dim"), " ", str(text))))
        else:
            ok = _say(lambda: print(f"{stamp} {text}", file=sys.stderr, flush=True))
        if not ok:
            self.enabled, self._live = False, None

    def update(self, progress) -> None:
        """Where the batch stands (the batch's `status` callback): redraws the bar."""
        self.snapshot = progress
        if self._live is not None and not _say(lambda: self._live.update(self.render(), refresh=True)):
            self.enabled, self._live = False, None

    def bar(self, progress, width: Optional[int] = None):
        """The bar: moved (green), failed (red), other outcomes (yellow), the rest to do."""
        from rich.text import Text
        width = width or self.BAR_WIDTH
        total = max(progress.total, progress.moved + progress.failed + progress.other, 1)
        bar = Text()
        used = 0
        for count, style in ((progress.moved, "green"), (progress.failed, "red"), (progress.other, "yellow")):
            cells = min(width - used, round(width * count / total))
            if count and not cells and used < width:
                cells = 1                       # a failure is never too small to show
            bar.append("█" * cells, style=style)
            used += cells
        bar.append("░" * (width - used), style="dim")
        return bar

    def status_line(self, progress) -> str:
        """The counts after the bar, as plain text."""
        parts = [f"{progress.moved}/{progress.total} moved", f"{progress.in_flight} in flight"]
        if progress.failed:
            parts.append(f"{progress.failed} failed")
        if progress.waiting:
            parts.append(f"{progress.waiting} waiting")
        if progress.other:
            parts.append(f"{progress.other} other")
        parts.append(duration(progress.elapsed))
        if progress.eta is not None:
            parts.append(f"ETA {duration(progress.eta)}")
        return " · ".join(parts)

    def render(self):
        from rich.console import Group
        from rich.text import Text
        p = self.snapshot
        if p is None:
            return Group()
        title, counts = f"{p.verb} {', '.join(p.hosts)}", self.status_line(p)
        # A narrow terminal gets a shorter bar (at least 8 cells), not a cut-off ETA.
        width = max(8, min(self.BAR_WIDTH, self.console.width - len(title) - len(counts) - 3))
        rows = [Text.assemble((title, "bold"), "  ", self.bar(p, width), " ", counts)]
        names = list(p.in_flight_names)
        if names:
            shown = ", ".join(names[:self.MAX_NAMES])
            more = len(names) - self.MAX_NAMES
            tail = Text(f"in flight: {shown}" + (f" and {more} more" if more > 0 else ""), style="dim")
            tail.no_wrap, tail.overflow = True, "ellipsis"
            rows.append(tail)
        return Group(*rows)


class ProgressDisplay:
    """The live display of a move on stderr: an updating line on a terminal, a line per change
    otherwise (logs, CI)."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console
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
    from rich.table import Table
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
    from rich.table import Table
    if fmt != "table":
        print(dump(batch_document(rep), fmt))
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
# ------------------------------------------------------------------------------ maintenance campaigns

OUTCOME_STYLE = {"done": "green", "failed": "red", "refused": "red", "skipped": "yellow",
                 "not-started": "yellow", "interrupted": "yellow"}


def _res_text(r: dict) -> str:
    return f"{r.get('vcpus', 0):g} vCPU / {r.get('memory_mb', 0):g} MB / {r.get('disk_gb', 0):g} GB"


def campaign_plan_tables(plan: dict) -> list[Table]:
    """The dry run of a campaign (CampaignPlan.to_dict()): stages, then hosts."""
    from rich.table import Table
    stages = Table(title=f"campaign plan: stages of at most {plan['max_hosts']} host(s) out", header_style="bold")
    for col in ("stage", "hosts out", "moves", "capacity left (destinations)", "N+K"):
        stages.add_column(col)
    for st in plan["stages"]:
        moves = "\n".join(f"{m['server_name']}: {m['source_compute']} -> {m['dest_compute']} ({m['mode']})" for m in st["moves"][:8])
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
    from rich.table import Table
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
            progress, self._progress = self._progress, None
            _say(lambda: progress.__exit__(*exc))

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        import time as _time
        stamp = _time.strftime("%H:%M:%S")
        if self._progress is not None:
            ok = _say(lambda: self._progress.console.print(f"[dim]{stamp}[/] {text}"))
        else:
            ok = _say(lambda: print(f"{stamp} {text}", file=sys.stderr, flush=True))
        if not ok:
            self.enabled, self._progress = False, None

    def update(self, campaign) -> None:
        """Called by the campaign engine after every change of state."""
        if self._progress is None:
            return
        if not _say(lambda: self._draw(campaign)):
            self.enabled, self._progress = False, None

    def _draw(self, campaign) -> None:
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
            parts.append(f"{', '.join(campaign.current)}: drain")
        for o in campaign.out.values():
            extra = f" {now - o.hook_t0:.0f} s" if o.phase == "hook" and o.hook_t0 else ""
            parts.append(f"{o.host}: {o.phase}{extra}")
        self._progress.update(self._inflight_task, description="in flight: " + (", ".join(parts) or "none"))


# ------------------------------------------------------------------------------ doctor

# The keys of a doctor row (`-f json`, docs/doctor.md): a finding's (Finding.to_dict()), and
# after --fix what its repair did.
DOCTOR_FINDING_KEYS = ("class", "server_id", "host", "level", "repairable", "safe", "detail", "fix", "evidence")
DOCTOR_REPAIR_KEYS = ("repair", "repair_detail", "repair_action", "one_way", "undo", "request_id", "left")
DOCTOR_COLUMNS = DOCTOR_FINDING_KEYS + ("repair", "repair_detail", "left")
DOCTOR_TABLE = ("class", "server_id", "host", "detail", "fix")
DOCTOR_FIX_TABLE = ("class", "server_id", "host", "detail", "repair", "repair_detail")
_DOCTOR_STYLE = {"repair": {"fixed": "green", "failed": "red", "skipped": "yellow"}}


def doctor_rows(report) -> list[dict]:
    """One row per finding (Finding.to_dict(), docs/doctor.md), plus, after --fix, what its
    repair did (`repair`: fixed | failed | skipped | null) and whether the scan after it still
    finds it (`left`)."""
    rows = []
    for f in report.findings:
        row = f.to_dict()
        target = f.evidence.get("consumer") or f.server_id or f.host
        rep = next((r for r in report.repairs if r.klass == f.klass and r.target == target), None)
        if report.fix:
            row["repair"] = rep.outcome if rep else None
            row["repair_detail"] = (rep.detail if rep else
                                    "not repaired: " + ("not repairable through the APIs" if not f.repairable else
                                                        "not a safe class: name it (--fix CLASS)"))
            row["repair_action"] = rep.action if rep else None
            row["one_way"] = rep.one_way if rep else None
            row["undo"] = rep.undo if rep else None
            row["request_id"] = rep.request_id if rep else None
            left = report.left if report.left is not None else report.findings
            row["left"] = any(g.klass == f.klass and (g.evidence.get("consumer") or g.server_id or g.host) == target
                              for g in left)
        rows.append(row)
    return rows


def print_doctor(report, fmt: Any = "table") -> None:
    """The findings (and repairs) of a `novamove doctor`, then its summary (table only; the
    request count and the scan's time on stderr)."""
    out = as_output(fmt)
    rows = doctor_rows(report)
    print_rows(rows, DOCTOR_FIX_TABLE if report.fix else DOCTOR_TABLE, out, empty="no drift found",
               styles=_DOCTOR_STYLE)
    if out.fmt == "table":
        stats = report.stats
        extra = [f"run {report.run_id}" if report.run_id else None,
                 f"scan: {stats.total} API requests "
                 f"({', '.join(f'{k} {v}' for k, v in stats.requests.items() if v)}), {stats.seconds:.1f} s",
                 f"scan after the repairs: {report.stats_after.total} requests" if report.stats_after else None]
        print("; ".join(e for e in extra if e), file=sys.stderr)
        print(report.summary)
