"""Drain a compute host, or apply a saved plan: many moves at once, safely, until the host is
empty.

    report = drain(cloud, "compute1", journal=Journal(), max_parallel=3, max_per_host=2)

How a drain runs (each state change is journaled *before* it is made):
1. claim the source(s) (engine/batch/claim.py): disable the nova-compute with a tagged reason and a
   lease (`novamove:<run>: drain: ... [lease ...]`), read it back, wait out an isolation window,
   refuse a host another live drain holds; a host someone else disabled keeps their reason;
2. plan, now that nothing new can land there: gather the cloud's state through the adapter and
   ask novamove.planner for a destination per server (capacity, server groups, zones,
   disabled/down hosts, --to);
3. run the plan with `BatchRunner` (engine/batch/moves.py: caps, shared listings, one bad step never
   sinks the drain), then read the source back and plan again what is still there and may
   still move (a destination that was off for a moment, a build that raced the disable),
   while the patience lasts;
4. report: ok only when the source, listed again (all projects, every page), is empty
   (or holds only servers Nova cannot move, when the operator allows that); else exit 8 with
   the list of what is left and why.

A drain that died (killed, crashed) stays `running` in the journal, so `novamove recover` lists
it; running the same drain again adopts its leftovers (confirming cold moves it left in
VERIFY_RESIZE, waiting for moves still in flight) and continues with what is still on the host.
`undrain` is in engine/batch/undrain.py.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Iterable, Mapping, Optional, Sequence

from novamove import errors, refusals
from novamove.engine import tags
from novamove.engine.batch.common import (ABORT_GRACE, ABORTED, DRAIN_VERB, EV_ABORT, EV_CONFIRM, EV_DISABLE,
                                          EV_ENABLE, EV_MOVE, EV_PLAN, EV_REVERT, FAILED, GONE, MOVED,
                                          ON_INTERRUPT, PASSING_STATUSES, POLL_INTERVAL, REASON_PATIENCE,
                                          REPLAN_PATIENCE, REPLAN_PAUSE, RETRY, SETTLED, SKEW_MARGIN, SKIPPED,
                                          STEP_ERRORS, UNDRAIN_VERB, _iso, _requests, _since,
                                          _validate_options, is_passing)  # noqa: F401
from novamove.engine.runner import IN_FLIGHT, NOT_STARTED  # noqa: F401
from novamove.engine.batch.report import (BatchProgress, BatchReport, StepResult, batch_progress, _result)  # noqa: F401
from novamove.engine.batch.moves import BatchRunner, _InFlight  # noqa: F401
from novamove.engine.batch.adopt import _adopt_leftovers, _step_from_event  # noqa: F401
from novamove.engine.batch.claim import (  # noqa: F401
    EV_LEASE, ISOLATION_WAIT, READ_BACK_PAUSE, _Lease, _dead_drains, _disable_sources, _refuse_concurrent_drain,
    _refuse_down_sources, _unfinished_drains, drain_reason, is_our_drain_reason)
from novamove.engine.journal import FINAL  # noqa: F401
from novamove.engine.frame import RunFrame
from novamove.engine.preflight import TraitCache
from novamove.engine.resolve import pick_host
from novamove.model import LIVE, Host, Resources, Server  # noqa: F401
from novamove.planner import CloudState, DrainPlan, DrainStep, move_mode, plan_drain, plan_to_dict

# ---------------------------------------------------------------------------------- gathering

def gather_state(cloud: Any, sources: Sequence[str], hosts: Optional[Sequence[Host]] = None,
                 traits: Optional[TraitCache] = None) -> CloudState:
    """What the planner needs, read through the adapter (reads only). The destinations'
    placement traits only when a server on the sources requires or forbids one, through
    `traits` (a run's cache: a re-plan does not read them again)."""
    hosts = list(hosts) if hosts is not None else cloud.compute_hosts(with_resources=True)
    servers: list[Server] = []
    for name in sources:
        servers.extend(cloud.list_servers_on_host(name))
    groups = cloud.list_server_groups()
    # Members of the source servers' groups that live elsewhere: their hosts bind the choice.
    on_sources = {s.id for s in servers}
    wanted = {m for g in groups if any(m in on_sources for m in g.members) for m in g.members} - on_sources
    for sid in sorted(wanted):
        try:
            servers.append(cloud.get_server(sid))
        except errors.NotFound:
            pass        # a member deleted since the listing binds nothing
    host_traits: dict[str, frozenset[str]] = {}
    if any(s.host in sources and refusals.needs_traits(s) for s in servers):
        cache = traits or TraitCache(cloud)
        for h in hosts:
            if h.name not in sources and h.service.enabled and h.service.up:
                found = cache.of(h)
                if found is not None:
                    host_traits[h.name] = found
    return CloudState(hosts=hosts, servers=servers, groups=groups, traits=host_traits)


def resolve_hosts(names: Iterable[str], hosts: Sequence[Host]) -> list[str]:
    """Service host names for what the operator typed (hypervisor hostnames accepted)."""
    return [pick_host(n, hosts).name for n in names]


def make_plan(cloud: Any, sources: Sequence[str], *, targets: Sequence[str] = (), mode: str = "auto",
              order: str = "largest", reason: Optional[str] = None, max_parallel: int = 4,
              max_per_host: int = 2, avoid: Optional[Mapping[str, Collection[str]]] = None,
              traits: Optional[TraitCache] = None) -> DrainPlan:
    hosts = cloud.compute_hosts(with_resources=True)
    sources = resolve_hosts(sources, hosts)
    targets = resolve_hosts(targets, hosts)
    state = gather_state(cloud, sources, hosts, traits)
    plan = plan_drain(state, sources, targets=targets, mode=mode, order=order, reason=reason,
                      max_parallel=max_parallel, max_per_host=max_per_host,
                      created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), avoid=avoid)
    plan.cloud = getattr(cloud, "identity", None)
    return plan


