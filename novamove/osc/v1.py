"""The novamove commands of the `openstack` CLI (command group `openstack.novamove.v1`).

Thin like novamove's own CLI: parse, call novamove.api with `client_manager.novamove` (the
connection OSC made), shape the result into cliff's columns so `-f table|json|yaml|value|csv`
and `-c COLUMN` work, and exit with novamove's documented codes (novamove/errors.py): a failed
move or drain prints its one-line error on stderr and makes `openstack` exit non-zero.

Column names follow `openstack server migration list/show` ("Source Compute", "Dest Compute",
"Type", ...). Progress goes to the log: `-v` shows it.
"""

from __future__ import annotations

import argparse
import logging

from osc_lib.command import command

LOG = logging.getLogger(__name__)

MOVE_COLUMNS = ("Server UUID", "Server Name", "Source Compute", "Dest Compute", "Compute Host",
                "Hypervisor Hostname", "Status", "Power State", "Type", "Migration ID",
                "Migration Status", "Strategy", "Run ID", "Result", "Summary")
BATCH_COLUMNS = ("Server UUID", "Server Name", "Source Compute", "Dest Compute", "Type", "Result",
                 "Seconds", "Detail")
TYPES = {"live": "live-migration", "cold": "migration"}


def migration_type(mode):
    """novamove's mode as Nova names the migration type."""
    return TYPES.get(mode, mode)


def move_row(result) -> tuple:
    """One MoveResult as (columns, values) for a ShowOne (from report.move_document, the
    schema the CLI and Ansible show)."""
    from novamove import report
    doc = report.move_document(result)
    after = doc.get("after") or {}
    if not result.ok:
        outcome = "failed"
    elif result.check_mode:
        outcome = "would move" if result.changed else "unchanged"
    elif result.changed:
        outcome = "moved" if result.migration_status not in ("running", "queued", "preparing",
                                                              "pre-migrating", "migrating",
                                                              "accepted") else "in progress"
    else:
        outcome = "unchanged"
    values = (doc.get("server_id"), doc.get("server_name"), doc.get("source_compute"),
              doc.get("dest_compute"), after.get("compute_host"), after.get("hypervisor_hostname"),
              after.get("status"), after.get("power_state"), migration_type(doc.get("mode")),
              doc.get("migration_id"), doc.get("migration_status"), doc.get("strategy"),
              doc.get("run_id"), outcome, doc.get("summary"))
    return MOVE_COLUMNS, values


def batch_rows(report) -> tuple:
    """A drain/undrain BatchReport as (columns, rows) for a Lister: the per-server results, or
    the planned steps of a dry run (from report.batch_document, the CLI's and Ansible's schema)."""
    from novamove import report as render
    data = render.batch_document(report)
    rows = []
    if data.get("dry_run") and not data.get("results"):
        for step in (data.get("plan") or {}).get("steps", []):
            planned = step.get("dest_compute") is not None
            rows.append((step.get("server_id"), step.get("server_name"), step.get("source_compute"),
                         step.get("dest_compute"), migration_type(step.get("mode")),
                         "planned" if planned else "skipped", None,
                         "" if planned else step.get("skip_reason") or ""))
    else:
        for r in data.get("results", []):
            rows.append((r.get("server_id"), r.get("server_name"), r.get("source_compute"),
                         r.get("dest_compute"), migration_type(r.get("mode")), r.get("result"),
                         r.get("seconds"), r.get("detail")))
    return BATCH_COLUMNS, rows


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


