"""`novamove rebalance`: plan spread or pack from Placement alone (novamove.rebalance), and run
the plan with the batch runner `apply` uses (caps, a pre-condition per step, the journal).

    plan = make_plan(cloud, Options(goal="spread", zone="az1"))     # reads only
    report = apply_rebalance(cloud, plan, journal=journal)            # or `novamove apply FILE`

How a run goes (each change journaled before it is made):
1. the plan is journaled (rebalance.plan, with its figures);
2. its moves run under the caps (drain.move / drain.confirm ... events: the batch runner's);
3. the hosts in scope are read back from Placement: the run is ok only when every move landed
   and the read-back figures are within the plan's (max usage; pack: the emptied hosts empty);
4. pack with `disable_emptied`: each emptied host read back empty is disabled with a drain tag
   (`novamove:<run>: drain: rebalance pack emptied ...`), so `novamove undrain HOST` gives it
   back and `recover` leaves it; a host someone else disabled keeps their reason.

A run killed mid-way stays `running` in the journal: `novamove recover` follows the moves it
left in flight to their end (confirming cold ones) and closes it (`recover_run`); a new
rebalance refuses to start while one is unfinished.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine import events, tags
from novamove.engine.batch.adopt import _adopt_leftovers
from novamove.engine.batch.common import (MOVED, POLL_INTERVAL, _requests, _validate_options)
from novamove.engine.batch.drain import gather_state, resolve_hosts
from novamove.engine.batch.moves import BatchRunner
from novamove.engine.batch.report import BatchReport, batch_progress
from novamove.engine.intents import intents_of
from novamove.engine.frame import RunFrame, mark_recovered
from novamove.engine.journal import run_alive
from novamove.model import Host
from novamove.planner import DrainStep, plan_to_dict
from novamove.rebalance import (DEFAULT_MIN_GAIN, GOALS, PACK, Figures, RebalancePlan, plan_rebalance,
                                usage_of)

# Read back, a host's usage may exceed the plan's figure by this much (points) and still count
# as "within the plan": Placement rounds nothing, but another tenant's build may land meanwhile.
TOLERANCE = 0.5
EMPTIED_REASON = "rebalance pack emptied"


@dataclass(frozen=True)
class Options:
    """What `novamove rebalance` takes, checked once (`validate`) before anything is read."""
    goal: str = "spread"
    hosts: tuple[str, ...] = ()
    zone: Optional[str] = None
    aggregate: Optional[str] = None
    max_moves: Optional[int] = None
    min_gain: float = DEFAULT_MIN_GAIN
    disable_emptied: bool = False
    reason: Optional[str] = None
    max_parallel: int = 4
    max_per_host: int = 2

    def validate(self) -> "Options":
        if self.goal not in GOALS:
            raise errors.UsageError(f"unknown goal {self.goal!r}: expected one of {', '.join(GOALS)}")
        if self.max_moves is not None and (isinstance(self.max_moves, bool) or not isinstance(self.max_moves, int)
                                           or self.max_moves < 1):
            raise errors.UsageError(f"--max-moves must be a whole number of at least 1 (leave it out for no "
                                    f"limit), not {self.max_moves!r}")
        if isinstance(self.min_gain, bool) or not isinstance(self.min_gain, (int, float)) \
                or not math.isfinite(self.min_gain) or self.min_gain < 0:
            raise errors.UsageError(f"--min-gain must be a number of percentage points >= 0, not {self.min_gain!r}")
        if self.aggregate is not None and (self.zone is not None or self.hosts):
            raise errors.UsageError("--aggregate selects the hosts: name no host and no --zone with it")
        if self.disable_emptied and self.goal != PACK:
            raise errors.UsageError("--disable-emptied goes with --goal pack (spread empties no host)")
        if self.max_parallel < 1 or self.max_per_host < 1:
            raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
        tags.check_reason(self.reason)
        return self


# ------------------------------------------------------------------------------ planning

def scope_of(cloud: Any, options: Options, hosts: Sequence[Host]) -> tuple[list[str], Optional[str]]:
    """(the service host names in scope, the zone to check them against). Unknown names raise."""
    if options.aggregate is not None:
        by_node = {h.hypervisor_hostname: h.name for h in hosts if h.hypervisor_hostname}
        names = {h.name for h in hosts}
        members = [by_node.get(a, a) for a in cloud.aggregate_hosts(options.aggregate)]
        chosen = sorted({m for m in members if m in names})
        if not chosen:
            raise errors.NotFound(f"host aggregate {options.aggregate!r} holds no compute host of this cloud")
        return chosen, None
    return resolve_hosts(options.hosts, hosts), options.zone


def make_plan(cloud: Any, options: Options) -> RebalancePlan:
    """Read the cloud (every read through the adapter: retried, faultable) and plan."""
    options.validate()
    hosts = cloud.compute_hosts(with_resources=True)
    names, zone = scope_of(cloud, options, hosts)
    if zone is not None and not names:
        names = [h.name for h in hosts if h.zone == zone]
        if not names:
            raise errors.NotFound(f"no compute host in availability zone {zone!r}")
    scope = names or [h.name for h in hosts]
    state = gather_state(cloud, scope, hosts)
    intents, _ = intents_of(s for s in state.servers if s.host in set(scope))
    plan = plan_rebalance(state, goal=options.goal, hosts=scope, zone=zone, max_moves=options.max_moves,
                          min_gain=options.min_gain, intents=intents, traits=traits_of(cloud, hosts, scope, state),
                          created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    status = {s.id: s.status for s in state.servers}
    groups = {s.id: tuple(s.server_groups) for s in state.servers}
    plan.steps = [DrainStep(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)},
                            status=status.get(s.server_id, ""), groups=groups.get(s.server_id, ()))
                  for s in plan.steps]
    # Servers whose intent chose live or cold keep that mode when they run (never adapted).
    plan.pinned = tuple(sorted(sid for sid, intent in intents.items() if intent in ("live", "cold")))
    plan.zone, plan.aggregate = options.zone, options.aggregate
    plan.max_parallel, plan.max_per_host = options.max_parallel, options.max_per_host
    plan.disable_emptied, plan.reason = options.disable_emptied, options.reason
    plan.cloud = getattr(cloud, "identity", None)
    return plan


def traits_of(cloud: Any, hosts: Sequence[Host], scope: Sequence[str], state: Any) -> Optional[dict]:
    """Each host's Placement traits, read only when a server in scope has a flavor that
    requires or forbids one (one request per host)."""
    wanted = set(scope)
    if not any(s.flavor is not None and (s.flavor.required_traits or s.flavor.forbidden_traits)
               for s in state.servers if s.host in wanted):
        return None
    return {h.name: frozenset(cloud.provider_traits(h.hypervisor_hostname or h.name))
            for h in hosts if h.name in wanted}


def read_back(cloud: Any, names: Sequence[str]) -> tuple[Figures, dict[str, int]]:
    """The hosts' figures as Placement and Nova show them now, and each host's server count."""
    by_name = {h.name: h for h in cloud.compute_hosts(with_resources=True)}
    counts = {n: len(cloud.list_servers_on_host(n)) for n in names}
    usages = [usage_of(_vec(by_name[n].capacity), _vec(by_name[n].used)) for n in names if n in by_name]
    finite = [u for u in usages if math.isfinite(u)]
    mean = sum(finite) / len(finite) if finite else 0.0
    spread = (sum((u - mean) ** 2 for u in finite) / len(finite)) ** 0.5 if len(finite) > 1 else 0.0
    return Figures(max_usage=round(max(usages, default=0.0), 2), spread=round(spread, 2),
                   hosts_empty=sum(1 for n in names if counts[n] == 0),
                   servers=sum(counts.values())), counts


def _vec(r) -> list[float]:
    return [r.vcpus, r.memory_mb, r.disk_gb, r.pcpus]


# ------------------------------------------------------------------------------ the report

@dataclass
class RebalanceReport(BatchReport):
    """A BatchReport (results, caps, run id) plus the plan's claims and what was read back."""
    read_back: Optional[Figures] = None
    emptied_left: dict[str, int] = field(default_factory=dict)   # pack: emptied hosts not empty (servers)
    disabled: list[str] = field(default_factory=list)
    kept_their_reason: list[str] = field(default_factory=list)  # disabled by someone else: untouched

    @property
    def within_plan(self) -> bool:
        plan, got = self.plan, self.read_back
        if got is None or plan is None or plan.after is None:
            return False
        return got.max_usage <= plan.after.max_usage + TOLERANCE and not self.emptied_left

    @property
    def ok(self) -> bool:
        if self.dry_run:
            return True
        return super().ok and self.within_plan

    @property
    def exit_code(self) -> int:
        code = super().exit_code
        if code == errors.EXIT_OK and not self.dry_run and not self.within_plan:
            return errors.EXIT_FAILED
        return code

    @property
    def summary(self) -> str:
        plan = self.plan
        b, a = plan.before, plan.after
        head = (f"{plan.goal} over {len(plan.hosts)} hosts: {len(plan.moves)} moves, max usage "
                f"{b.max_usage:g}% -> {a.max_usage:g}% (spread {b.spread:g} -> {a.spread:g})"
                + (f", emptied {', '.join(plan.emptied) or 'none'}" if plan.goal == PACK else ""))
        if self.dry_run:
            return f"rebalance plan: {head} (dry run: nothing changed)"
        parts = [f"{self.count(MOVED)} moved"] + [f"{self.count(x)} {x}" for x in
                                                  ("skipped", "failed", "aborted", "not-started", "in-flight", "gone")
                                                  if self.count(x)]
        got = self.read_back
        if got is not None:
            parts.append(f"read back: max usage {got.max_usage:g}%, spread {got.spread:g}, "
                         f"{got.hosts_empty} empty ({'within' if self.within_plan else 'NOT within'} the plan)")
        for host, n in self.emptied_left.items():
            parts.append(f"{host} still holds {n} server(s)")
        if self.disabled:
            parts.append(f"left disabled: {', '.join(self.disabled)}")
        if self.kept_their_reason:
            parts.append(f"disabled by someone else, untouched: {', '.join(self.kept_their_reason)}")
        return ("interrupted: " if self.interrupted else "") + f"{self.verb}: {head}; " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        from novamove.rebalance_io import figures_to_dict
        out = super().to_dict()
        out.update({"goal": self.plan.goal, "before": figures_to_dict(self.plan.before),
                    "predicted": figures_to_dict(self.plan.after), "read_back": figures_to_dict(self.read_back),
                    "within_plan": None if self.dry_run else self.within_plan,
                    "emptied": list(self.plan.emptied), "emptied_left": self.emptied_left,
                    "disabled": self.disabled, "kept_their_reason": self.kept_their_reason,
                    "ram_bytes_to_copy": self.plan.ram_bytes_to_copy, "moves": len(self.plan.moves)})
        return out