# ---------------------------------------------------------------------------------- verbs

def drain(cloud: Any, host: str | Sequence[str], *, journal: Any, targets: Sequence[str] = (),
          mode: str = "auto", order: str = "largest", reason: Optional[str] = None,
          max_parallel: int = 4, max_per_host: int = 2, dry_run: bool = False,
          on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL, step_timeout: float = 1800.0,
          allow_unmovable: bool = False, replan_patience: float = REPLAN_PATIENCE,
          progress: Optional[Callable[[str], None]] = None, keep: Optional[Mapping[str, str]] = None,
          modes: Optional[Mapping[str, str]] = None, on_behalf_of: Optional[str] = None,
          hand_back: Optional[Callable[[], str]] = None, **runner_kwargs: Any) -> BatchReport:
    """Disable `host`, then plan a destination for each server on it and move them (caps held),
    planning again what could not start, until the host is empty or nothing more can move.

    The plan is made after the host is disabled, so nothing scheduled onto it meanwhile is
    missed; the report's `left` is the source re-listed at the end.

    `keep` {server id: why}: servers never moved (left on the host, reported as accepted);
    `modes` {server id: live|cold}: servers moved in that mode only (campaign intents).
    `on_behalf_of`: the run (a campaign) whose lease on the host this drain works under;
    `hand_back()`: the disabled reason the drain leaves on the host at the end (that run's
    tag and lease), instead of its own tag without a lease."""
    sources = [host] if isinstance(host, str) else list(host)
    tags.check_reason(reason)
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host, replan_patience=replan_patience)
    t0 = time.monotonic()
    requests0 = _requests(cloud)
    plan = make_plan(cloud, sources, targets=targets, mode=mode, order=order, reason=reason,
                     max_parallel=max_parallel, max_per_host=max_per_host)
    _pin(plan, keep, modes)
    if dry_run:
        status = {s.host: s for s in cloud.list_compute_services()}
        _refuse_down_sources(plan, status)
        service = "; ".join(f"would disable {n}" if status.get(n) and status[n].enabled
                            else f"{n} already disabled" for n in plan.sources)
        return BatchReport("drain", list(plan.sources), dry_run=True, plan=plan, service=service,
                           results=[_result(s, "planned" if s.dest else SKIPPED, s.skip_reason or "")
                                    for s in plan.steps],
                           api_requests=_requests(cloud) - requests0, elapsed_seconds=time.monotonic() - t0)
    # This first plan only tells what is there; the one that runs is made once the host is
    # disabled (a server scheduled onto it in between would otherwise be missed).
    return _execute(cloud, plan, journal=journal, verb="drain", on_interrupt=on_interrupt,
                    poll_interval=poll_interval, step_timeout=step_timeout, progress=progress,
                    t0=t0, requests0=requests0, replan_first=True, allow_unmovable=allow_unmovable,
                    replan_patience=replan_patience, keep=keep, modes=modes, on_behalf_of=on_behalf_of,
                    hand_back=hand_back, **runner_kwargs)


