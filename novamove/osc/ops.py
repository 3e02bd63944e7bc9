"""The operator verbs beyond move/wait/drain/undrain in the `openstack` CLI (group openstack.novamove.v1).

Like novamove/osc/v1.py: parse, call novamove.api only, shape the answer into cliff's columns
(`-f`, `-c`, `--sort-column`), exit with novamove's codes. A column is the `novamove -c` name of
the same field, title-cased as OSC writes columns: `source_compute` is `Source Compute`, `run_id`
is `Run ID` (osc_column); `-f json` uses them as keys.

    openstack server move back|confirm|revert|abort|force complete <server>
    openstack compute host evacuate|unfence|maintain <host> ...
    openstack compute host campaign status [<run>] / campaign stop <run>
    openstack novamove history / novamove recover / novamove doctor
"""

from __future__ import annotations

from osc_lib.command import command

from novamove import report

from novamove.osc.v1 import (LOG, _BatchCommand, _NovamoveCommand, _mode_options, already_there,
                             confirm_options, move_row, on_stall_argument, positive_float, positive_int)

# The keys of each kind of row, as `novamove -c` and `-f json` name them (novamove/report.py;
# novamove.api's campaign reports for maintain and campaign status, which have no -c).
RUN_KEYS = report.RUN_COLUMNS
RECOVER_KEYS = report.RECOVER_COLUMNS
MAINTAIN_KEYS = ("host", "outcome", "stage", "moved", "stopped", "hook_exit", "hook_seconds", "gate",
                 "check_exit", "moved_back", "seconds", "detail")
MAINTAIN_PLAN_KEYS = ("name", "stage", "servers", "moves", "stop", "skip", "estimate_seconds",
                      "serviced", "why_not")
CAMPAIGN_KEYS = ("run_id", "status", "started_at", "finished_at", "started_by", "taken_over_by", "taken_over_at",
                 "hosts", "summary")
CAMPAIGN_HOST_KEYS = ("host", "outcome", "hook", "hook_started", "detail")
STOP_KEYS = ("id", "pid", "status", "verb")
# `novamove doctor -f json`'s keys (report.doctor_rows, docs/doctor.md): a finding's, and after
# --fix what its repair did.
DOCTOR_KEYS = report.DOCTOR_FINDING_KEYS
DOCTOR_FIX_KEYS = report.DOCTOR_FINDING_KEYS + report.DOCTOR_REPAIR_KEYS

# The OSC column name of a `novamove -c` key (named once, in novamove/report.py: `novamove -c`
# accepts both spellings).
osc_column = report.osc_column
ABBREVIATIONS = report.ABBREVIATIONS


def cell(value):
    """A list is one cell, comma-separated (as `novamove` tables show it)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


def rows(keys, records) -> tuple:
    """(columns, rows) for a Lister from dicts that have (some of) `keys`."""
    return (tuple(osc_column(k) for k in keys),
            [tuple(cell(r.get(k)) for k in keys) for r in records])


def show(keys, record) -> tuple:
    """(columns, values) for a ShowOne."""
    return tuple(osc_column(k) for k in keys), tuple(cell(record.get(k)) for k in keys)


def _flag_pair(parser, dest: str, on: str, off: str, on_help: str, off_help: str) -> None:
    """`--X` (the default) / `--no-X`, mutually exclusive, as OSC spells its flag pairs."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(on, dest=dest, action="store_true", default=True, help=on_help)
    group.add_argument(off, dest=dest, action="store_false", help=off_help)


# ---------------------------------------------------------------------------- server follow-ups

class _ServerFollowUp(_NovamoveCommand, command.ShowOne):
    """One novamove.api call on a server's migration; the fields of 'openstack server move'."""

    observed = True

    log = LOG
    api_name = ""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("server", metavar="<server>", help="Server (name or ID, any project)")
        _flag_pair(parser, "wait", "--wait", "--no-wait", "Wait for Nova to act (default)",
                   "Return once Nova has accepted the request")
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        result = getattr(api, self.api_name)(parsed_args.server, cloud=self._cloud, **self._observing,
                                             wait=parsed_args.wait)
        return self._result(result)

    def _result(self, result):
        from novamove import errors, report
        if not result.ok:
            self._exit_code = result.exit_code or errors.EXIT_FAILED
            self._error(report.error_line(result))
        return move_row(result)