class _NovamoveCommand:
    """Mixed into each command (before the cliff base): novamove errors become one line on
    stderr and novamove's exit code instead of cliff's generic 1 (with --debug, cliff's
    traceback as usual); a result that did not land sets the exit code after its output."""

    _exit_code = 0
    observed = False      # a verb that changes the cloud: --events, --metrics-textfile, --metrics-push
    _observers: tuple = ()
    _metrics = None       # the RunMetrics of --metrics-* (doctor adds its findings to it)

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        if self.observed:
            parser.add_argument("--events", metavar="<file>|-",
                                help="Append every journal state change to <file> as one JSON object per "
                                     "line (novamove's docs/events.md); '-': to stdout, the rest to stderr")
            parser.add_argument("--metrics-textfile", metavar="<path>",
                                help="Write the run's Prometheus metrics to <path> (node_exporter textfile)")
            parser.add_argument("--metrics-push", metavar="<url>",
                                help="Push the run's Prometheus metrics to this Pushgateway")
        return parser

    def run(self, parsed_args):
        from novamove.errors import NovamoveError

        closers = self._observe(parsed_args)
        try:
            code = super().run(parsed_args)
        except NovamoveError as exc:
            if getattr(getattr(self.app, "options", None), "debug", False):
                raise
            self._error(str(exc))
            return exc.exit_code
        finally:
            for close in closers:
                close()
        return self._exit_code or code

    def _observe(self, parsed_args) -> list:
        """The journal observers the options ask for (novamove.observe), and what closes them."""
        events = getattr(parsed_args, "events", None)
        textfile = getattr(parsed_args, "metrics_textfile", None)
        push = getattr(parsed_args, "metrics_push", None)
        observers, closers = [], []
        if events:
            from novamove.observe.stream import EventStream
            if events == "-":
                stream, saved = EventStream(self.app.stdout), self.app.stdout
                self.app.stdout = self.app.stderr
                closers.append(lambda: setattr(self.app, "stdout", saved))
            else:
                stream = EventStream.open(events)
                closers.append(stream.close)
            observers.append(stream)
        if textfile or push:
            from novamove.observe.metrics import RunMetrics
            metrics = self._metrics = RunMetrics(textfile=textfile, push_url=push)
            observers.append(metrics)
            closers.insert(0, metrics.flush)
        self._observers = tuple(observers)
        return closers

    def _error(self, message: str) -> None:
        self.app.stderr.write(f"{message}\n")

    def _note(self, message: str) -> None:
        """A line for people, on stderr, so stdout stays what -f asked for."""
        if getattr(getattr(self.app, "options", None), "verbose_level", 1) >= 1:
            self.app.stderr.write(f"{message}\n")

    @property
    def _observing(self) -> dict:
        """The api's observers= keyword when --events/--metrics-* asked for any."""
        return {"observers": self._observers} if self._observers else {}

    @property
    def _cloud(self):
        return self.app.client_manager.novamove

    def _progress_snapshot(self, snapshot) -> None:
        from novamove import report
        self.log.info(report.describe(snapshot))

    def _progress_line(self, line: str) -> None:
        self.log.info(line)


