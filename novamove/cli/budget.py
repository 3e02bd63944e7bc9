"""`novamove budget set|show|clear`: the cloud-wide move budget shared by every run on the same
journal and cloud (docs/journal.md#budgets).

Thin: parse, call novamove.api, render with novamove.report, exit with the documented code.
"""

from __future__ import annotations

import click

from novamove import report
from novamove.cli import conn, journal_path, main, output, output_options

BUDGET_FIELDS = ("cloud", "max_in_flight", "max_per_host", "in_flight", "waiting", "set_at", "set_by")


@main.group()
def budget():
    """Cloud-wide move budget: at most N moves in flight, at most M per destination host,
    across every drain, campaign, rebalance and evacuation on this journal and cloud."""


@budget.command(name="set")
@click.option("--max-in-flight", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N moves in flight cloud-wide (runs on this journal).")
@click.option("--max-per-host", type=click.IntRange(min=1), default=None, metavar="M",
              help="At most M moves in flight to one destination host.")
@output_options
@click.pass_context
def budget_set(ctx, max_in_flight, max_per_host, fmt):
    """Set (replace) the budget of this cloud."""
    from novamove import api
    out = output(fmt, BUDGET_FIELDS)
    doc = api.budget_set(max_in_flight=max_in_flight, max_per_host=max_per_host,
                         journal_path=journal_path(ctx), **conn(ctx))
    report.print_one({k: doc[k] for k in BUDGET_FIELDS}, out)


@budget.command(name="show")
@output_options
@click.pass_context
def budget_show(ctx, fmt):
    """Show this cloud's budget and how many moves hold a slot under it now."""
    from novamove import api
    out = output(fmt, BUDGET_FIELDS)
    doc = api.budget_show(journal_path=journal_path(ctx), **conn(ctx))
    report.print_one({k: doc[k] for k in BUDGET_FIELDS}, out)


@budget.command(name="clear")
@click.pass_context
def budget_clear(ctx):
    """Remove this cloud's budget (runs are held by their own caps only)."""
    from novamove import api
    had = api.budget_clear(journal_path=journal_path(ctx), **conn(ctx))
    click.echo("budget cleared" if had else "no budget was set")