def apply_plan(cloud: Any, plan: DrainPlan, *, journal: Any, max_parallel: Optional[int] = None,
               max_per_host: Optional[int] = None, on_interrupt: str = "finish", poll_interval: float = POLL_INTERVAL,
               step_timeout: float = 1800.0, allow_unmovable: bool = False,
               replan_patience: float = REPLAN_PATIENCE, progress: Optional[Callable[[str], None]] = None,
               **runner_kwargs: Any) -> BatchReport:
    """Run a saved drain plan; every step's pre-condition is checked again when it runs, and
    what the plan did not foresee (servers that arrived since) is planned afresh at the end."""
    _validate_options(on_interrupt=on_interrupt, poll_interval=poll_interval, step_timeout=step_timeout,
                      max_parallel=max_parallel, max_per_host=max_per_host, replan_patience=replan_patience)
    plan = dataclasses.replace(plan, steps=[dataclasses.replace(s) for s in plan.steps])
    if max_parallel is not None:
        plan.max_parallel = max_parallel
    if max_per_host is not None:
        plan.max_per_host = max_per_host
    if plan.max_parallel < 1 or plan.max_per_host < 1:
        raise errors.UsageError("--max-parallel and --max-per-host must be at least 1")
    identity = getattr(cloud, "identity", None)
    if plan.cloud and identity and plan.cloud != identity:
        raise errors.PreconditionFailed(
            f"the plan was made on another cloud ({plan.cloud}); this is {identity}: make a new plan here")
    known = {h.name for h in cloud.compute_hosts(with_resources=False)}
    for name in plan.sources:
        if name not in known:
            raise errors.NotFound(f"the plan drains {name!r}, which is not a compute host of this cloud")
    return _execute(cloud, plan, journal=journal, verb="apply", on_interrupt=on_interrupt,
                    poll_interval=poll_interval, step_timeout=step_timeout, progress=progress,
                    t0=time.monotonic(), requests0=_requests(cloud), allow_unmovable=allow_unmovable,
                    replan_patience=replan_patience, **runner_kwargs)