def _mode_options(parser, live_help: str, cold_help: str, with_mode: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    if with_mode:       # `novamove drain --mode`
        group.add_argument("--mode", dest="mode", choices=["auto", "live", "cold"],
                           help="auto: live for ACTIVE/PAUSED, cold for SHUTOFF (default auto)")
    group.add_argument("--live", "--live-migration", dest="mode", action="store_const", const="live",
                       help=live_help + " (--live-migration: as 'openstack server migrate')")
    group.add_argument("--cold", dest="mode", action="store_const", const="cold", help=cold_help)
    parser.set_defaults(mode="auto")


class MoveServer(_NovamoveCommand, command.ShowOne):
    """Move a server to the compute host you name, or the scheduler's choice (live or cold), with novamove.

    Pre-checks the target (enabled, up, capacity, server groups, zone), picks live for
    ACTIVE/PAUSED and cold for SHUTOFF servers, waits for the migration and confirms a cold one.
    """

    observed = True

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("server", metavar="<server>", help="Server to move (name or ID, any project)")
        parser.add_argument("--to", "--host", dest="host", metavar="<host>", default=None,
                            help="Target compute host (service host or hypervisor hostname; --host: "
                                 "as 'openstack server migrate'); without it Nova's scheduler chooses")
        _mode_options(parser, "Live migrate (default for ACTIVE/PAUSED servers)",
                      "Cold migrate (default for SHUTOFF servers)")
        wait = parser.add_mutually_exclusive_group()
        wait.add_argument("--wait", dest="wait", action="store_true", default=True,
                          help="Wait for the move to finish (default)")
        wait.add_argument("--no-wait", dest="wait", action="store_false",
                          help="Return once the move is accepted and scheduled "
                               "(follow it with 'openstack server migration wait')")
        parser.add_argument("--timeout", metavar="<seconds>", type=positive_float, default=600.0,
                            help="Give up waiting after this many seconds (default 600)")
        parser.add_argument("--on-timeout", choices=["abort", "force-complete", "leave"],
                            default="abort",
                            help="What to do with a live migration still running at the timeout "
                                 "(default abort)")
        on_stall_argument(parser)
        parser.add_argument("--strategy", choices=["auto", "native", "isolate"], default="auto",
                            help="native: the API targets the host; isolate: disable the other "
                                 "computes until the scheduler has decided (default auto)")
        confirm_options(parser)
        parser.add_argument("--reason", metavar="<text>",
                            help="Why (written in the disabled reason with --strategy isolate)")
        parser.add_argument("--schedule-timeout", metavar="<seconds>", type=positive_float,
                            default=60.0, help="How long the scheduler may take to choose, with "
                                               "--strategy isolate (default 60)")
        parser.add_argument("--dry-run", "--check", dest="check_mode", action="store_true",
                            help="Run every pre-check and say what would happen; change nothing")
        parser.add_argument("--if-needed", action="store_true",
                            help="Already on the target is success (exit 0) instead of an error")
        return parser

    def take_action(self, parsed_args):
        from novamove import api, errors, report

        result = api.migrate(parsed_args.server, parsed_args.host, cloud=self._cloud, **self._observing,
                             mode=parsed_args.mode, strategy=parsed_args.strategy,
                             reason=parsed_args.reason, confirm=parsed_args.confirm,
                             wait=parsed_args.wait, timeout=parsed_args.timeout,
                             on_timeout=parsed_args.on_timeout, check_mode=parsed_args.check_mode,
                             schedule_timeout=parsed_args.schedule_timeout, on_stall=parsed_args.on_stall,
                             progress=self._progress_snapshot)
        already_there(result, parsed_args.if_needed)
        if not result.ok:
            self._exit_code = result.exit_code or errors.EXIT_FAILED
            self._error(report.error_line(result))
        return move_row(result)


def confirm_options(parser, default: bool = True) -> None:
    """--confirm / --no-confirm (as `novamove migrate|back|wait`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--confirm", dest="confirm", action="store_true", default=default,
                       help="Confirm a cold move that reaches VERIFY_RESIZE" + (" (default)" if default else ""))
    group.add_argument("--no-confirm", dest="confirm", action="store_false",
                       help="Leave a cold move in VERIFY_RESIZE" + ("" if default else " (default)"))


def already_there(result, if_needed: bool) -> None:
    """Asked to move a server where it already is: as `novamove migrate` says, on the command
    line that is most likely a mistake (Ansible treats it as done); --if-needed makes it 0."""
    from novamove import errors
    if result.ok and not result.changed and not result.check_mode and not if_needed:
        raise errors.PreconditionFailed(result.summary.replace(" and has a status of", ", status")
                                        + " (--if-needed: exit 0)")


class WaitServerMigration(_NovamoveCommand, command.ShowOne):
    """Wait for the migration a server is in (started with --no-wait, or by anyone) to end.

    Judges the outcome like 'openstack server move': the exit code is 0 only if the server
    landed on a new host.
    """

    observed = True

    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("server", metavar="<server>", help="Server to follow (name or ID)")
        parser.add_argument("--timeout", metavar="<seconds>", type=positive_float, default=600.0,
                            help="Give up waiting after this many seconds (default 600)")
        parser.add_argument("--on-timeout", choices=["abort", "force-complete", "leave"],
                            default="leave",
                            help="What to do with a live migration still running at the timeout "
                                 "(default leave)")
        confirm_options(parser, default=False)
        return parser

    def take_action(self, parsed_args):
        from novamove import api, errors, report

        result = api.wait(parsed_args.server, cloud=self._cloud, **self._observing, confirm=parsed_args.confirm,
                          timeout=parsed_args.timeout, on_timeout=parsed_args.on_timeout,
                          progress=self._progress_snapshot)
        if not result.ok:
            self._exit_code = result.exit_code or errors.EXIT_FAILED
            self._error(report.error_line(result))
        return move_row(result)


def on_stall_argument(parser) -> None:
    """--on-stall, as the novamove CLI has it (novamove.engine.stall)."""
    parser.add_argument("--on-stall", choices=["force-complete", "abort", "cold", "leave"],
                        default="force-complete",
                        help="What to do with a live migration that stops converging: force-complete "
                             "(post-copy where permitted), abort (a drain retries once on another "
                             "host), cold (abort, then move it cold), leave (default force-complete; "
                             "servers tagged novamove:maintenance=live are never moved cold, "
                             "=live-strict never force-completed)")


def _cap_options(parser) -> None:
    parser.add_argument("--max-parallel", metavar="<n>", type=positive_int, default=4,
                        help="At most this many moves in flight in all (default 4)")
    parser.add_argument("--max-per-host", metavar="<m>", type=positive_int, default=2,
                        help="At most this many moves in flight from one source host and into "
                             "one destination host (default 2)")
    parser.add_argument("--timeout", metavar="<seconds>", type=positive_float, default=1800.0,
                        help="Give up on one move after this many seconds (default 1800)")
    parser.add_argument("--on-interrupt", choices=["finish", "abort"], default="finish",
                        help="On Ctrl-C, start nothing new and finish or abort the in-flight "
                             "moves (default finish)")
    parser.add_argument("--poll-interval", metavar="<seconds>", type=positive_float,
                        help="How often the in-flight moves are listed (default 0.5)")


class _BatchCommand(_NovamoveCommand, command.Lister):
    observed = True
    log = LOG

    def _show(self, report):
        if not report.ok:
            self._exit_code = report.exit_code
        if report.service:
            self._note(report.service)
        (self._error if not report.ok else self._note)(report.summary)
        return batch_rows(report)


class DrainComputeHost(_BatchCommand):
    """Empty compute host(s) for maintenance: disable with a tagged reason, move every server off.

    Live moves for ACTIVE/PAUSED servers, cold moves (confirmed) for SHUTOFF ones, within the
    concurrency caps; servers that cannot move are reported as skipped. Run it again after an
    interruption to continue. Undo with 'openstack compute host undrain'.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("hosts", metavar="<host>", nargs="+",
                            help="Compute host(s) to drain (service host or hypervisor hostname)")
        parser.add_argument("--to", dest="targets", metavar="<host>", action="append", default=[],
                            help="Only move servers to this compute host (repeat for more; "
                                 "default any eligible host)")
        _mode_options(parser, "Move every server live (default: live for ACTIVE/PAUSED)",
                      "Move every server cold (default: cold for SHUTOFF)", with_mode=True)
        parser.add_argument("--order", choices=["largest", "smallest", "name", "id"],
                            default="largest", help="Order in which the moves start (default largest)")
        parser.add_argument("--reason", metavar="<text>",
                            help="Text added to the disabled reason of the host")
        parser.add_argument("--allow-unmovable", action="store_true",
                            help="Succeed even if servers Nova cannot move (ERROR, SHELVED, ...) "
                                 "stay on the host (default: they make the drain exit 8)")
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="List the plan and pre-checks; change nothing")
        _cap_options(parser)
        on_stall_argument(parser)
        return parser

    def take_action(self, parsed_args):
        from novamove import api

        hosts = parsed_args.hosts[0] if len(parsed_args.hosts) == 1 else list(parsed_args.hosts)
        report = api.drain(hosts, cloud=self._cloud, **self._observing, targets=tuple(parsed_args.targets),
                           mode=parsed_args.mode, order=parsed_args.order, reason=parsed_args.reason,
                           max_parallel=parsed_args.max_parallel,
                           max_per_host=parsed_args.max_per_host, dry_run=parsed_args.dry_run,
                           step_timeout=parsed_args.timeout, on_interrupt=parsed_args.on_interrupt,
                           poll_interval=parsed_args.poll_interval,
                           allow_unmovable=parsed_args.allow_unmovable, on_stall=parsed_args.on_stall,
                           progress=self._progress_line)
        return self._show(report)


class UndrainComputeHost(_BatchCommand):
    """Put a compute host drained by novamove back in service (and, with --move-back, refill it).

    Re-enables the compute service only if a novamove drain disabled it; an operator's own
    disable is left alone.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("host", metavar="<host>",
                            help="Compute host to undrain (service host or hypervisor hostname)")
        parser.add_argument("--move-back", action="store_true",
                            help="Also bring back the servers the drains of this host moved away")
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="Say what would happen; change nothing")
        _cap_options(parser)
        on_stall_argument(parser)
        return parser

    def take_action(self, parsed_args):
        from novamove import api

        report = api.undrain(parsed_args.host, cloud=self._cloud, **self._observing, move_back=parsed_args.move_back,
                             max_parallel=parsed_args.max_parallel,
                             max_per_host=parsed_args.max_per_host, dry_run=parsed_args.dry_run,
                             step_timeout=parsed_args.timeout, on_interrupt=parsed_args.on_interrupt,
                             poll_interval=parsed_args.poll_interval, on_stall=parsed_args.on_stall,
                             progress=self._progress_line)
        return self._show(report)