class ConfirmServerMove(_ServerFollowUp):
    """Confirm a server's cold migration (VERIFY_RESIZE -> done), journaled (novamove confirm)."""

    api_name = "confirm"


class RevertServerMove(_ServerFollowUp):
    """Revert a server's cold migration (VERIFY_RESIZE -> back to the source) (novamove revert)."""

    api_name = "revert"


class AbortServerMove(_ServerFollowUp):
    """Abort a server's in-progress live migration (novamove abort)."""

    api_name = "abort"


class ForceCompleteServerMove(_ServerFollowUp):
    """Force a server's running live migration to complete; pauses the guest briefly
    (novamove force-complete)."""

    api_name = "force_complete"


class BackServerMove(_ServerFollowUp):
    """Move a server back to the host it was on before its last novamove move (novamove back)."""

    def get_parser(self, prog_name):
        parser = _NovamoveCommand.get_parser(self, prog_name)    # not the follow-ups: no --wait
        parser.add_argument("server", metavar="<server>", help="Server (name or ID, any project)")
        _mode_options(parser, "Live migrate (default for ACTIVE/PAUSED servers)",
                      "Cold migrate (default for SHUTOFF servers)")
        parser.add_argument("--strategy", choices=["auto", "native", "isolate"], default="auto",
                            help="native: the API targets the host; isolate: disable the other "
                                 "computes until the scheduler has decided (default auto)")
        parser.add_argument("--reason", metavar="<text>",
                            help="Why (written in the disabled reason with --strategy isolate)")
        confirm_options(parser)
        _flag_pair(parser, "wait", "--wait", "--no-wait", "Wait for the move to finish (default)",
                   "Return once the move is accepted and scheduled")
        parser.add_argument("--timeout", metavar="<seconds>", type=positive_float, default=600.0,
                            help="Give up waiting after this many seconds (default 600)")
        parser.add_argument("--on-timeout", choices=["abort", "force-complete", "leave"],
                            default="abort", help="What to do with a live migration still running "
                                                  "at the timeout (default abort)")
        on_stall_argument(parser)
        parser.add_argument("--schedule-timeout", metavar="<seconds>", type=positive_float,
                            default=60.0, help="How long the scheduler may take to choose, with "
                                               "--strategy isolate (default 60)")
        parser.add_argument("--dry-run", "--check", dest="check_mode", action="store_true",
                            help="Run every pre-check and say what would happen; change nothing")
        parser.add_argument("--if-needed", action="store_true",
                            help="Already where it was is success (exit 0) instead of an error")
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        result = api.back(parsed_args.server, cloud=self._cloud, **self._observing, mode=parsed_args.mode,
                          strategy=parsed_args.strategy, reason=parsed_args.reason,
                          confirm=parsed_args.confirm, wait=parsed_args.wait,
                          timeout=parsed_args.timeout, on_timeout=parsed_args.on_timeout,
                          schedule_timeout=parsed_args.schedule_timeout, on_stall=parsed_args.on_stall,
                          check_mode=parsed_args.check_mode, progress=self._progress_snapshot)
        already_there(result, parsed_args.if_needed)
        return self._result(result)


# ---------------------------------------------------------------------------- evacuation

def _evacuation_caps(parser) -> None:
    parser.add_argument("--max-parallel", metavar="<n>", type=positive_int, default=4,
                        help="At most this many evacuations (moves) in flight in all (default 4)")
    parser.add_argument("--max-per-host", metavar="<m>", type=positive_int, default=2,
                        help="At most this many in flight into one destination host (default 2)")
    parser.add_argument("--poll-interval", metavar="<seconds>", type=positive_float, default=0.5,
                        help="How often the in-flight evacuations are listed (default 0.5)")
    parser.add_argument("--timeout", metavar="<seconds>", type=positive_float, default=1800.0,
                        help="Give up following one server after this many seconds (default 1800)")