def dry_run_report(plan: RebalancePlan, cloud: Any = None, t0: Optional[float] = None,
                   requests0: int = 0) -> RebalanceReport:
    """The plan as a report (`--dry-run`): its moves "planned", what reading the cloud cost."""
    from novamove.engine.batch.report import _result
    return RebalanceReport("rebalance", list(plan.hosts), dry_run=True, plan=plan,
                           results=[_result(s, "planned", "") for s in plan.moves],
                           api_requests=_requests(cloud) - requests0 if cloud is not None else 0,
                           elapsed_seconds=time.monotonic() - t0 if t0 is not None else 0.0)


# ------------------------------------------------------------------------------ running it

def _refuse_unfinished(journal: Any) -> None:
    for run in journal.unfinished_runs():
        if run["verb"] == events.VERB_REBALANCE:
            alive = run["status"] == events.RUN_RUNNING and run_alive(run)
            raise errors.PreconditionFailed(
                f"rebalance run {run['id']} " + ("is still running (pid %s)" % run.get("pid") if alive else
                                                 "did not finish: `novamove recover` finishes it first"))


def apply_rebalance(cloud: Any, plan: RebalancePlan, *, journal: Any, max_parallel: Optional[int] = None,
                    max_per_host: Optional[int] = None, on_interrupt: str = "finish",
                    poll_interval: float = POLL_INTERVAL, step_timeout: float = 1800.0,
                    progress: Optional[Callable[[str], None]] = None,
                    status: Optional[Callable[[Any], None]] = None, verb: str = "rebalance",
                    **runner_kwargs: Any) -> RebalanceReport:
    """Run a rebalance plan; each step's pre-condition is checked again as it starts."""
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host)
    say = progress or (lambda line: None)
    t0, requests0 = time.monotonic(), _requests(cloud)
    identity = getattr(cloud, "identity", None)
    if plan.cloud and identity and plan.cloud != identity:
        raise errors.PreconditionFailed(
            f"the plan was made on another cloud ({plan.cloud}); this is {identity}: make a new plan here")
    known = {h.name for h in cloud.compute_hosts(with_resources=False)}
    for name in plan.hosts:
        if name not in known:
            raise errors.NotFound(f"the plan rebalances {name!r}, which is not a compute host of this cloud")
    _refuse_unfinished(journal)
    caps = (max_parallel or plan.max_parallel, max_per_host or plan.max_per_host)
    source = scope_label(plan)
    frame = RunFrame(journal, events.VERB_REBALANCE, cloud=cloud, source=source, mode=plan.goal,
                     strategy="native", t0=t0, requests0=requests0,
                     interrupt_error="left by a second Ctrl-C with moves in flight")
    report = frame.report = RebalanceReport(verb, list(plan.hosts), run_id=frame.run_id, plan=plan)
    clock = runner_kwargs.get("clock", time.monotonic)
    started = clock()
    with frame:
        journal.note(frame.run_id, events.REBALANCE_PLAN, source, plan=plan_to_dict(plan), via=verb)
        pinned = set(plan.pinned)
        runner = BatchRunner(cloud, journal, frame.run_id, list(plan.moves), max_parallel=caps[0],
                             max_per_host=caps[1], on_interrupt=on_interrupt, poll_interval=poll_interval,
                             step_timeout=step_timeout, progress=say, pinned=pinned,
                             on_tick=(lambda r: status(batch_progress(verb, plan.hosts, {}, r, clock() - started)))
                             if status else None, **runner_kwargs)
        try:
            report.results = runner.run()
        finally:
            report.interrupted = runner.interrupted
            report.peak_in_flight = runner.peak_in_flight
            report.changed = runner.actions > 0
        if report.interrupted:
            return report
        report.read_back, counts = read_back(cloud, plan.hosts)
        report.emptied_left = {h: counts[h] for h in plan.emptied if counts.get(h)}
        journal.note(frame.run_id, events.REBALANCE_READ_BACK, source,
                     figures=dataclasses.asdict(report.read_back), emptied_left=report.emptied_left)
        if plan.disable_emptied:
            _disable_emptied(cloud, journal, frame.run_id, plan, report, say)
            report.changed = report.changed or bool(report.disabled)
    return report


