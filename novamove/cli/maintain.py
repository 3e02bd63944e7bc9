"""`novamove maintain HOST...` (rolling maintenance campaigns) and `novamove campaign status|stop`.

Thin: parse, call novamove.api, render with novamove.report, exit with the documented code:
0 every host serviced and back in service; 1 a host failed (stop-loss: it stays disabled with a
reason saying why); 4 refused (N+K capacity or group budget; nothing changed on that host);
8 some hosts not serviced (skip-tagged servers, disabled by someone else, down); 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from novamove import errors
from novamove import report as render
from novamove.cli import conn, journal_path, main, observe_options, on_stall_option

# The library's choices (novamove.engine.campaign.simulate), spelled out so that `novamove --help`
# does not import the engine.
ORDERS = ("fewest", "name", "given")

FORMAT = click.option("-f", "--format", "fmt", type=click.Choice(render.FORMATS), default="table",
                      show_default=True, help="Output format.")


def _show(rep, fmt: str) -> None:
    render.emit_report(lambda: _print(rep, fmt))
    if rep.exit_code:
        sys.exit(rep.exit_code)


def _print(rep, fmt: str) -> None:
    data = rep.to_dict()
    if fmt != "table":
        print(render.dump(data, fmt))
    else:
        console = render.make_console()
        if rep.dry_run:
            for table in render.campaign_plan_tables(data["plan"]):
                console.print(table)
            for w in data["plan"]["warnings"]:
                console.print(f"[yellow]{w}[/]")
        else:
            console.print(render.campaign_table(data))
            console.print(f"[dim]run {rep.run_id}, peak {rep.peak_out} host(s) out, {rep.api_requests} API "
                          f"requests, {rep.elapsed_seconds:.0f} s[/]")
        print(rep.summary)


@main.command()
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option("--zone", metavar="AZ", help="Every compute host of this availability zone.")
@click.option("--aggregate", metavar="NAME", help="Every compute host of this host aggregate.")
@click.option("--all", "all_hosts", is_flag=True, help="Every compute host of the cloud.")
@click.option("--hook", metavar="CMD", help="Run for each emptied host (NOVAMOVE_HOST, NOVAMOVE_HYPERVISOR, "
                                          "NOVAMOVE_RUN_ID set; output in a log file per host). Make it idempotent.")
@click.option("--check", metavar="CMD", help="Run after the gate; the host returns only if it exits 0.")
@click.option("--max-hosts", type=click.IntRange(min=1), default=1, show_default=True, metavar="K",
              help="At most K hosts out of service at once.")
@click.option("--max-failed-hosts", type=click.IntRange(min=1), default=1, show_default=True, metavar="F",
              help="Start no new host after F hosts failed.")
@click.option("--group-budget", type=click.IntRange(min=1), default=1, show_default=True, metavar="B",
              help="At most B members of one server group moving or powered off at once.")
@click.option("--order", type=click.Choice(ORDERS), default="fewest", show_default=True,
              help="Host order after the empty ones.")
@click.option("--move-back", is_flag=True, help="Bring each host's servers back once it is in service again.")
@click.option("--allow-skip", is_flag=True, help="Service hosts holding servers tagged novamove:maintenance=skip "
                                                 "(those stay, untouched).")
@click.option("--allow-unmovable", is_flag=True, help="Service hosts holding servers Nova cannot move (ERROR...).")
@click.option("--hook-timeout", type=click.FloatRange(min=1), default=3600, show_default=True, metavar="SECONDS")
@click.option("--gate", type=click.Choice(("restart", "heartbeat")), default=None,
              help="When a host is back after its hook: restart (the default with a hook) = booted, or its "
                   "nova-compute seen down and up, after the hook began; heartbeat (the default without "
                   "one; for hooks that restart nothing) = a report after the hook ended. Nova's clock.")
@click.option("--gate-timeout", type=click.FloatRange(min=1), default=900, show_default=True, metavar="SECONDS",
              help="How long the gate may take to pass after the hook.")
@click.option("--check-timeout", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS")
@click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True, metavar="N",
              help="Drain cap: moves in flight in all (hosts out together share one drain, so it holds campaign-wide).")
@click.option("--max-per-host", type=click.IntRange(min=1), default=2, show_default=True, metavar="M",
              help="Drain cap: moves in flight per source and per destination host.")
@click.option("--timeout", "step_timeout", type=click.FloatRange(min=10), default=1800, show_default=True,
              metavar="SECONDS", help="Give up on one move after this long.")
@click.option("--poll-interval", type=click.FloatRange(min=0.2), default=None, metavar="SECONDS")
@click.option("--reason", metavar="TEXT", help="Added to the hosts' disabled reason.")
@click.option("--on-interrupt", type=click.Choice(("finish", "abort")), default="finish", show_default=True,
              help="On Ctrl-C/SIGTERM: start no new host; in-flight moves finish or abort; hooks always end.")
@on_stall_option
@click.option("--dry-run", is_flag=True, help="Print the whole ordered campaign (stages, moves, capacity left, "
                                              "estimate) and change nothing.")
@click.option("--resume", metavar="RUN", help="Continue campaign RUN (rerunning the same hosts does it too).")
@click.option("--rerun-hook", is_flag=True, help="On resume: run again a hook the stopped run did not see end.")
@click.option("--hook-done", is_flag=True, help="On resume: take such a hook as done and go on to the gate.")
@click.option("--estimate-move", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Dry run: seconds per move for the estimate (default 30).")
@click.option("--estimate-hook", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Dry run: seconds per hook for the estimate (default 300).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@FORMAT
@observe_options
@click.pass_context
def maintain(ctx, hosts, zone, aggregate, all_hosts, hook, check, max_hosts, max_failed_hosts, group_budget,
             order, move_back, allow_skip, allow_unmovable, hook_timeout, gate, gate_timeout, check_timeout,
             max_parallel, max_per_host, step_timeout, poll_interval, reason, on_interrupt, on_stall, dry_run, resume,
             rerun_hook, hook_done, estimate_move, estimate_hook, quiet, fmt):
    """Rolling maintenance: empty, service and return compute hosts in turn.

    Per host: disable (tagged) -> drain -> --hook -> gate (the host restarted after the hook
    began, or with --gate heartbeat its nova-compute reported after the hook) -> --check ->
    enable (-> --move-back). Servers tagged novamove:maintenance=live|cold
    move that way; =stop are powered off for the hook and started after; =skip are never
    touched. Exit: 0 all done, 1 a host failed, 4 refused (capacity), 8 hosts not serviced,
    130 interrupted.
    """
    if resume and (hosts or zone or aggregate or all_hosts):
        raise errors.UsageError("--resume RUN takes the hosts and options of RUN: name no hosts with it")
    if not resume and not (hosts or zone or aggregate or all_hosts):
        raise errors.UsageError("name the hosts to maintain, or select them with --zone, --aggregate or --all")
    from novamove import api
    view = render.CampaignView(enabled=not quiet)
    with view:
        rep = api.maintain(list(hosts), journal_path=journal_path(ctx), zone=zone, aggregate=aggregate, all_hosts=all_hosts,
                           hook=hook, check=check, max_hosts=max_hosts, max_failed_hosts=max_failed_hosts,
                           group_budget=group_budget, order=order, move_back=move_back, allow_skip=allow_skip,
                           allow_unmovable=allow_unmovable, hook_timeout=hook_timeout, gate=gate,
                           gate_timeout=gate_timeout,
                           check_timeout=check_timeout, max_parallel=max_parallel, max_per_host=max_per_host,
                           step_timeout=step_timeout, poll_interval=poll_interval, reason=reason,
                           dry_run=dry_run, resume=resume, rerun_hook=rerun_hook, hook_done=hook_done,
                           on_interrupt=on_interrupt, progress=view.line, on_update=view.update,
                           move_seconds=estimate_move, hook_seconds=estimate_hook, on_stall=on_stall, **conn(ctx))
    _show(rep, fmt)


@main.group()
def campaign():
    """Maintenance campaigns in the journal: status, stop."""


@campaign.command(name="status")
@click.argument("run_id", required=False, metavar="[RUN]")
@FORMAT
@click.pass_context
def campaign_status(ctx, run_id, fmt):
    """Campaigns (newest first), or RUN with each host's state."""
    from novamove import api
    rows = api.campaign_status(run_id, journal_path=journal_path(ctx))
    if fmt != "table":
        print(render.dump(rows, fmt))
        return
    if run_id and rows:
        r = rows[0]
        hosts = [{"host": h, **st} for h, st in r["host_state"].items()]
        print(f"campaign {r['run_id']}: {r['status']} (started {r['started_at']}{render.campaign_by(r)}); "
              f"{r.get('summary') or ''}")
        render.print_rows(hosts, ("host", "outcome", "hook", "hook_started", "detail"), "table",
                          empty="no host touched yet")
        return
    render.print_rows([{**r, "hosts": ", ".join(r["hosts"]), "taken_over": render.taken_over(r)} for r in rows],
                      ("run_id", "status", "started_at", "started_by", "taken_over", "hosts", "summary"), "table",
                      empty="no campaign")


@campaign.command(name="stop")
@click.argument("run_id", metavar="RUN")
@click.pass_context
def campaign_stop(ctx, run_id):
    """Ask running campaign RUN to stop gracefully (as Ctrl-C would: no new host starts, hosts
    in flight finish)."""
    from novamove import api
    run = api.campaign_stop(run_id, journal_path=journal_path(ctx))
    print(f"asked campaign {run['id']} (pid {run['pid']}) to stop: it starts no new host and finishes "
          "the hosts in flight")