class _EvacuationCommand(_BatchCommand):
    def _show(self, report):
        if getattr(report, "fence", ""):
            self._note(report.fence)
        return super()._show(report)


class EvacuateComputeHost(_EvacuationCommand):
    """Rebuild every server of a failed, fenced compute host on other hosts (novamove evacuate).

    The host must be fenced (--fence-cmd, --fenced, or already forced down) and its nova-compute
    silent for --quiet-period; novamove then forces it down, disables it with a tagged reason and
    evacuates its servers under the caps. Rerun it after an interruption. docs/evacuate.md.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("host", metavar="<host>", help="The failed compute host")
        parser.add_argument("--to", dest="targets", metavar="<host>", action="append", default=[],
                            help="Only these destinations (repeat for more)")
        parser.add_argument("--fence-cmd", metavar="<command>",
                            help="Shell command that fences the host (e.g. an IPMI power-off); must "
                                 "exit 0. NOVAMOVE_HOST and NOVAMOVE_HYPERVISOR are set for it")
        parser.add_argument("--fenced", action="store_true",
                            help="Assert the host is fenced (powered off) already")
        parser.add_argument("--power", choices=["restore", "stopped"], default="restore",
                            help="restore: each server comes back as it was; stopped: every server "
                                 "lands stopped (compute API 2.95+) (default restore)")
        parser.add_argument("--max-down-percent", metavar="<pct>", type=float, default=50.0,
                            help="Stop-loss: refuse when more than this percentage of the computes "
                                 "would be down (default 50)")
        parser.add_argument("--quiet-period", metavar="<seconds>", type=positive_float,
                            help="How long the host's nova-compute must not have reported before it "
                                 "counts as fenced (default $NOVAMOVE_QUIET_PERIOD, else 25)")
        parser.add_argument("--reason", metavar="<text>", help="Added to the disabled reason")
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="Check the preconditions and list the plan; change nothing")
        _evacuation_caps(parser)
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        report = api.evacuate(parsed_args.host, cloud=self._cloud, **self._observing, targets=tuple(parsed_args.targets),
                              fence_cmd=parsed_args.fence_cmd, fenced=parsed_args.fenced,
                              power=parsed_args.power, reason=parsed_args.reason,
                              max_parallel=parsed_args.max_parallel,
                              max_per_host=parsed_args.max_per_host,
                              max_down_percent=parsed_args.max_down_percent,
                              dry_run=parsed_args.dry_run, poll_interval=parsed_args.poll_interval,
                              timeout=parsed_args.timeout, quiet_period=parsed_args.quiet_period,
                              progress=self._progress_line)
        return self._show(report)


class UnfenceComputeHost(_EvacuationCommand):
    """Put a repaired compute host back after an evacuation (novamove unfence).

    Its nova-compute must be running again; clears forced_down, enables the host if a novamove
    evacuation disabled it, and with --move-back brings its servers home.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("host", metavar="<host>", help="The repaired compute host")
        parser.add_argument("--move-back", action="store_true",
                            help="Also bring the evacuated servers back (live when ACTIVE)")
        parser.add_argument("--wait", metavar="<seconds>", type=float, default=90.0,
                            help="How long to wait for the host's nova-compute to report (default 90)")
        on_stall_argument(parser)
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="Say what would happen; change nothing")
        _evacuation_caps(parser)
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        report = api.unfence(parsed_args.host, cloud=self._cloud, **self._observing, move_back=parsed_args.move_back,
                             wait=parsed_args.wait, dry_run=parsed_args.dry_run,
                             max_parallel=parsed_args.max_parallel,
                             max_per_host=parsed_args.max_per_host,
                             poll_interval=parsed_args.poll_interval, timeout=parsed_args.timeout,
                             on_stall=parsed_args.on_stall, progress=self._progress_line)
        return self._show(report)


