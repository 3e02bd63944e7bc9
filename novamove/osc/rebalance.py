"""`openstack novamove rebalance`: `novamove rebalance` in the `openstack` CLI.

Like the other plugin commands: parse, call novamove.api only, one row per server (the planned
steps with --dry-run, else the results), novamove's exit codes; the figures (before, predicted,
read back from Placement) go to stderr as the summary line.
"""

from __future__ import annotations

from novamove.osc.v1 import _BatchCommand, _cap_options, on_stall_argument, positive_int


class Rebalance(_BatchCommand):
    """Spread load over compute hosts, or pack it to empty hosts, from Placement alone.

    The scope is the <host>s named, or --zone's, or --aggregate's, or every compute. Without
    --dry-run the plan is applied at once (caps, each step checked again, journaled; `openstack
    novamove recover` after a crash). Exit codes: 0 every move landed and the hosts, read back
    from Placement, are within the plan's figures; 1 a move failed or they are not; 2 bad input;
    3 unknown host, zone or aggregate; 4 an unfinished rebalance run (recover it first).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("hosts", metavar="<host>", nargs="*",
                            help="Compute hosts in scope (default: --zone's, --aggregate's, or all)")
        parser.add_argument("--goal", default="spread",
                            help="spread (lower the most loaded hosts toward the mean, default) or pack "
                                 "(empty as many hosts as possible)")
        parser.add_argument("--zone", metavar="<az>", help="The hosts of this availability zone")
        parser.add_argument("--aggregate", metavar="<name>", help="The hosts of this host aggregate")
        parser.add_argument("--max-moves", metavar="<n>", type=int, default=None,
                            help="At most this many moves (at least 1)")
        parser.add_argument("--min-gain", metavar="<pct>", type=float, default=None,
                            help="spread: refuse moves that lower the most loaded host by fewer "
                                 "percentage points (default 2)")
        parser.add_argument("--disable-emptied", action="store_true",
                            help="pack: leave each emptied host disabled with a tagged reason")
        parser.add_argument("--reason", metavar="<text>", help="Added to the emptied hosts' disabled reason")
        parser.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                            help="List the plan and its before/after figures; change nothing")
        _cap_options(parser)
        on_stall_argument(parser)
        return parser

    def take_action(self, parsed_args):
        from novamove import api

        options = api.rebalance_options(goal=parsed_args.goal, hosts=tuple(parsed_args.hosts),
                                        zone=parsed_args.zone, aggregate=parsed_args.aggregate,
                                        max_moves=parsed_args.max_moves, min_gain=parsed_args.min_gain,
                                        disable_emptied=parsed_args.disable_emptied, reason=parsed_args.reason,
                                        max_parallel=parsed_args.max_parallel,
                                        max_per_host=parsed_args.max_per_host)
        report = api.rebalance(options, cloud=self._cloud, **self._observing, dry_run=parsed_args.dry_run,
                               step_timeout=parsed_args.timeout, on_interrupt=parsed_args.on_interrupt,
                               poll_interval=parsed_args.poll_interval, on_stall=parsed_args.on_stall,
                               progress=self._progress_line)
        return self._show(report)


__all__ = ["Rebalance", "positive_int"]