def scope_label(plan: RebalancePlan) -> str:
    """The run's `source` in the journal and `history`: the hosts, or how they were chosen."""
    if plan.aggregate:
        return f"aggregate {plan.aggregate}"
    if len(plan.hosts) <= 8:
        return ",".join(plan.hosts)
    return f"zone {plan.zone} ({len(plan.hosts)} hosts)" if plan.zone else f"{len(plan.hosts)} hosts"


def _disable_emptied(cloud: Any, journal: Any, run_id: str, plan: RebalancePlan, report: RebalanceReport,
                     say: Callable[[str], None]) -> None:
    """Leave each emptied host (read back empty) disabled with a drain tag; never touch a host
    someone else disabled."""
    services = {s.host: s for s in cloud.list_compute_services()}
    reason = tags.drain_reason(run_id, EMPTIED_REASON + (f": {plan.reason}" if plan.reason else ""))
    for host in plan.emptied:
        svc = services.get(host)
        if svc is None or host in report.emptied_left:
            continue
        if not svc.enabled:
            report.kept_their_reason.append(host)
            continue
        with journal.change(run_id, events.REBALANCE_DISABLE, host, service_id=svc.id, reason=reason):
            cloud.disable_service(svc, reason)
        now = {s.host: s for s in cloud.list_compute_services()}.get(host)
        if now is not None and not now.enabled and tags.reason_run_id(now.disabled_reason) == run_id:
            report.disabled.append(host)
            say(f"{host}: emptied, left disabled ({reason})")