# ---------------------------------------------------------------------------- maintenance campaigns

class MaintainComputeHosts(_NovamoveCommand, command.Lister):
    """Rolling maintenance: empty, service and return compute hosts in turn (novamove maintain).

    Per host: disable (tagged) -> drain -> --hook -> gate (nova-compute reports up after the
    hook) -> --check -> enable (-> --move-back). One row per host; with --dry-run, one row per
    host of the plan. docs/maintain.md.
    """

    observed = True

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("hosts", metavar="<host>", nargs="*", help="Compute hosts to maintain")
        parser.add_argument("--zone", metavar="<az>", help="Every compute host of this zone")
        parser.add_argument("--aggregate", metavar="<name>", help="Every compute host of this aggregate")
        parser.add_argument("--all", dest="all_hosts", action="store_true",
                            help="Every compute host of the cloud")
        parser.add_argument("--hook", metavar="<command>",
                            help="Run for each emptied host (NOVAMOVE_HOST, NOVAMOVE_HYPERVISOR, "
                                 "NOVAMOVE_RUN_ID set); make it idempotent")
        parser.add_argument("--check", metavar="<command>",
                            help="Run after the gate; the host returns only if it exits 0")
        parser.add_argument("--max-hosts", metavar="<k>", type=positive_int, default=1,
                            help="At most this many hosts out of service at once (default 1)")
        parser.add_argument("--max-failed-hosts", metavar="<f>", type=positive_int, default=1,
                            help="Start no new host after this many failed (default 1)")
        parser.add_argument("--group-budget", metavar="<b>", type=positive_int, default=1,
                            help="At most this many members of one server group moving or powered "
                                 "off at once (default 1)")
        parser.add_argument("--order", choices=["fewest", "name", "given"], default="fewest",
                            help="Order of the hosts (default fewest servers first)")
        parser.add_argument("--move-back", action="store_true",
                            help="Bring each host's servers back once it is in service again")
        parser.add_argument("--allow-skip", action="store_true",
                            help="Service hosts holding novamove:maintenance=skip servers")
        parser.add_argument("--allow-unmovable", action="store_true",
                            help="Service hosts holding servers Nova cannot move (ERROR, ...)")
        parser.add_argument("--hook-timeout", metavar="<seconds>", type=positive_float, default=3600.0)
        parser.add_argument("--gate", choices=("restart", "heartbeat"), default=None,
                            help="restart (default with a hook): the host booted, or its nova-compute "
                                 "was seen down and up, after the hook began; heartbeat: a report "
                                 "after the hook ended")
        parser.add_argument("--gate-timeout", metavar="<seconds>", type=positive_float, default=900.0,
                            help="How long the gate may take to pass after the hook")
        parser.add_argument("--check-timeout", metavar="<seconds>", type=positive_float, default=600.0)
        parser.add_argument("--max-parallel", metavar="<n>", type=positive_int, default=4,
                            help="Drain cap: moves in flight in all (default 4)")
        parser.add_argument("--max-per-host", metavar="<m>", type=positive_int, default=2,
                            help="Drain cap: moves in flight per source and destination (default 2)")
        parser.add_argument("--timeout", dest="step_timeout", metavar="<seconds>",
                            type=positive_float, default=1800.0,
                            help="Give up on one move after this many seconds (default 1800)")
        parser.add_argument("--poll-interval", metavar="<seconds>", type=positive_float)
        parser.add_argument("--reason", metavar="<text>", help="Added to the hosts' disabled reason")
        parser.add_argument("--on-interrupt", choices=["finish", "abort"], default="finish",
                            help="On Ctrl-C/SIGTERM: in-flight moves finish or abort (default finish)")
        on_stall_argument(parser)
        parser.add_argument("--dry-run", action="store_true",
                            help="List the whole ordered campaign; change nothing")
        parser.add_argument("--resume", metavar="<run>", help="Continue campaign <run>")
        parser.add_argument("--rerun-hook", action="store_true",
                            help="On resume: run again a hook the stopped run did not see end")
        parser.add_argument("--hook-done", action="store_true",
                            help="On resume: take such a hook as done and go on to the gate")
        parser.add_argument("--estimate-move", metavar="<seconds>", type=float,
                            help="Dry run: seconds per move for the estimate (default 30)")
        parser.add_argument("--estimate-hook", metavar="<seconds>", type=float,
                            help="Dry run: seconds per hook for the estimate (default 300)")
        return parser

    def take_action(self, parsed_args):
        from novamove import api, errors
        a = parsed_args
        if a.resume and (a.hosts or a.zone or a.aggregate or a.all_hosts):
            raise errors.UsageError("--resume RUN takes the hosts and options of RUN: name no hosts with it")
        if not a.resume and not (a.hosts or a.zone or a.aggregate or a.all_hosts):
            raise errors.UsageError("name the hosts to maintain, or select them with --zone, "
                                    "--aggregate or --all")
        report = api.maintain(
            list(a.hosts), cloud=self._cloud, **self._observing, zone=a.zone, aggregate=a.aggregate,
            all_hosts=a.all_hosts, hook=a.hook, check=a.check, max_hosts=a.max_hosts,
            max_failed_hosts=a.max_failed_hosts, group_budget=a.group_budget, order=a.order,
            move_back=a.move_back, allow_skip=a.allow_skip, allow_unmovable=a.allow_unmovable,
            hook_timeout=a.hook_timeout, gate=a.gate, gate_timeout=a.gate_timeout, check_timeout=a.check_timeout,
            max_parallel=a.max_parallel, max_per_host=a.max_per_host, step_timeout=a.step_timeout,
            poll_interval=a.poll_interval, reason=a.reason, dry_run=a.dry_run, resume=a.resume,
            rerun_hook=a.rerun_hook, hook_done=a.hook_done, on_interrupt=a.on_interrupt,
            progress=self._progress_line, move_seconds=a.estimate_move,
            hook_seconds=a.estimate_hook, on_stall=a.on_stall)
        data = report.to_dict()
        if not report.ok:
            self._exit_code = report.exit_code
        (self._error if not report.ok else self._note)(report.summary)
        if report.dry_run:
            return rows(MAINTAIN_PLAN_KEYS, (data.get("plan") or {}).get("host_plans", []))
        return rows(MAINTAIN_KEYS, data.get("results", []))