@dataclass
class _Rounds:
    """What the rounds of one drain run add up to."""
    results: dict[str, StepResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    interrupted: bool = False
    peak_in_flight: int = 0
    actions: int = 0

    def add(self, results: Iterable[StepResult]) -> None:
        for r in results:
            if r.server_id not in self.results:
                self.order.append(r.server_id)
            # A later round's answer replaces a "retry" or an earlier attempt's.
            self.results[r.server_id] = r

    def ordered(self) -> list[StepResult]:
        return [self.results[sid] for sid in self.order]


def _execute(cloud: Any, plan: DrainPlan, *, journal: Any, verb: str, on_interrupt: str,
             poll_interval: float, step_timeout: float, progress: Optional[Callable[[str], None]],
             t0: float, requests0: int, replan_first: bool = False, allow_unmovable: bool = False,
             replan_patience: float = REPLAN_PATIENCE, keep: Optional[Mapping[str, str]] = None,
             modes: Optional[Mapping[str, str]] = None,
             status: Optional[Callable[[BatchProgress], None]] = None, on_behalf_of: Optional[str] = None,
             hand_back: Optional[Callable[[], str]] = None, **runner_kwargs: Any) -> BatchReport:
    say = progress or (lambda line: None)
    keep, modes = dict(keep or {}), dict(modes or {})
    trait_cache = TraitCache(cloud)      # placement traits read once per run, re-plans included
    clock = runner_kwargs.get("clock", time.monotonic)
    sleep = runner_kwargs.get("sleep", time.sleep)
    _refuse_down_sources(plan, {s.host: s for s in cloud.list_compute_services()})
    source_key = ",".join(plan.sources)
    _refuse_concurrent_drain(journal, source_key)
    previous = _unfinished_drains(journal, source_key)
    frame = RunFrame(journal, DRAIN_VERB, cloud=cloud, source=source_key, mode=plan.mode, strategy="native",
                     interrupt_error="left by a second Ctrl-C with moves in flight", t0=t0, requests0=requests0)
    run_id = frame.run_id
    report = frame.report = BatchReport(verb, list(plan.sources), run_id=run_id, plan=plan)
    rounds = _Rounds()
    lease = _Lease(cloud, journal, run_id, plan, say, clock, hand_back=hand_back, held_for=on_behalf_of)
    frame.on_exit.append(lease.release)
    started = clock()

    def tick(runner: Optional[BatchRunner]) -> None:
        if status is not None:
            status(batch_progress(verb, plan.sources, rounds.results, runner, clock() - started))
    with frame:
        try:
            own_runs = {run_id} | {r["id"] for r in previous} | ({on_behalf_of} if on_behalf_of else set())
            _claim_sources(journal, run_id, plan, own_runs, frame)
            report.service, report.changed = _disable_sources(
                cloud, journal, run_id, plan, say, own_runs=own_runs, sleep=sleep, clock=clock,
                held_for=lease.held_for, held=lease.held)
            if replan_first:
                plan = _replan(cloud, plan, traits=trait_cache)
                report.plan = plan
            _pin(plan, keep, modes)
            journal.note(run_id, EV_PLAN, source_key, plan=plan_to_dict(plan), via=verb,
                         continues=[r["id"] for r in previous])
            since = _since(min([r["started_at"] for r in previous], default=None))
            adopted, done_before = _adopt_leftovers(cloud, journal, previous, say, clock)
            rounds.add(done_before)
            done_ids = {r.server_id for r in done_before} | {a.step.server_id for a in adopted}
            steps = [s for s in plan.steps if s.server_id not in done_ids]
            patience_ends = clock() + replan_patience
            # Destinations Nova refused for a server in this drain: its next plan avoids them.
            refused: dict[str, set[str]] = {}
            stall_history: dict[str, tuple[str, str]] = {}     # stalls seen, shared by the rounds
            while True:
                runner = BatchRunner(cloud, journal, run_id, steps, max_parallel=plan.max_parallel,
                                     max_per_host=plan.max_per_host, on_interrupt=on_interrupt,
                                     poll_interval=poll_interval, step_timeout=step_timeout,
                                     since=since, adapt_mode=plan.mode == "auto", adopted=adopted,
                                     progress=say, heartbeat=lease, may_start=lease.holds, pinned=modes, on_tick=tick,
                                     stall_history=stall_history, **runner_kwargs)
                adopted = ()
                try:
                    rounds.add(runner.run())
                finally:
                    rounds.interrupted = rounds.interrupted or runner.interrupted
                    rounds.peak_in_flight = max(rounds.peak_in_flight, runner.peak_in_flight)
                    rounds.actions += runner.actions
                    report.results = rounds.ordered()
                    report.interrupted = rounds.interrupted
                    report.peak_in_flight = rounds.peak_in_flight
                    report.changed = report.changed or rounds.actions > 0
                if lease.lost_to:
                    raise errors.PreconditionFailed(
                        f"novamove run {lease.lost_to} took {source_key} over while this drain ran; this "
                        "one stopped after its moves in flight")
                if rounds.interrupted:
                    break
                # Read the source back: what is still there decides the next round and the verdict.
                remaining = [srv for name in plan.sources for srv in cloud.list_servers_on_host(name)]
                for r in rounds.results.values():
                    if _refused_destination(r) or (r.result == RETRY and r.stall == RETRIED_ELSEWHERE):
                        refused.setdefault(r.server_id, set()).add(r.dest)
                again = [srv for srv in remaining if srv.id not in keep
                         and _worth_another_round(srv, rounds.results.get(srv.id), modes.get(srv.id, plan.mode),
                                                  refused.get(srv.id, ()))]
                if not again or clock() >= patience_ends:
                    break
                say(f"{len(again)} server(s) still on {source_key} to move: planning them again")
                sleep(REPLAN_PAUSE)
                fresh = _replan(cloud, plan, avoid=refused, traits=trait_cache)
                _pin(fresh, keep, modes)
                wanted = {srv.id for srv in again}
                # A failed move with no other destination keeps its failure (not "skipped").
                steps = [s for s in fresh.steps if s.server_id in wanted
                         and (s.dest or getattr(rounds.results.get(s.server_id), "result", None) != FAILED)]
                if not steps:
                    break
                journal.note(run_id, EV_PLAN, source_key, plan=plan_to_dict(fresh), via="replan")
            tick(None)
            report.left = _left_on_sources(cloud, plan, rounds.results, allow_unmovable, keep, modes)
            report.checked_empty = True
            # What a round only postponed and no later round moved is reported as left, not as
            # "retry" (an internal state).
            for r in report.results:
                if r.result == RETRY:
                    r.result = SKIPPED
        except errors.NovamoveError as exc:
            # What the drain changed stays (the host disabled, moves Nova carries on): say how
            # to go on or give up.
            raise type(exc)(f"{exc} - the drain of {source_key} stopped: run `novamove drain {source_key}` "
                            f"again to continue it, or `novamove undrain {source_key}` to give up") from exc
        frame.continues = [r["id"] for r in previous]
    return report


def _claim_sources(journal: Any, run_id: str, plan: DrainPlan, own_runs: set, frame: RunFrame) -> None:
    """Claim each source in the journal (compare-and-swap) before any tag is written: a drain of
    the same host from another machine sharing the journal is refused here; released at the end."""
    from novamove.engine.journal import claims, holder_text
    for name in plan.sources:
        other = claims.claim(journal, f"host:{name}", run_id, own=own_runs)
        if other is not None:
            raise errors.PreconditionFailed(f"cannot drain {name}: drain run {other['id']} of "
                                            f"{holder_text(other)} holds it in the shared journal; wait for it "
                                            "or stop it first")
        frame.on_exit.append(lambda name=name: claims.release(journal, f"host:{name}", run_id))


def _replan(cloud: Any, plan: DrainPlan, avoid: Optional[Mapping[str, Collection[str]]] = None,
            traits: Optional[TraitCache] = None) -> DrainPlan:
    """The same drain planned again from the cloud as it is now (traits as read earlier in
    the run: a drain's re-plans do not read every host's traits again)."""
    fresh = make_plan(cloud, plan.sources, targets=plan.targets, mode=plan.mode, order=plan.order,
                      reason=plan.reason, max_parallel=plan.max_parallel, max_per_host=plan.max_per_host,
                      avoid=avoid, traits=traits)
    return fresh


# Nova's words when it will not take a server on a destination (the scheduler's filters or the
# destination's pre-checks disagree with novamove's plan): that server is planned again
# elsewhere, never sent to the same host twice in one drain.
DEST_REFUSALS = ("no valid host", "novalidhost", "not suitable", "precheck", "pre-check",
                 "unable to migrate", "is not up")


def _refused_destination(r: StepResult) -> bool:
    if r.result not in (RETRY, FAILED) or not r.dest:
        return False
    text = (r.detail or "").lower()
    return any(words in text for words in DEST_REFUSALS)


def _worth_another_round(server: Server, last: Optional[StepResult], mode: str,
                         refused: Collection[str] = ()) -> bool:
    """A server still on the source is planned again unless its last answer is final."""
    if last is None:
        return True                      # arrived after the plan was made
    if last.result == RETRY:
        return True
    if last.result == FAILED and last.dest in refused and server.status in ("ACTIVE", "SHUTOFF", "PAUSED") \
            and not server.task_state:
        return True                      # Nova refused that destination: another may do
    if last.result == SKIPPED:
        # Skipped for a passing state (a build, a task state) or for want of a destination
        # (a host that was disabled for a moment): try again; an ERROR server: no.
        _, why = move_mode(server, mode)
        return is_passing(server) or why is None
    return False                          # moved, failed, aborted, gone: this run is done with it


def _left_on_sources(cloud: Any, plan: DrainPlan, results: dict[str, StepResult],
                     allow_unmovable: bool, keep: Optional[Mapping[str, str]] = None,
                     modes: Optional[Mapping[str, str]] = None) -> list[dict]:
    """The servers still on the drained host(s), all projects, every page."""
    keep, modes = keep or {}, modes or {}
    left = []
    for name in plan.sources:
        for srv in cloud.list_servers_on_host(name):
            last = results.get(srv.id)
            _, why = move_mode(srv, modes.get(srv.id, plan.mode))
            unmovable = bool(why) and not is_passing(srv)
            reason = keep.get(srv.id) or (last.detail if last and last.detail else None) or why or "not moved"
            left.append({"server_id": srv.id, "name": srv.name, "host": srv.host, "status": srv.status,
                         "reason": reason, "accepted": srv.id in keep or (allow_unmovable and unmovable)})
    return left


def _pin(plan: DrainPlan, keep: Optional[Mapping[str, str]], modes: Optional[Mapping[str, str]]) -> None:
    """Apply per-server intents to a plan: `keep` servers get no destination; `modes` servers
    move in their mode or not at all (the reason says why)."""
    for step in plan.steps:
        if keep and step.server_id in keep:
            step.dest, step.skip_reason = None, keep[step.server_id]
        elif modes and step.server_id in modes and step.dest:
            mode, why = move_mode(Server(step.server_id, step.server_name, step.status, step.source),
                                  modes[step.server_id])
            if why:
                step.dest, step.skip_reason = None, f"maintenance intent {modes[step.server_id]}: {why}"
            else:
                step.mode = mode


from novamove.engine.batch.stalls import RETRIED as RETRIED_ELSEWHERE  # noqa: E402

# undrain lives in its own module; its names stay importable from here.
from novamove.engine.batch.undrain import moves_of_drain, undrain  # noqa: E402,F401

__all__ = ["BatchReport", "BatchRunner", "StepResult", "apply_plan", "drain", "drain_reason",
           "gather_state", "is_our_drain_reason", "make_plan", "moves_of_drain", "undrain",
           "FINAL", "Resources"]
