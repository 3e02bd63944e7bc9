"""`novamove drain HOST`, `undrain HOST`, `plan drain HOST -o plan.json`, `apply plan.json`.

Thin: parse, call novamove.api (drain, undrain, plan_drain, apply_plan, load_plan, save_plan),
render with novamove.report.print_batch, exit with the documented code (0 all movable servers
moved, 1 a move failed, 8 servers left on the host, 130 interrupted).
"""

from __future__ import annotations

import sys

import click

from novamove import report
from novamove.cli import conn, journal_path, main, observe_options, on_stall_option, output, output_options

# The library's choices (novamove.planner / novamove.engine.batch.drain), spelled out here so that
# `novamove --help` does not import them.
MODES = ("auto", "live", "cold")
ORDERS = ("largest", "smallest", "name", "id")
ON_INTERRUPT = ("finish", "abort")


ALLOW_UNMOVABLE = click.option(
    "--allow-unmovable", is_flag=True,
    help="Servers Nova cannot move (ERROR, SHELVED, ...) may stay on the host: exit 0 instead of 8 "
         "when they are all that is left.")


def _cap_options(f):
    options = [
        click.option("--max-parallel", type=click.IntRange(min=1), default=None, metavar="N",
                     help="At most N moves in flight in all (default 4)."),
        click.option("--max-per-host", type=click.IntRange(min=1), default=None, metavar="M",
                     help="At most M moves in flight from one source and into one destination "
                          "(default 2)."),
        click.option("--on-interrupt", type=click.Choice(ON_INTERRUPT), default="finish",
                     show_default=True, help="On Ctrl-C, start nothing new and finish or abort the "
                                             "in-flight moves."),
        click.option("--poll-interval", type=click.FloatRange(min=0.2), default=None,
                     metavar="SECONDS", help="How often the in-flight moves are listed (default 0.5; "
                                                   "half that while one is due to finish, up to twice "
                                                   "it while none is)."),
        click.option("--timeout", "step_timeout", type=click.FloatRange(min=10), default=1800,
                     show_default=True, metavar="SECONDS", help="Give up on one move after this long."),
        on_stall_option,
        click.option("--quiet", "-q", is_flag=True,
                     help="No progress (on a terminal a progress bar under the event lines; "
                          "elsewhere one line per event)."),
        output_options,
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


def _batch_output(fmt: str):
    return output(fmt, report.BATCH_COLUMNS)


def show(rep, out) -> None:
    report.emit_report(lambda: report.print_batch(rep, out))
    if rep.exit_code:
        sys.exit(rep.exit_code)


# ------------------------------------------------------------------------------- verbs

@main.command()
@click.argument("host")
@_plan_options
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Print the ordered plan and pre-checks; change nothing (--check is an alias).")
@ALLOW_UNMOVABLE
@_cap_options
@observe_options
@click.pass_context
def drain(ctx, host, targets, mode, order, reason, dry_run, allow_unmovable, max_parallel, max_per_host,
          on_interrupt, poll_interval, step_timeout, on_stall, quiet, fmt):
    """Empty compute HOST: disable it (tagged reason), then move every server off it.

    Live moves for ACTIVE/PAUSED servers, cold moves + confirm for SHUTOFF ones; the rest is
    reported as skipped with the reason. Rerun it after an interruption to continue.
    """
    from novamove import api
    out = _batch_output(fmt)
    with report.BatchView(enabled=not quiet) as view:
        rep = api.drain(host, journal_path=journal_path(ctx), targets=targets, mode=mode, order=order,
                        reason=reason, max_parallel=max_parallel or 4, max_per_host=max_per_host or 2,
                        dry_run=dry_run, on_interrupt=on_interrupt, poll_interval=poll_interval,
                        step_timeout=step_timeout, allow_unmovable=allow_unmovable, on_stall=on_stall,
                        progress=view.line, status=view.update, **conn(ctx))
    show(rep, out)


@main.command()
@click.argument("host")
@click.option("--move-back", is_flag=True, help="Also bring back the servers the drain moved away.")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Say what would happen; change nothing (--check is an alias).")
@_cap_options
@observe_options
@click.pass_context
def undrain(ctx, host, move_back, dry_run, max_parallel, max_per_host, on_interrupt, poll_interval,
            step_timeout, on_stall, quiet, fmt):
    """Re-enable HOST if a novamove drain disabled it (and, with --move-back, refill it)."""
    from novamove import api
    out = _batch_output(fmt)
    with report.BatchView(enabled=not quiet) as view:
        rep = api.undrain(host, journal_path=journal_path(ctx), move_back=move_back,
                          max_parallel=max_parallel or 4, max_per_host=max_per_host or 2,
                          on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                          dry_run=dry_run, on_stall=on_stall, progress=view.line, status=view.update,
                          **conn(ctx))
    show(rep, out)


@main.group()
def plan():
    """Write a plan to review and `novamove apply` later."""


@plan.command(name="drain")
@click.argument("host")
@_plan_options
@click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True, metavar="N")
@click.option("--max-per-host", type=click.IntRange(min=1), default=2, show_default=True, metavar="M")
@click.option("-o", "--output", "output_file", metavar="FILE",
              help="Write the plan as JSON here (default: print it).")
@output_options
@click.pass_context
def plan_drain(ctx, host, targets, mode, order, reason, max_parallel, max_per_host, output_file, fmt):
    """Plan the drain of HOST (reads only)."""
    from novamove import api
    out = _batch_output(fmt)
    the_plan = api.plan_drain([host], targets=targets, mode=mode, order=order, reason=reason,
                              max_parallel=max_parallel, max_per_host=max_per_host, **conn(ctx))
    if output_file:
        api.save_plan(the_plan, output_file)
    report.print_batch(the_plan, out, written_to=output_file if output_file and out.fmt == "table" else None)


@main.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@ALLOW_UNMOVABLE
@_cap_options
@observe_options
@click.pass_context
def apply(ctx, plan_file, allow_unmovable, max_parallel, max_per_host, on_interrupt, poll_interval,
          step_timeout, on_stall, quiet, fmt):
    """Run a saved plan; each step's pre-condition is checked again when it runs."""
    from novamove import api
    out = _batch_output(fmt)
    the_plan = api.load_plan(plan_file)       # bad file: one-line error before connecting
    with report.BatchView(enabled=not quiet) as view:
        rep = api.apply_plan(the_plan, journal_path=journal_path(ctx), max_parallel=max_parallel,
                             max_per_host=max_per_host, on_interrupt=on_interrupt, poll_interval=poll_interval,
                             step_timeout=step_timeout, allow_unmovable=allow_unmovable, on_stall=on_stall,
                             progress=view.line, status=view.update, **conn(ctx))
    show(rep, out)
