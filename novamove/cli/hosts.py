"""`novamove hosts`: the compute nodes a move can target, with the name mapping and usage."""

from __future__ import annotations

import click

from novamove import report
from novamove.cli import conn, main, output, output_options


@main.command()
@output_options
@click.pass_context
def hosts(ctx, fmt):
    """List compute hosts: service host, hypervisor hostname, status, state, reason, usage."""
    from novamove import api
    out = output(fmt, report.HOST_COLUMNS)
    rows = sorted(report.host_rows(api.compute_hosts(**conn(ctx))), key=lambda r: r["host"])
    if out.fmt == "table":
        for r in rows:
            r["vcpus"] = f"{r['vcpus_used']:g}/{r['vcpus']:g}"
            r["memory_mb"] = f"{r['memory_mb_used']:g}/{r['memory_mb']:g}"
            r["disk_gb"] = f"{r['disk_gb_used']:g}/{r['disk_gb']:g}"
    report.print_rows(rows, report.HOST_TABLE, out, empty="no compute hosts")
