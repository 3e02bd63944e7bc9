"""`novamove evacuate HOST` and `novamove unfence HOST`: thin, over novamove.api.

Exit codes: 0 every server evacuated (or moved back) as the policy says; 1 a server failed or was
left in flight; 8 servers that cannot be evacuated or placed are left on the host; 2 bad
arguments; 3 unknown host; 4 refused
before anything changed (host not fenced, still reporting, fence command failed, stop-loss, duplicates
left on the host, compute not reporting); 5 credentials; 6 API unreachable; 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from novamove import report as render
from novamove.cli import conn, journal_path, main, observe_options, on_stall_option, output_options

POWER_POLICIES = ("restore", "stopped")


def _common(f):
    options = [
        click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True, metavar="N",
                     help="At most N evacuations (moves) in flight in all."),
        click.option("--max-per-host", type=click.IntRange(min=1), default=2, show_default=True, metavar="M",
                     help="At most M in flight into one destination host."),
        click.option("--poll-interval", type=click.FloatRange(min=0.2), default=0.5, show_default=True,
                     metavar="SECONDS", help="How often the in-flight evacuations are listed, one request each "
                          "(half that while one is due to finish, up to twice it while none is)."),
        click.option("--timeout", type=click.FloatRange(min=10), default=1800, show_default=True,
                     metavar="SECONDS", help="Give up following one server after this long."),
        click.option("--quiet", "-q", is_flag=True, help="No progress lines."),
        output_options,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _finish(rep, fmt: str) -> None:
    render.emit_report(lambda: render.print_evacuation(rep, fmt))
    if rep.exit_code:
        sys.exit(rep.exit_code)


EVACUATE_EPILOG = """\b
Exit codes: 0 all evacuated; 1 an evacuation failed; 8 servers that cannot be
evacuated or placed are left; 2 usage; 3 unknown host; 4 refused, nothing
changed (not fenced, still reporting after the fence, fence command failed,
stop-loss); 130 interrupted.
See docs/evacuate.md."""

UNFENCE_EPILOG = """\b
Exit codes: 0 done; 1 a move back failed; 4 refused, nothing changed
(nova-compute not reporting, evacuated servers not cleaned up yet).
See docs/evacuate.md."""


@main.command(epilog=EVACUATE_EPILOG)
@click.argument("host")
@click.option("--to", "targets", multiple=True, metavar="HOST", help="Only these destinations (repeatable).")
@click.option("--fence-cmd", metavar="CMD",
              help="Shell command that fences HOST (e.g. an IPMI power-off); must exit 0. "
                   "NOVAMOVE_HOST and NOVAMOVE_HYPERVISOR are set for it.")
@click.option("--fenced", is_flag=True, help="Assert HOST is fenced (powered off) already.")
@click.option("--power", type=click.Choice(POWER_POLICIES), default="restore", show_default=True,
              help="restore: each server comes back as it was (ACTIVE or SHUTOFF); stopped: every "
                   "server lands stopped (compute API 2.95+).")
@click.option("--max-down-percent", type=click.FloatRange(0, 100), default=50, show_default=True,
              metavar="PCT", help="Stop-loss: refuse when more than PCT% of the computes would be down.")
@click.option("--quiet-period", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="How long HOST's nova-compute must not have reported (its updated_at, in Nova's "
                   "clock) before it counts as fenced  [default: NOVAMOVE_QUIET_PERIOD, else 25].")
@click.option("--reason", metavar="TEXT", help="Added to the disabled reason of HOST.")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Check the preconditions and print the plan; change nothing (--check is an alias).")
@_common
@observe_options
@click.pass_context
def evacuate(ctx, host, targets, fence_cmd, fenced, power, max_down_percent, quiet_period, reason, dry_run,
             max_parallel, max_per_host, poll_interval, timeout, quiet, fmt):
    """Rebuild every server of the failed compute HOST on other hosts (nova evacuate).

    HOST must be fenced: --fence-cmd (exits 0), --fenced (you powered it off), or already
    forced down; "down per Nova" alone is not enough (a crashed nova-compute or a network
    partition leaves its guests running). In every case its nova-compute must also have
    stopped reporting for --quiet-period. novamove then
    forces it down and disables it (tagged), plans a destination per server (capacity, server
    groups, zone, --to) and evacuates them under the caps. Servers tagged
    novamove:maintenance=skip are left alone. Rerun it (or `novamove recover`) after an
    interruption: evacuations already started are followed, never posted twice.
    """
    from novamove import api
    rep = api.evacuate(host, journal_path=journal_path(ctx), targets=targets, fence_cmd=fence_cmd, fenced=fenced, power=power, reason=reason,
                       max_parallel=max_parallel, max_per_host=max_per_host,
                       max_down_percent=max_down_percent, dry_run=dry_run, poll_interval=poll_interval,
                       timeout=timeout, quiet_period=quiet_period, progress=render.progress_lines(not quiet), **conn(ctx))
    _finish(rep, fmt)


@main.command(epilog=UNFENCE_EPILOG)
@click.argument("host")
@click.option("--move-back", is_flag=True, help="Also bring the evacuated servers back (live when ACTIVE).")
@click.option("--wait", type=click.FloatRange(min=0), default=90, show_default=True, metavar="SECONDS",
              help="How long to wait for HOST's nova-compute to report.")
@on_stall_option
@click.option("--dry-run", "--check", "dry_run", is_flag=True, help="Say what would happen; change nothing (--check is an alias).")
@_common
@observe_options
@click.pass_context
def unfence(ctx, host, move_back, wait, on_stall, dry_run, max_parallel, max_per_host, poll_interval, timeout, quiet, fmt):
    """Put the repaired HOST back after an evacuation.

    Its nova-compute must be running again (it destroys the local copies of evacuated servers
    when it starts); refused while evacuated servers are not cleaned up there (listed). Clears
    forced_down, enables HOST if a novamove evacuation disabled it, and with --move-back brings
    its servers home.
    """
    from novamove import api
    rep = api.unfence(host, journal_path=journal_path(ctx), move_back=move_back, wait=wait, dry_run=dry_run, max_parallel=max_parallel,
                      max_per_host=max_per_host, poll_interval=poll_interval, timeout=timeout,
                      on_stall=on_stall, progress=render.progress_lines(not quiet), **conn(ctx))
    _finish(rep, fmt)