# ------------------------------------------------------------------------------ recover

def recover_run(cloud: Any, journal: Any, run: dict, *, dry_run: bool = False,
                **runner_kwargs: Any) -> dict:
    """A rebalance run that did not finish (killed, crashed): follow the moves it left in
    flight to their end (a cold one confirmed), then close it. Nothing new is started: the
    servers it never moved stay where they are (`novamove rebalance` plans afresh)."""
    base = {"run_id": run["id"], "verb": run["verb"], "server": None, "status_before": run["status"]}
    if run["status"] == events.RUN_RUNNING and run_alive(run):
        return dict(base, summary=f"rebalance still running (pid {run.get('pid')}); not touched")
    lines: list[str] = []
    if dry_run:
        open_moves = {e.target for e in journal.events(run["id"]) if e.kind == events.DRAIN_MOVE
                      and e.state == "intent"}
        return dict(base, summary=f"rebalance did not finish: would follow {len(open_moves)} move(s) it left "
                                  "open to their end (dry run: nothing changed)")
    adopted, landed = _adopt_leftovers(cloud, journal, [run], lines.append)
    results = []
    if adopted:
        runner = BatchRunner(cloud, journal, run["id"], [], max_parallel=max(1, len(adopted)),
                             max_per_host=max(1, len(adopted)), adopted=adopted, progress=lines.append,
                             **runner_kwargs)
        results = runner.run()
    moved = sum(1 for r in results if r.result == MOVED) + len(landed)
    other = [f"{r.server_name}: {r.result} ({r.detail})" for r in results if r.result != MOVED]
    summary = (f"rebalance did not finish: {len(adopted)} move(s) left in flight followed to their end, "
               f"{moved} landed" + (f"; {'; '.join(other)}" if other else "")
               + "; run `novamove rebalance` again to plan what is left")
    mark_recovered(journal, run["id"], f"recovered: {summary}")
    return dict(base, summary=summary)
