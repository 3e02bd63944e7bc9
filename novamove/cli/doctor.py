"""`novamove doctor`: the drift failed or interrupted migrations left behind, found (and with
--fix repaired) through Nova's and Placement's APIs alone; thin, over novamove.api.

Exit codes: 0 nothing found, or everything found was fixed and the scan after it is clean;
10 findings left; 1 a repair was attempted and did not take; 2 bad input (unknown class,
--older-than not a number >= 0); 3 unknown --host / --server; 5 credentials; 6 API unreachable.
"""

from __future__ import annotations

import sys

import click

from novamove import report as render
from novamove.observe import cli as observe_cli
from novamove.cli import conn, journal_path, main, observe_options, output, output_options

DOCTOR_EPILOG = """\b
Exit codes: 0 nothing found (or all fixed, read back clean); 10 findings
left; 1 a repair did not take; 2 bad input; 3 unknown host or server.
Classes, keys of -f json and repairs: docs/doctor.md."""


@main.command(epilog=DOCTOR_EPILOG)
@click.argument("classes", nargs=-1, metavar="[CLASS]...")
@click.option("--fix", is_flag=True,
              help="Repair what is repairable: with no CLASS only the classes documented as safe; "
                   "with CLASS names, those classes (e.g. verify-resize-forgotten, one-way).")
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="Only findings about this compute (repeatable).")
@click.option("--server", "servers", multiple=True, metavar="SERVER",
              help="Only findings about this server, UUID or name (repeatable).")
@click.option("--older-than", type=float, default=None, metavar="SECONDS",
              help="VERIFY_RESIZE and non-terminal migrations older than this are drift "
                   "(0 flags every one)  [default: 3600].")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@output_options
@observe_options
@click.pass_context
def doctor(ctx, classes, fix, hosts, servers, older_than, quiet, fmt):
    """Find (and with --fix repair) the drift failed migrations leave behind.

    Reads only, whole-cloud listings (servers, migrations, services, hypervisors, resource
    providers, allocations per provider): VERIFY_RESIZE forgotten, task states stuck,
    migration records stuck, leaked allocations, computes forced down while reporting or
    left disabled by a dead novamove run... Each finding says its evidence and its exact repair.
    CLASS names (only with --fix) choose the repairs; every repair is journaled first and read
    back, and the cloud is scanned again after them.
    """
    from novamove import api, errors
    from novamove.report import DOCTOR_COLUMNS
    if classes and not fix:
        raise errors.UsageError("CLASS names choose repairs: add --fix (without it doctor only reports)")
    out = output(fmt, DOCTOR_COLUMNS + ("repair_action", "one_way", "undo", "request_id"))
    rep = api.doctor(hosts=hosts, servers=servers, older_than=older_than, fix=fix,
                     fix_classes=list(classes) if classes else None, journal_path=journal_path(ctx),
                     progress=render.progress_lines(not quiet and fix), **conn(ctx))
    observe_cli.doctor_findings(ctx, [f.to_dict()["class"] for f in rep.remaining])
    render.print_doctor(rep, out)
    if rep.exit_code:
        sys.exit(rep.exit_code)
