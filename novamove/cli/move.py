"""`novamove migrate` and the verbs around it: wait, migrations, abort, force-complete, confirm,
revert, back, recover, history.

Thin: parse, call novamove.api, render with novamove.report, exit with the documented code.
novamove.api is imported inside each verb, so `novamove --help` does not load it.
"""

from __future__ import annotations

import functools
import sys

import click

from novamove import errors, report
from novamove.cli import conn, journal_path, main, observe_options, on_stall_option, output, output_options

FORMAT = output_options          # the name older verb modules use


def _conn(ctx: click.Context) -> dict:
    return conn(ctx)


def _move_output(fmt: str):
    from novamove import api
    return output(fmt, report.move_fields(api.MoveResult))


def _exit_for(result) -> None:
    if result.exit_code:
        if result.error:
            click.echo(f"novamove: error: {report.error_line(result)}", err=True)
        sys.exit(result.exit_code)


def _one_mode(f):
    """--live and --cold are two flags (one shared destination would let the last silently
    win): both given is a usage error; the command gets `mode`."""
    @functools.wraps(f)
    def command(*args, live: bool = False, cold: bool = False, **kwargs):
        if live and cold:
            raise click.UsageError("--live and --cold exclude each other: give one")
        return f(*args, mode="live" if live else ("cold" if cold else None), **kwargs)
    return command


def _move_options(f):
    options = [
        click.option("--live", "--live-migration", "live", is_flag=True,
                     help="Live migrate (default for ACTIVE/PAUSED; --live-migration is OSC's word)."),
        click.option("--cold", is_flag=True, help="Cold migrate (default for SHUTOFF)."),
        click.option("--strategy", type=click.Choice(["auto", "native", "isolate"]), default="auto",
                     show_default=True,
                     help="native: the API targets the host (cold >= 2.56, live >= 2.30); isolate: "
                          "disable the other computes until the scheduler has decided."),
        click.option("--reason", metavar="TEXT", help="Why (written in disabled_reason with isolate)."),
        click.option("--confirm/--no-confirm", default=True, show_default=True,
                     help="Confirm a cold move (--no-confirm leaves it in VERIFY_RESIZE)."),
        click.option("--wait/--no-wait", default=True, show_default=True,
                     help="--no-wait returns once the move is accepted and scheduled."),
        click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
                     metavar="SECONDS", help="Give up waiting after this long."),
        click.option("--on-timeout", type=click.Choice(["abort", "force-complete", "leave"]),
                     default="abort", show_default=True, help="What to do with a live migration on timeout."),
        on_stall_option,
        click.option("--schedule-timeout", type=click.FloatRange(min=1), default=60, show_default=True,
                     metavar="SECONDS",
                     help="isolate: the longest the other computes stay disabled while the scheduler "
                          "decides."),
        click.option("--dry-run", "--check", "check_mode", is_flag=True,
                     help="Run every pre-check and say what would happen; change nothing "
                          "(--check is an alias)."),
        click.option("--if-needed", is_flag=True,
                     help="Already on the target is success (exit 0) instead of exit 9."),
        click.option("--quiet", "-q", is_flag=True, help="No progress display."),
        output_options,
    ]
    f = _one_mode(f)
    for option in reversed(options):
        f = option(f)
    return f


def _run_move(ctx: click.Context, call, quiet: bool, fmt: str, if_needed: bool = False, **kwargs) -> None:
    out = _move_output(fmt)
    with report.ProgressDisplay(enabled=not quiet) as display:
        result = call(progress=display, journal_path=journal_path(ctx), **conn(ctx), **kwargs)
    if result.ok and not result.changed and not result.check_mode and not if_needed:
        # Asked to move a server where it already is: the library treats it as done (idempotent,
        # for automation); on the command line it is most likely a mistake, so say so.
        raise errors.AlreadyThere(result.summary.replace(" and has a status of", ", status")
                                  + " (--if-needed: exit 0)")
    report.print_move(result, out)
    _exit_for(result)


@main.command()
@click.argument("server")
@click.option("--to", "--host", "host", metavar="HOST",
              help="Target compute: service host or hypervisor hostname (--host is OSC's word); "
                   "without it Nova's scheduler chooses.")
@_move_options
@observe_options
@click.pass_context
def migrate(ctx, server, host, mode, strategy, reason, confirm, wait, timeout, on_timeout, on_stall,
            schedule_timeout, check_mode, if_needed, quiet, fmt):
    """Move SERVER (UUID or exact name, any project) to compute HOST, cold or live; without
    --to, to the host Nova's scheduler chooses."""
    from novamove import api
    if host is None and strategy == "isolate":     # bad input: refused before connecting
        raise errors.UsageError("--strategy isolate needs a target: name it with --to HOST "
                                "(without --to Nova's scheduler chooses)")
    _run_move(ctx, lambda **kw: api.migrate(server, host, **kw), quiet, fmt, if_needed, mode=mode or "auto",
              strategy=strategy, reason=reason, confirm=confirm, wait=wait, timeout=timeout,
              on_timeout=on_timeout, on_stall=on_stall, schedule_timeout=schedule_timeout, check_mode=check_mode)


