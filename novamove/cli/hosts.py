"""`novamove hosts`: the compute nodes a move can target, with the name mapping and usage."""

from __future__ import annotations

import click

from novamove import api, report
from novamove.cli import main
from novamove.cli.move import FORMAT, _conn


@main.command()
@FORMAT
@click.pass_context
def hosts(ctx, fmt):
    """List compute hosts: service host, hypervisor hostname, status, state, reason, usage."""
    rows = sorted(api.compute_hosts(**_conn(ctx)), key=lambda r: r["name"])
    if fmt == "table":
        for r in rows:
            r["vcpus"] = f"{r['vcpus_used']:g}/{r['vcpus']:g}"
            r["memory_mb"] = f"{r['memory_mb_used']:g}/{r['memory_mb']:g}"
            r["disk_gb"] = f"{r['disk_gb_used']:g}/{r['disk_gb']:g}"
    report.print_rows(rows, ["name", "hypervisor_hostname", "zone", "status", "state",
                             "disabled_reason", "vcpus", "memory_mb", "disk_gb"], fmt,
                      empty="no compute hosts")