class CampaignStatus(_NovamoveCommand, command.Lister):
    """Maintenance campaigns in the local journal (newest first), or one with each host's state
    (novamove campaign status)."""

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("run_id", metavar="<run>", nargs="?", help="One campaign: its hosts")
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        found = api.campaign_status(parsed_args.run_id)
        if parsed_args.run_id and found:
            run = found[0]
            self._note(f"campaign {run['run_id']}: {run['status']} (started {run['started_at']}"
                       f"{report.campaign_by(run)}); "
                       f"{run.get('summary') or ''}")
            return rows(CAMPAIGN_HOST_KEYS, [{"host": h, **st} for h, st in run["host_state"].items()])
        return rows(CAMPAIGN_KEYS, found)


class CampaignStop(_NovamoveCommand, command.ShowOne):
    """Ask a running campaign to stop gracefully, as Ctrl-C would: no new host starts, the hosts
    in flight finish (novamove campaign stop)."""

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("run_id", metavar="<run>", help="The campaign's run ID")
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        run = api.campaign_stop(parsed_args.run_id)
        self._note(f"asked campaign {run['id']} (pid {run['pid']}) to stop: it starts no new host "
                   "and finishes the hosts in flight")
        return show(STOP_KEYS, run)


# ---------------------------------------------------------------------------- the journal