migrate.shows_one = True


@main.command()
@click.argument("server")
@_move_options
@observe_options
@click.pass_context
def back(ctx, server, mode, strategy, reason, confirm, wait, timeout, on_timeout, on_stall, schedule_timeout,
         check_mode, if_needed, quiet, fmt):
    """Move SERVER back to where it was before its last novamove move (from the journal)."""
    from novamove import api
    _run_move(ctx, lambda **kw: api.back(server, **kw), quiet, fmt, if_needed, mode=mode or "auto",
              strategy=strategy, reason=reason, confirm=confirm, wait=wait, timeout=timeout,
              on_timeout=on_timeout, on_stall=on_stall, schedule_timeout=schedule_timeout, check_mode=check_mode)


back.shows_one = True


@main.command()
@click.argument("server")
@click.option("--confirm/--no-confirm", default=False, show_default=True,
              help="Confirm a cold move that reaches VERIFY_RESIZE.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
              metavar="SECONDS", help="Give up waiting after this long.")
@click.option("--on-timeout", type=click.Choice(["abort", "force-complete", "leave"]),
              default="leave", show_default=True, help="What to do with a live migration on timeout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@output_options
@observe_options
@click.pass_context
def wait(ctx, server, confirm, timeout, on_timeout, quiet, fmt):
    """Follow the migration SERVER is in (started with --no-wait, or by anyone) until it ends."""
    from novamove import api
    out = _move_output(fmt)
    with report.ProgressDisplay(enabled=not quiet) as display:
        result = api.wait(server, confirm=confirm, timeout=timeout, on_timeout=on_timeout,
                          progress=display, journal_path=journal_path(ctx), **conn(ctx))
    report.print_move(result, out)
    _exit_for(result)


wait.shows_one = True


@main.command()
@click.argument("server", required=False)
@click.option("--host", help="Only migrations from or to this compute.")
@click.option("--status", help="Only migrations with this status.")
@click.option("--type", "migration_type", type=click.Choice(["migration", "live-migration", "resize",
                                                              "evacuation"]))
@output_options
@click.pass_context
def migrations(ctx, server, host, status, migration_type, fmt):
    """List Nova's migration records (of SERVER if given), newest first."""
    from novamove import api
    out = output(fmt, report.MIGRATION_COLUMNS)
    rows = api.migrations(server=server, host=host, status=status, migration_type=migration_type,
                          **conn(ctx))
    report.print_rows(report.migration_rows(rows), report.MIGRATION_TABLE, out, empty="no migrations")


def _simple(name: str, api_name: str, doc: str):
    @main.command(name=name, help=doc)
    @click.argument("server")
    @click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for Nova to act.")
    @output_options
    @observe_options
    @click.pass_context
    def command(ctx, server, wait, fmt):
        from novamove import api
        out = _move_output(fmt)
        result = getattr(api, api_name)(server, wait=wait, journal_path=journal_path(ctx), **conn(ctx))
        report.print_move(result, out)
        _exit_for(result)
    command.shows_one = True
    return command


abort = _simple("abort", "abort", "Abort SERVER's in-progress live migration.")
force_complete = _simple("force-complete", "force_complete",
                         "Force SERVER's running live migration to complete (pauses the guest briefly).")
confirm = _simple("confirm", "confirm", "Confirm SERVER's cold migration (VERIFY_RESIZE -> done).")
revert = _simple("revert", "revert", "Revert SERVER's cold migration (VERIFY_RESIZE -> back to source).")


@main.command()
@click.option("--run", "run_id", metavar="RUN_ID", help="Only this run (default: every unfinished run).")
@click.option("--confirm/--no-confirm", default=True, show_default=True,
              help="Confirm servers left in VERIFY_RESIZE on their target (else only report them).")
@click.option("--break-lock", is_flag=True,
              help="With --run: re-enable the computes carrying that run's tag even though this "
                   "journal does not know the run (it ran on another machine that is gone).")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="List what would be undone; change nothing (reads the journal and the cloud).")
@output_options
@observe_options
@click.pass_context
def recover(ctx, run_id, confirm, break_lock, dry_run, fmt):
    """Undo what interrupted runs left behind: re-enable services, confirm or report resizes."""
    from novamove import api
    if break_lock and not run_id:
        raise errors.UsageError("--break-lock needs --run RUN_ID (the run whose tags to remove)")
    out = output(fmt, report.RECOVER_COLUMNS)
    reports = api.recover(run_id=run_id, confirm=confirm, break_lock=break_lock, dry_run=dry_run,
                          journal_path=journal_path(ctx), **conn(ctx))
    report.print_rows(reports, report.RECOVER_TABLE, out, empty="nothing to recover")


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@output_options
@click.pass_context
def history(ctx, limit, fmt):
    """List novamove runs from the local journal, newest first."""
    from novamove import api
    out = output(fmt, report.RUN_COLUMNS)
    rows = api.history(limit=limit, journal_path=journal_path(ctx))
    report.print_rows(report.run_rows(rows), report.RUN_TABLE, out, empty="no runs in the journal")
