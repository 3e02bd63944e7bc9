"""`novamove drain HOST`, `undrain HOST`, `plan drain HOST -o plan.json`, `apply plan.json`.

Thin: parse, call novamove.engine.drain, render with rich (or JSON/YAML), exit with the
documented code (0 all movable servers moved, 1 a move failed, 130 interrupted).
"""

from __future__ import annotations

import sys
import time
import click
from rich.console import Console
from rich.table import Table

from novamove import report as render
from novamove.cli import main
from novamove.engine import drain as engine
from novamove.engine.journal import Journal
from novamove.planner import MODES, ORDERS, DrainPlan, load_plan, save_plan

FORMAT = click.option("-f", "--format", "fmt", type=click.Choice(render.FORMATS), default="table",
                      show_default=True, help="Output format.")


def _cloud(ctx: click.Context):
    from novamove.cloud import connect
    return connect(cloud=ctx.obj.os_cloud, region_name=ctx.obj.region)


def _progress(quiet: bool):
    if quiet:
        return None
    console = Console(stderr=True, highlight=False)

    def say(line: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {line}")
    return say


def _cap_options(f):
    options = [
        click.option("--max-parallel", type=click.IntRange(min=1), default=None, metavar="N",
                     help="At most N moves in flight in all (default 4)."),
        click.option("--max-per-host", type=click.IntRange(min=1), default=None, metavar="M",
                     help="At most M moves in flight from one source and into one destination "
                          "(default 2)."),
        click.option("--on-interrupt", type=click.Choice(engine.ON_INTERRUPT), default="finish",
                     show_default=True, help="On Ctrl-C, start nothing new and finish or abort the "
                                             "in-flight moves."),
        click.option("--poll-interval", type=click.FloatRange(min=0.2), default=engine.POLL_INTERVAL, show_default=True,
                     metavar="SECONDS", help="How often the in-flight moves are listed."),
        click.option("--timeout", "step_timeout", type=click.FloatRange(min=10), default=1800,
                     show_default=True, metavar="SECONDS", help="Give up on one move after this long."),
        click.option("--quiet", "-q", is_flag=True, help="No progress lines."),
        FORMAT,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _plan_options(f):
    options = [
        click.option("--to", "targets", multiple=True, metavar="HOST",
                     help="Only these destinations (repeatable)."),
        click.option("--mode", type=click.Choice(MODES), default="auto", show_default=True,
                     help="auto: live for ACTIVE/PAUSED, cold for SHUTOFF."),
        click.option("--order", type=click.Choice(ORDERS), default="largest", show_default=True,
                     help="Order in which the moves start."),
        click.option("--reason", metavar="TEXT", help="Added to the disabled reason of the host."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


# ------------------------------------------------------------------------------- rendering

def plan_table(plan: DrainPlan) -> Table:
    table = Table(title=f"drain plan for {', '.join(plan.sources)}", header_style="bold")
    for col in ("#", "server", "status", "mode", "from", "to", "vCPU/RAM/disk", "note"):
        table.add_column(col)
    for i, s in enumerate(plan.steps, 1):
        need = f"{s.need.vcpus:g}/{s.need.memory_mb:g}M/{s.need.disk_gb:g}G"
        table.add_row(str(i) if s.dest else "-", s.server_name, s.status or "", s.mode if s.dest else "",
                      s.source, s.dest or "[yellow]skipped[/]", need, s.skip_reason or "")
    return table


def checks_table(plan: DrainPlan) -> Table:
    table = Table(title="pre-checks", header_style="bold")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for c in plan.checks:
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[yellow]warn[/]", c.detail)
    table.add_row("caps", "[green]ok[/]",
                  f"max {plan.max_parallel} in flight, {plan.max_per_host} per source/destination host")
    return table


STYLE = {engine.MOVED: "green", engine.SKIPPED: "yellow", engine.FAILED: "red", engine.ABORTED: "yellow",
         engine.NOT_STARTED: "yellow", engine.IN_FLIGHT: "red"}


def results_table(rep: engine.BatchReport) -> Table:
    table = Table(title=f"{rep.verb} {', '.join(rep.hosts)}", header_style="bold")
    for col in ("server", "mode", "from", "to", "result", "seconds", "detail"):
        table.add_column(col)
    for r in rep.results:
        style = STYLE.get(r.result, "")
        table.add_row(r.server_name, r.mode, r.source, r.dest or "-",
                      f"[{style}]{r.result}[/]" if style else r.result,
                      f"{r.seconds:.0f}" if r.seconds else "", r.detail)
    return table


def show(rep: engine.BatchReport, fmt: str) -> None:
    if fmt != "table":
        print(render.dump(rep.to_dict(), fmt))
    else:
        console = Console(highlight=False)
        if rep.dry_run and rep.plan is not None:
            console.print(plan_table(rep.plan))
            if rep.plan.checks:
                console.print(checks_table(rep.plan))
        elif rep.results:
            console.print(results_table(rep))
        if rep.service:
            console.print(f"[dim]{rep.service}[/]")
        extra = []
        if rep.run_id:
            extra.append(f"run {rep.run_id}")
        if not rep.dry_run:
            extra.append(f"peak {rep.peak_in_flight} in flight")
        extra.append(f"{rep.api_requests} API requests")
        extra.append(f"{rep.elapsed_seconds:.0f} s")
        console.print(f"[dim]{', '.join(extra)}[/]")
        print(rep.summary)
    if rep.exit_code:
        sys.exit(rep.exit_code)


# ------------------------------------------------------------------------------- verbs

@main.command()
@click.argument("host")
@_plan_options
@click.option("--dry-run", is_flag=True, help="Print the ordered plan and pre-checks; change nothing.")
@_cap_options
@click.pass_context
def drain(ctx, host, targets, mode, order, reason, dry_run, max_parallel, max_per_host, on_interrupt,
          poll_interval, step_timeout, quiet, fmt):
    """Empty compute HOST: disable it (tagged reason), then move every server off it.

    Live moves for ACTIVE/PAUSED servers, cold moves + confirm for SHUTOFF ones; the rest is
    reported as skipped with the reason. Rerun it after an interruption to continue.
    """
    cloud = _cloud(ctx)
    try:
        rep = engine.drain(cloud, host, journal=Journal(ctx.obj.journal), targets=targets, mode=mode,
                           order=order, reason=reason, max_parallel=max_parallel or 4,
                           max_per_host=max_per_host or 2, dry_run=dry_run, on_interrupt=on_interrupt,
                           poll_interval=poll_interval, step_timeout=step_timeout,
                           progress=_progress(quiet))
    finally:
        cloud.close()
    show(rep, fmt)


@main.command()
@click.argument("host")
@click.option("--move-back", is_flag=True, help="Also bring back the servers the drain moved away.")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@_cap_options
@click.pass_context
def undrain(ctx, host, move_back, dry_run, max_parallel, max_per_host, on_interrupt, poll_interval,
            step_timeout, quiet, fmt):
    """Re-enable HOST if a novamove drain disabled it (and, with --move-back, refill it)."""
    cloud = _cloud(ctx)
    try:
        rep = engine.undrain(cloud, host, journal=Journal(ctx.obj.journal), move_back=move_back,
                             max_parallel=max_parallel or 4, max_per_host=max_per_host or 2,
                             on_interrupt=on_interrupt, poll_interval=poll_interval,
                             step_timeout=step_timeout, dry_run=dry_run, progress=_progress(quiet))
    finally:
        cloud.close()
    show(rep, fmt)


@main.group()
def plan():
    """Write a plan to review and `novamove apply` later."""


@plan.command(name="drain")
@click.argument("host")
@_plan_options
@click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True, metavar="N")
@click.option("--max-per-host", type=click.IntRange(min=1), default=2, show_default=True, metavar="M")
@click.option("-o", "--output", metavar="FILE", help="Write the plan as JSON here (default: print it).")
@FORMAT
@click.pass_context
def plan_drain(ctx, host, targets, mode, order, reason, max_parallel, max_per_host, output, fmt):
    """Plan the drain of HOST (reads only)."""
    cloud = _cloud(ctx)
    try:
        the_plan = engine.make_plan(cloud, [host], targets=targets, mode=mode, order=order, reason=reason,
                                    max_parallel=max_parallel, max_per_host=max_per_host)
    finally:
        cloud.close()
    if output:
        save_plan(the_plan, output)
    rep = engine.BatchReport("plan", list(the_plan.sources), dry_run=True, plan=the_plan)
    if output and fmt == "table":
        Console(highlight=False).print(plan_table(the_plan))
        print(f"plan written to {output}: {len(the_plan.moves)} moves, {len(the_plan.skipped)} skipped")
        return
    show(rep, fmt)


@main.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@_cap_options
@click.pass_context
def apply(ctx, plan_file, max_parallel, max_per_host, on_interrupt, poll_interval, step_timeout, quiet, fmt):
    """Run a saved plan; each step's pre-condition is checked again when it runs."""
    the_plan = load_plan(plan_file)       # bad file: one-line error before connecting
    cloud = _cloud(ctx)
    try:
        rep = engine.apply_plan(cloud, the_plan, journal=Journal(ctx.obj.journal), max_parallel=max_parallel,
                                max_per_host=max_per_host, on_interrupt=on_interrupt,
                                poll_interval=poll_interval, step_timeout=step_timeout,
                                progress=_progress(quiet))
    finally:
        cloud.close()
    show(rep, fmt)