class History(_NovamoveCommand, command.Lister):
    """novamove runs from the local journal, newest first (novamove history)."""

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--limit", metavar="<n>", type=positive_int, default=20,
                            help="At most this many runs (default 20)")
        return parser

    def take_action(self, parsed_args):
        from novamove import api
        return rows(RUN_KEYS, report.run_rows(api.history(limit=parsed_args.limit)))


class Recover(_NovamoveCommand, command.Lister):
    """Undo what interrupted novamove runs left behind: re-enable services, confirm or report
    resizes (novamove recover)."""

    observed = True

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--run", dest="run_id", metavar="<run>",
                            help="Only this run (default: every unfinished run)")
        _flag_pair(parser, "confirm", "--confirm", "--no-confirm",
                   "Confirm servers left in VERIFY_RESIZE on their target (default)",
                   "Only report servers left in VERIFY_RESIZE")
        parser.add_argument("--break-lock", action="store_true",
                            help="With --run: re-enable the computes carrying that run's tag even "
                                 "though this journal does not know the run")
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="List what would be undone; change nothing")
        return parser

    def take_action(self, parsed_args):
        from novamove import api, errors
        if parsed_args.break_lock and not parsed_args.run_id:
            raise errors.UsageError("--break-lock needs --run RUN_ID (the run whose tags to remove)")
        found = api.recover(run_id=parsed_args.run_id, confirm=parsed_args.confirm,
                            break_lock=parsed_args.break_lock, dry_run=parsed_args.dry_run,
                            cloud=self._cloud, **self._observing)
        if not found:
            self._note("nothing to recover")
        return rows(RECOVER_KEYS, found)


# ---------------------------------------------------------------------------- doctor

class Doctor(_NovamoveCommand, command.Lister):
    """Find (and with --fix repair) the drift failed migrations leave behind, through Nova's
    and Placement's APIs alone (novamove doctor; classes and repairs: docs/doctor.md).

    Exit codes: 0 nothing found (or all fixed, read back clean); 10 findings left; 1 a repair
    did not take; 2 bad input; 3 unknown host or server."""

    observed = True           # --fix changes the cloud: its repairs stream and count like any run
    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("classes", metavar="<class>", nargs="*",
                            help="With --fix: repair these drift classes (e.g. verify-resize-forgotten, "
                                 "one-way) instead of only the safe ones")
        parser.add_argument("--fix", action="store_true",
                            help="Repair what is repairable: with no <class> only the classes documented "
                                 "as safe")
        parser.add_argument("--host", dest="hosts", metavar="<host>", action="append", default=[],
                            help="Only findings about this compute (repeatable)")
        parser.add_argument("--server", dest="servers", metavar="<server>", action="append", default=[],
                            help="Only findings about this server, UUID or name (repeatable)")
        parser.add_argument("--older-than", metavar="<seconds>", type=float, default=None,
                            help="VERIFY_RESIZE and non-terminal migrations older than this are drift "
                                 "(0 flags every one; default 3600)")
        return parser

    def take_action(self, parsed_args):
        from novamove import api, errors
        if parsed_args.classes and not parsed_args.fix:
            raise errors.UsageError("<class> names choose repairs: add --fix (without it doctor only reports)")
        rep = api.doctor(hosts=parsed_args.hosts, servers=parsed_args.servers,
                         older_than=parsed_args.older_than, fix=parsed_args.fix,
                         fix_classes=list(parsed_args.classes) or None,
                         progress=self._progress_line if parsed_args.fix else None, cloud=self._cloud,
                         **self._observing)
        self._exit_code = rep.exit_code
        if self._metrics is not None:        # findings left by class, as `novamove doctor` counts them
            self._metrics.doctor_findings([f.to_dict()["class"] for f in rep.remaining])
        self._note(f"scan: {rep.stats.total} API requests, {rep.stats.seconds:.1f} s"
                   + (f"; run {rep.run_id}" if rep.run_id else ""))
        (self._error if rep.exit_code == errors.EXIT_FAILED else self._note)(rep.summary)
        return rows(DOCTOR_FIX_KEYS if rep.fix else DOCTOR_KEYS, report.doctor_rows(rep))
