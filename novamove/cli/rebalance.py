"""`novamove rebalance [--goal spread|pack] [--zone AZ | --aggregate NAME | HOST ...]`.

Thin: parse, call novamove.api (rebalance_options, plan_rebalance, rebalance, save_plan), render
with novamove.report.print_batch, exit with the documented code (0 every move landed and the
hosts read back within the plan's figures, 1 a move failed or the figures were not met,
2 bad input, 3 unknown host / zone / aggregate, 4 an unfinished rebalance run, 130 interrupted).
"""

from __future__ import annotations

import click

from novamove import report
from novamove.cli import conn, journal_path, main, observe_options
from novamove.cli.drain import _batch_output, _cap_options, show

GOALS = ("spread", "pack")       # novamove.rebalance.GOALS, spelled out so --help stays fast


@main.command()
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option("--goal", type=click.Choice(GOALS), default="spread", show_default=True,
              help="spread: lower the most loaded hosts toward the mean; pack: empty as many hosts "
                   "as possible.")
@click.option("--zone", metavar="AZ", help="The hosts of this availability zone (named HOSTs must be in it).")
@click.option("--aggregate", metavar="NAME", help="The hosts of this host aggregate (no HOST, no --zone).")
@click.option("--max-moves", type=int, default=None, metavar="N", help="At most N moves (at least 1).")
@click.option("--min-gain", type=float, default=None, metavar="PCT",
              help="spread: refuse moves that lower the most loaded host by fewer percentage points "
                   "(default 2; no ping-pong between two runs).")
@click.option("--disable-emptied", is_flag=True,
              help="pack: leave each emptied host disabled with a tagged reason (`novamove undrain "
                   "HOST` gives it back); a host someone else disabled keeps their reason.")
@click.option("--reason", metavar="TEXT", help="Added to the emptied hosts' disabled reason.")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Print the plan and its before/after figures; change nothing (--check is an alias).")
@click.option("-o", "--output", "output_file", metavar="FILE",
              help="Also write the plan here (JSON), for `novamove apply FILE`.")
@_cap_options
@observe_options
@click.pass_context
def rebalance(ctx, hosts, goal, zone, aggregate, max_moves, min_gain, disable_emptied, reason, dry_run,
              output_file, max_parallel, max_per_host, on_interrupt, poll_interval, step_timeout, on_stall,
              quiet, fmt):
    """Spread load over the hosts in scope, or pack it to empty hosts, from Placement alone.

    The scope is the HOSTs named, or --zone's, or --aggregate's, or every compute. Without
    --dry-run the plan is applied at once, as `novamove apply` runs a saved one: under the caps,
    each step checked again, journaled (`novamove recover` after a crash); exit 0 only when
    every move landed and the hosts, read back from Placement, are within the plan's figures.
    """
    from novamove import api
    out = _batch_output(fmt)
    options = api.rebalance_options(goal=goal, hosts=hosts, zone=zone, aggregate=aggregate,
                                    max_moves=max_moves, min_gain=min_gain, disable_emptied=disable_emptied,
                                    reason=reason, max_parallel=max_parallel or 4,
                                    max_per_host=max_per_host or 2)   # bad input: one line, exit 2
    if dry_run or output_file:
        rep = api.rebalance(options, dry_run=True, **conn(ctx))
        if output_file:
            api.save_plan(rep.plan, output_file)
        if dry_run:
            report.print_batch(rep, out, written_to=output_file if output_file and out.fmt == "table" else None)
            return
        the_plan = rep.plan
        with report.BatchView(enabled=not quiet) as view:
            rep = api.apply_plan(the_plan, journal_path=journal_path(ctx), on_interrupt=on_interrupt,
                                 poll_interval=poll_interval, step_timeout=step_timeout, on_stall=on_stall,
                                 progress=view.line, status=view.update, **conn(ctx))
        show(rep, out)
        return
    with report.BatchView(enabled=not quiet) as view:
        rep = api.rebalance(options, journal_path=journal_path(ctx), on_interrupt=on_interrupt,
                            poll_interval=poll_interval, step_timeout=step_timeout, on_stall=on_stall,
                            progress=view.line, status=view.update, **conn(ctx))
    show(rep, out)
