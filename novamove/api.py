"""The library: what the CLI and the Ansible collection call. Display-free.

    from novamove import api
    result = api.migrate("web-1", "compute2", cloud="mycloud")
    print(result.summary, result.ok)

Input and pre-check errors raise novamove.errors subclasses (one-line messages, each with an
`exit_code`); the outcome of a move that was attempted is in the returned MoveResult (`ok`,
`error`, `exit_code`), so callers always get the before/after facts.

`cloud` says how to connect: a clouds.yaml name (or None for $OS_CLOUD / OS_* variables), a cloud
config dict, a `novamove.cloud.ConnectionSpec` (every openstack.cloud connection option: the
CLI, the Ansible modules and the OSC plugin each build one), or an already connected
novamove.cloud.Cloud to reuse one connection across calls. The older keyword arguments
`auth`, `region_name`, `interface`, `validate_certs` still work and override the spec.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

from novamove import cloud as cloud_adapter
from novamove.cloud.spec import ConnectionSpec
from novamove.engine.single import operations
from novamove.engine import recover as recovery
from novamove.engine import faults
from novamove.retry import patient_reads
from novamove.engine.journal import Journal, Observer
from novamove.engine.single.mover import follow, move
from novamove.engine.single.result import MoveResult, Snapshot

__all__ = ["migrate", "wait", "compute_hosts", "migrations", "abort", "force_complete", "confirm", "revert",
           "back", "recover", "history", "drain", "undrain", "plan_drain", "apply_plan", "load_plan",
           "save_plan", "ConnectionSpec", "MoveResult", "Snapshot"]


@contextmanager
def _connected(cloud=None, **options: Any) -> Iterator[cloud_adapter.Cloud]:
    """A connection for one api call: `cloud` as the module docstring says, options as in
    ConnectionSpec (None values are ignored)."""
    if isinstance(cloud, cloud_adapter.Cloud):
        yield cloud
        return
    conn = cloud_adapter.connect(ConnectionSpec.build(cloud, **options))
    try:
        # Reads ride out an unreachable API, whichever verb reads (NOVAMOVE_FAULT's cloud.VERB
        # faults, for the tests, sit under that, as a flaky API would).
        yield patient_reads(faults.faulty(conn))
    finally:
        conn.close()


def refuse_inline_journal_password(location: Optional[str]) -> None:
    """A journal URL carrying its password, given on a command line: a one-line UsageError
    naming where the password goes instead (docs/journal.md#secrets)."""
    from novamove import errors
    from novamove.engine.journal.store import INLINE_PASSWORD_REFUSED, has_inline_password
    if has_inline_password(location):
        raise errors.UsageError(INLINE_PASSWORD_REFUSED)


def open_journal(journal_path=None, observers: Sequence[Observer] = ()) -> Journal:
    """The journal of a call. `observers` (novamove.observe's event stream, metrics; or any
    callable taking a record dict) see every state change the call writes to it."""
    journal = journal_path if isinstance(journal_path, Journal) else Journal(journal_path)
    return journal.observe(*observers)


@contextmanager
def observing(events: Optional[str] = None, metrics_textfile: Optional[str] = None,
              metrics_push: Optional[str] = None, redact: Optional[Callable[[Any], Any]] = None):
    """The observers of `--events FILE`, `--metrics-textfile PATH` and `--metrics-push URL`
    (docs/events.md, docs/observability.md) for the verbs called inside:

        with api.observing(events="run.jsonl", metrics_textfile="novamove.prom") as seen:
            api.drain("compute1", observers=seen.observers)

    On leaving, the metrics are written a last time and the stream is closed; `seen.given_up`
    then lists the metrics outputs that failed during the run (the run went on without them).
    `redact` gets each stream line (plain JSON types) and returns what is written. An events
    file that cannot be opened is a UsageError (nothing opened, nothing changed)."""
    from novamove.errors import UsageError
    from novamove.observe.session import Observation
    try:
        seen = Observation(events, metrics_textfile, metrics_push, redact=redact)
    except OSError as exc:
        raise UsageError(f"cannot open events file {events!r}: {exc.strerror or exc}") from None
    try:
        yield seen
    finally:
        seen.close()


def migrate(server: str, host: Optional[str] = None, *, cloud=None, auth=None, region_name=None, interface=None,
            validate_certs=None, mode: str = "auto", strategy: str = "auto", reason: Optional[str] = None,
            confirm: bool = True, wait: bool = True, timeout: float = 600, on_timeout: str = "abort",
            check_mode: bool = False, journal_path=None, observers: Sequence[Observer] = (),
            progress: Optional[Callable[[Snapshot], None]] = None,
            poll_interval: float = 1.0, schedule_timeout: float = 60.0,
            on_stall: str = "force-complete") -> MoveResult:
    """Put `server` (UUID or exact name, any project) on compute `host` (service host or
    hypervisor hostname); without `host` Nova's scheduler chooses among the computes that pass
    the pre-checks (strategy "scheduler"; `strategy="isolate"` is then a UsageError). See the
    module docstring for errors vs. results. `on_stall`: what is done with a live migration that
    stops converging (engine/stall.py; docs/reference.md)."""
    _stall_options(on_stall, mode)
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        return move(c, open_journal(journal_path, observers), server, host, mode=mode, strategy=strategy, reason=reason,
                    confirm=confirm, wait=wait, timeout=timeout, on_timeout=on_timeout,
                    check_mode=check_mode, progress=progress, poll_interval=poll_interval,
                    schedule_timeout=schedule_timeout, on_stall=on_stall)


def wait(server: str, *, cloud=None, auth=None, region_name=None, interface=None,
         validate_certs=None, confirm: bool = False, timeout: float = 600, on_timeout: str = "leave",
         journal_path=None, observers: Sequence[Observer] = (), progress: Optional[Callable[[Snapshot], None]] = None,
         poll_interval: float = 1.0) -> MoveResult:
    """Follow the cold or live migration `server` is in until it ends; judge it like migrate."""
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        return follow(c, open_journal(journal_path, observers), server, confirm=confirm, timeout=timeout,
                      on_timeout=on_timeout, progress=progress, poll_interval=poll_interval)


def back(server: str, *, cloud=None, auth=None, region_name=None, interface=None, validate_certs=None,
         journal_path=None, observers: Sequence[Observer] = (), **kwargs: Any) -> MoveResult:
    """Move `server` back to where it was before its last novamove move."""
    _stall_options(kwargs.get("on_stall", "force-complete"))
    journal = open_journal(journal_path, observers)
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        found, source = operations.previous_host(c, journal, server)
        return move(c, journal, found.id, source, verb="back", **kwargs)


def compute_hosts(*, cloud=None, auth=None, region_name=None, interface=None,
                  validate_certs=None) -> list[dict]:
    """Every nova-compute: service host, hypervisor, zone, status/state, capacity and usage."""
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        out = []
        for h in c.compute_hosts():
            out.append({
                "name": h.name, "hypervisor_hostname": h.hypervisor_hostname, "zone": h.zone,
                "status": h.service.status, "state": h.service.state,
                "disabled_reason": h.service.disabled_reason,
                "vcpus": h.capacity.vcpus, "vcpus_used": h.used.vcpus,
                "memory_mb": h.capacity.memory_mb, "memory_mb_used": h.used.memory_mb,
                "disk_gb": h.capacity.disk_gb, "disk_gb_used": h.used.disk_gb,
            })
        return out


def migrations(*, server=None, host=None, status=None, migration_type=None, cloud=None, auth=None,
               region_name=None, interface=None, validate_certs=None) -> list[dict]:
    """Nova's migration records, newest first, optionally for one server (name or UUID)."""
    from novamove.engine.resolve import resolve_server

    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        server_id = resolve_server(c, server).id if server else None
        rows = c.list_migrations(server_id=server_id, host=host, status=status,
                                 migration_type=migration_type)
        return [{"id": m.id, "uuid": m.uuid, "server_id": m.server_id, "type": m.migration_type,
                 "source": m.source_host, "dest": m.dest_host, "status": m.status,
                 "created_at": m.created_at, "updated_at": m.updated_at} for m in rows]


def _operation(fn, server: str, *, cloud=None, auth=None, region_name=None, interface=None,
               validate_certs=None, journal_path=None, observers: Sequence[Observer] = (), **kwargs: Any) -> MoveResult:
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface, validate_certs=validate_certs) as c:
        return fn(c, open_journal(journal_path, observers), server, **kwargs)


def abort(server: str, **kwargs: Any) -> MoveResult:
    """Abort the server's in-progress live migration."""
    return _operation(operations.abort, server, **kwargs)


def force_complete(server: str, **kwargs: Any) -> MoveResult:
    """Force the server's running live migration to complete (pauses the guest)."""
    return _operation(operations.force_complete, server, **kwargs)


def confirm(server: str, **kwargs: Any) -> MoveResult:
    """Confirm a cold migration left in VERIFY_RESIZE."""
    return _operation(operations.confirm, server, **kwargs)


def revert(server: str, **kwargs: Any) -> MoveResult:
    """Revert a cold migration left in VERIFY_RESIZE (back to the source)."""
    return _operation(operations.revert, server, **kwargs)


def recover(*, run_id: Optional[str] = None, confirm: bool = True, break_lock: bool = False, cloud=None,
            auth=None, region_name=None, interface=None, validate_certs=None, journal_path=None, observers: Sequence[Observer] = (),
            dry_run: bool = False) -> list[dict]:
    """Finish or undo what runs left behind: unfinished runs, finished runs with a change
    unsettled, and computes left disabled with a novamove tag (see novamove.engine.recover).
    `dry_run`: read the journal and the cloud, change neither, and say what would be undone."""
    journal = open_journal(journal_path, observers)
    with _connected(cloud, auth=auth, region_name=region_name, interface=interface,
                    validate_certs=validate_certs) as c:
        return recovery.recover(c, journal, run_id, confirm=confirm, break_lock=break_lock, dry_run=dry_run)


def history(*, limit: int = 50, server_id: Optional[str] = None, journal_path=None) -> list[dict]:
    """Runs from the local journal, newest first."""
    return open_journal(journal_path).runs(limit=limit, server_id=server_id)


def _budget_cloud(cloud=None, **connection: Any) -> Optional[str]:
    """The cloud a budget is for, named as runs record it: the clouds.yaml name given, else
    the name the connection's config has (read from the config: no API call)."""
    if isinstance(cloud, str):
        return cloud
    if isinstance(getattr(cloud, "cloud", None), str):
        return cloud.cloud                # a ConnectionSpec naming its clouds.yaml entry
    with _connected(cloud, **connection) as conn:
        return conn.cloud_name


def budget_validate(*, max_in_flight: Optional[int] = None, max_per_host: Optional[int] = None) -> None:
    """UsageError (one line, exit 2) for limits `budget_set` would refuse."""
    from novamove.engine.journal import budgets
    budgets.validate(max_in_flight, max_per_host)


def budget_set(*, max_in_flight: Optional[int] = None, max_per_host: Optional[int] = None, cloud=None,
               journal_path=None, **connection: Any) -> dict:
    """Set the cloud-wide move budget shared by every run on this journal and cloud
    (docs/journal.md#budgets). Bad limits: UsageError, nothing changed."""
    from novamove.engine.journal import budgets
    budgets.validate(max_in_flight, max_per_host)
    b = budgets.set_budget(open_journal(journal_path), _budget_cloud(cloud, **connection),
                           max_in_flight, max_per_host)
    return _budget_dict(b, [])


def budget_show(*, cloud=None, journal_path=None, **connection: Any) -> dict:
    """The cloud's budget and the slots held under it now ({"cloud", "max_in_flight",
    "max_per_host", "set_at", "set_by", "in_flight", "waiting", "slots"}); limits None when unset."""
    from novamove.engine.journal import budgets
    journal = open_journal(journal_path)
    key = _budget_cloud(cloud, **connection)
    b = budgets.get(journal, key) or budgets.Budget(budgets.cloud_key(key), None, None)
    return _budget_dict(b, budgets.in_flight(journal, key))


def budget_clear(*, cloud=None, journal_path=None, **connection: Any) -> bool:
    """Remove the cloud's budget; True if one was set."""
    from novamove.engine.journal import budgets
    return budgets.clear(open_journal(journal_path), _budget_cloud(cloud, **connection))


def _budget_dict(b: Any, slots: list) -> dict:
    return {"cloud": b.cloud, "max_in_flight": b.max_in_flight, "max_per_host": b.max_per_host,
            "set_at": b.set_at, "set_by": b.set_by,
            "in_flight": sum(1 for s in slots if s["state"] == "moving"),
            "waiting": sum(1 for s in slots if s["state"] == "waiting"),
            "slots": [{k: s[k] for k in ("run_id", "server_id", "dest", "state", "taken_at")} for s in slots]}


def run_record(run_id: str, *, journal_path=None) -> dict:
    """A run as its journal has it, for a report: {"run", "runs" (it and the runs it started:
    a campaign's drains), "events": {run id: [event dicts]}}. Finished or not."""
    import dataclasses
    journal = open_journal(journal_path)
    run = journal.get_run(run_id)
    if run is None:
        raise errors.NotFound(f"no run {run_id!r} (or more than one) in the journal")
    runs, by_run, todo = [], {}, [run["id"]]
    while todo:
        rid = todo.pop(0)
        if rid in by_run:
            continue
        sub = journal.get_run(rid)
        if sub is None:
            continue
        runs.append(sub)
        by_run[rid] = [dataclasses.asdict(e) for e in journal.events(rid)]
        todo += [e["data"]["drain_run"] for e in by_run[rid] if isinstance(e["data"].get("drain_run"), str)]
    return {"run": run, "runs": runs, "events": by_run}


# ------------------------------------------------------------------------------ drains

def drain(host, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), targets=(), mode: str = "auto", order: str = "largest",
          reason: Optional[str] = None, max_parallel: int = 4, max_per_host: int = 2,
          dry_run: bool = False, on_interrupt: str = "finish", poll_interval: Optional[float] = None,
          step_timeout: float = 1800.0, allow_unmovable: bool = False, on_stall: str = "force-complete",
          progress: Optional[Callable[[str], None]] = None, status: Optional[Callable[[Any], None]] = None,
          **connection: Any):
    """Empty compute `host` (or a list of hosts): disable it with a tagged reason, plan and move
    every server off it under the caps. Returns a BatchReport (`ok`, `exit_code`, `results`,
    `left`): ok only when the host, read back, holds no server (`allow_unmovable`: except
    servers Nova cannot move, such as ERROR ones, which are then reported and left).
    `progress` gets one line per event; `status`, at every poll (0.25 to 1 s apart), a BatchProgress
    (moved/total, in flight, failed, ETA) for a progress bar. `on_stall`: what is done with a
    live move that stops converging (force-complete, abort: retried once elsewhere, cold, leave)."""
    from novamove.engine.batch import drain as engine
    stalls = _stall_options(on_stall, mode)
    with _connected(cloud, **connection) as c:
        return engine.drain(c, host, journal=open_journal(journal_path, observers), targets=targets, mode=mode,
                            order=order, reason=reason, max_parallel=max_parallel,
                            max_per_host=max_per_host, dry_run=dry_run, on_interrupt=on_interrupt,
                            poll_interval=poll_interval or engine.POLL_INTERVAL,
                            step_timeout=step_timeout, allow_unmovable=allow_unmovable,
                            progress=progress, status=status, **stalls)


def undrain(host: str, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), move_back: bool = False, max_parallel: int = 4,
            max_per_host: int = 2, on_interrupt: str = "finish", poll_interval: Optional[float] = None,
            step_timeout: float = 1800.0, dry_run: bool = False, on_stall: str = "force-complete",
            progress: Optional[Callable[[str], None]] = None, status: Optional[Callable[[Any], None]] = None,
            **connection: Any):
    """Re-enable `host` if a novamove drain disabled it; `move_back` returns that drain's servers
    (`on_stall` as for drain, but an aborted move back is not retried elsewhere)."""
    from novamove.engine.batch import drain as engine
    stalls = _stall_options(on_stall)
    with _connected(cloud, **connection) as c:
        return engine.undrain(c, host, journal=open_journal(journal_path, observers), move_back=move_back,
                              max_parallel=max_parallel, max_per_host=max_per_host,
                              on_interrupt=on_interrupt, poll_interval=poll_interval or engine.POLL_INTERVAL,
                              step_timeout=step_timeout, dry_run=dry_run, progress=progress,
                              status=status, **stalls)


def plan_drain(hosts, *, cloud=None, targets=(), mode: str = "auto", order: str = "largest",
               reason: Optional[str] = None, max_parallel: int = 4, max_per_host: int = 2,
               **connection: Any):
    """The drain plan for `hosts` (reads only): a DrainPlan to review, save and apply later."""
    from novamove.engine.batch import drain as engine
    sources = [hosts] if isinstance(hosts, str) else list(hosts)
    with _connected(cloud, **connection) as c:
        return engine.make_plan(c, sources, targets=targets, mode=mode, order=order, reason=reason,
                                max_parallel=max_parallel, max_per_host=max_per_host)


def apply_plan(plan, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), max_parallel: Optional[int] = None,
               max_per_host: Optional[int] = None, on_interrupt: str = "finish",
               poll_interval: Optional[float] = None, step_timeout: float = 1800.0,
               allow_unmovable: bool = False, progress: Optional[Callable[[str], None]] = None,
               status: Optional[Callable[[Any], None]] = None, on_stall: str = "force-complete",
               **connection: Any):
    """Run a saved plan (a DrainPlan, a RebalancePlan or a plan file path); each step is
    re-checked as it runs. A rebalance plan returns a RebalanceReport (see `rebalance`)."""
    from novamove.engine.batch import drain as engine
    stalls = _stall_options(on_stall)
    if not hasattr(plan, "steps"):
        plan = load_plan(plan)
    if plan.kind == "rebalance":
        from novamove.engine.batch import rebalance as rebalancing
        with _connected(cloud, **connection) as c:
            return rebalancing.apply_rebalance(
                c, plan, journal=open_journal(journal_path, observers), max_parallel=max_parallel,
                max_per_host=max_per_host, on_interrupt=on_interrupt, verb="apply",
                poll_interval=poll_interval or engine.POLL_INTERVAL, step_timeout=step_timeout,
                progress=progress, status=status, **stalls)
    with _connected(cloud, **connection) as c:
        return engine.apply_plan(c, plan, journal=open_journal(journal_path, observers), max_parallel=max_parallel,
                                 max_per_host=max_per_host, on_interrupt=on_interrupt,
                                 poll_interval=poll_interval or engine.POLL_INTERVAL,
                                 step_timeout=step_timeout, allow_unmovable=allow_unmovable,
                                 progress=progress, status=status, **stalls)


def load_plan(path):
    """A plan file written by save_plan / `novamove plan drain -o` (one-line error if bad)."""
    from novamove.planner import load_plan as load
    return load(path)


def save_plan(plan, path) -> None:
    from novamove.planner import save_plan as save
    save(plan, path)


# ------------------------------------------------------------------------------ rebalance

def rebalance_options(*, goal: str = "spread", hosts=(), zone: Optional[str] = None, aggregate: Optional[str] = None,
                      max_moves: Optional[int] = None, min_gain: Optional[float] = None,
                      disable_emptied: bool = False, reason: Optional[str] = None, max_parallel: int = 4,
                      max_per_host: int = 2):
    """The options of a rebalance, checked once (UsageError, one line, exit 2, before any read)."""
    from novamove.engine.batch import rebalance as engine
    return engine.Options(goal=goal, hosts=tuple([hosts] if isinstance(hosts, str) else hosts), zone=zone,
                          aggregate=aggregate, max_moves=max_moves, disable_emptied=disable_emptied,
                          min_gain=engine.DEFAULT_MIN_GAIN if min_gain is None else min_gain, reason=reason,
                          max_parallel=max_parallel, max_per_host=max_per_host).validate()


def plan_rebalance(options=None, *, cloud=None, **connection: Any):
    """The RebalancePlan (reads only), with its before/after figures: review, save_plan, apply_plan."""
    return rebalance(options, cloud=cloud, dry_run=True, **connection).plan


def rebalance(options=None, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (),
              dry_run: bool = False, on_interrupt: str = "finish", poll_interval: Optional[float] = None,
              step_timeout: float = 1800.0, progress: Optional[Callable[[str], None]] = None,
              status: Optional[Callable[[Any], None]] = None, on_stall: str = "force-complete",
              **connection: Any):
    """Spread load over the hosts in scope, or pack it to empty hosts, from Placement alone
    (`options`: rebalance_options()). `dry_run`: plan only; else plan and apply in one go, as
    apply_plan runs a saved plan. Returns a RebalanceReport: ok only when every move landed and
    the hosts, read back from Placement, are within the plan's figures (docs/rebalance.md)."""
    import time
    from novamove.engine.batch import rebalance as engine
    options = (options or rebalance_options()).validate()
    stalls = _stall_options(on_stall)
    with _connected(cloud, **connection) as c:
        t0, requests0 = time.monotonic(), engine._requests(c)
        plan = engine.make_plan(c, options)
        if dry_run:
            return engine.dry_run_report(plan, c, t0, requests0)
        return engine.apply_rebalance(c, plan, journal=open_journal(journal_path, observers),
                                      on_interrupt=on_interrupt, poll_interval=poll_interval or engine.POLL_INTERVAL,
                                      step_timeout=step_timeout, progress=progress, status=status, **stalls)


__all__ += ["rebalance", "rebalance_options", "plan_rebalance"]


# ------------------------------------------------------------------------------ evacuation

def evacuate(host: str, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), targets=(), fence_cmd: Optional[str] = None,
             fenced: bool = False, power: str = "restore", reason: Optional[str] = None, max_parallel: int = 4,
             max_per_host: int = 2, max_down_percent: float = 50.0, dry_run: bool = False,
             poll_interval: float = 0.5, timeout: float = 1800.0, quiet_period: Optional[float] = None,
             progress: Optional[Callable[[str], None]] = None, **connection: Any):
    """Evacuate every server of the failed compute `host` (novamove.engine.evacuate).

    Refusals (host up and not fenced, fence command failed, stop-loss, bad input) raise a
    NovamoveError before anything is changed; otherwise an EvacuateReport (`ok`, `exit_code`,
    `results`) says what landed where.
    """
    from novamove.engine import evacuate as evac
    with _connected(cloud, **connection) as c:
        return evac.evacuate(c, host, journal=open_journal(journal_path, observers), targets=targets, fence_cmd=fence_cmd,
                             fenced=fenced, power=power, reason=reason, max_parallel=max_parallel,
                             max_per_host=max_per_host, max_down_percent=max_down_percent, dry_run=dry_run,
                             poll_interval=poll_interval, step_timeout=timeout, progress=progress,
                             quiet_period=quiet_period)


def unfence(host: str, *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), move_back: bool = False, wait: float = 90.0,
            dry_run: bool = False, max_parallel: int = 4, max_per_host: int = 2, poll_interval: float = 0.5,
            timeout: float = 1800.0, progress: Optional[Callable[[str], None]] = None,
            on_stall: str = "force-complete", **connection: Any):
    """Put a repaired, evacuated host back in service (see novamove.engine.evacuate.unfence);
    `on_stall` governs the live moves back (as undrain's)."""
    from novamove.engine import evacuate as evac
    stalls = _stall_options(on_stall)
    with _connected(cloud, **connection) as c:
        return evac.unfence(c, host, journal=open_journal(journal_path, observers), move_back=move_back, wait=wait,
                            dry_run=dry_run, max_parallel=max_parallel, max_per_host=max_per_host,
                            poll_interval=poll_interval, step_timeout=timeout, progress=progress, **stalls)


__all__ += ["evacuate", "unfence", "open_journal", "run_record", "observing"]
# ------------------------------------------------------------------------------ maintenance campaigns

def maintain(hosts=(), *, cloud=None, journal_path=None, observers: Sequence[Observer] = (), zone: Optional[str] = None,
             aggregate: Optional[str] = None, all_hosts: bool = False, hook: Optional[str] = None,
             check: Optional[str] = None, max_hosts: int = 1, max_failed_hosts: int = 1, group_budget: int = 1,
             order: str = "fewest", move_back: bool = False, allow_skip: bool = False,
             allow_unmovable: bool = False, hook_timeout: float = 3600, gate: Optional[str] = None,
             gate_timeout: float = 900, check_timeout: float = 600, max_parallel: int = 4, max_per_host: int = 2,
             step_timeout: float = 1800.0, poll_interval: Optional[float] = None, reason: Optional[str] = None,
             dry_run: bool = False, resume: Optional[str] = None, rerun_hook: bool = False,
             hook_done: bool = False, on_interrupt: str = "finish",
             progress: Optional[Callable[[str], None]] = None, on_update: Optional[Callable[[Any], None]] = None,
             move_seconds: Optional[float] = None, hook_seconds: Optional[float] = None,
             on_stall: str = "force-complete", **connection: Any):
    """A rolling maintenance campaign over `hosts` (names; or zone / aggregate / all_hosts): each
    host is disabled, drained, handed to `hook`, gated (`gate`: "restart", the default with a
    hook, waits for the host booted or its nova-compute seen down and back after the hook began;
    "heartbeat" for a report after the hook ended; then `check`), re-enabled (and refilled with move_back), at most `max_hosts` out at
    once. Returns a CampaignReport (`ok`, `exit_code`, `results` per host); `dry_run` returns the
    plan (stages, moves, capacity left, estimate) without changing anything. A campaign whose
    N+K check fails raises NoCapacity before any change; `resume` continues a run by id."""
    from novamove.engine import campaign as engine
    from novamove.engine.batch import drain as drains
    if isinstance(hosts, str):
        hosts = [hosts]
    options = engine.Options(hook=hook, check=check, max_hosts=max_hosts, max_failed_hosts=max_failed_hosts,
                             group_budget=group_budget, order=order, move_back=move_back, allow_skip=allow_skip,
                             allow_unmovable=allow_unmovable, hook_timeout=hook_timeout, gate_timeout=gate_timeout,
                             check_timeout=check_timeout, max_parallel=max_parallel, max_per_host=max_per_host,
                             step_timeout=step_timeout, poll_interval=poll_interval or drains.POLL_INTERVAL,
                             reason=reason, gate=gate, on_stall=on_stall)
    options.validate()          # bad numbers: one-line error before connecting
    with _connected(cloud, **connection) as c:
        return engine.run_campaign(c, open_journal(journal_path, observers), list(hosts), zone=zone, aggregate=aggregate,
                                   all_hosts=all_hosts, options=options, dry_run=dry_run, resume=resume,
                                   rerun_hooks=rerun_hook, hook_done=hook_done, on_interrupt=on_interrupt,
                                   progress=progress, on_update=on_update, move_seconds=move_seconds,
                                   hook_seconds=hook_seconds)


def campaign_stop(run_id: str, *, journal_path=None) -> dict:
    """Ask the running campaign `run_id` (of this journal, on this machine) to stop gracefully,
    as Ctrl-C would: no new host starts, the hosts in flight finish. Returns its run."""
    import os
    import signal
    from novamove import errors
    from novamove.engine.journal import run_alive
    run = open_journal(journal_path).get_run(run_id)
    if run is None or run["verb"] != "maintain":
        raise errors.NotFound(f"no maintain run {run_id!r} in the journal")
    if run["status"] != "running" or not run_alive(run):
        raise errors.PreconditionFailed(f"campaign {run['id']} is not running ({run['status']}); "
                                        f"`novamove maintain --resume {run['id']}` continues it")
    from novamove.engine.journal.leases import holder_text, on_this_machine
    if not on_this_machine(run):
        # Its pid means nothing here (it could be any process of this machine's).
        raise errors.PreconditionFailed(f"campaign {run['id']} runs on {holder_text(run)}, not on this machine: "
                                        f"run `novamove campaign stop {run['id']}` there")
    os.kill(run["pid"], signal.SIGTERM)
    return run


def campaign_status(run_id: Optional[str] = None, *, journal_path=None) -> list[dict]:
    """Maintenance campaigns in the local journal (newest first), or one, with each host's state."""
    from novamove.engine import campaign as engine
    return engine.status(open_journal(journal_path), run_id)


def compute_service_up(host: str, *, since: Optional[str] = None, timeout: float = 600, poll_interval: float = 2.0,
                       cloud=None, **connection: Any) -> dict:
    """Wait until `host`'s nova-compute is up, not forced down, and (with `since`, an ISO UTC time)
    has reported after `since`. Returns {host, up, state, status, updated_at, waited}; raises
    Timeout (exit 7) when it is not within `timeout` seconds."""
    import time as _time
    from datetime import datetime as _dt, timezone as _tz
    from novamove import errors
    from novamove.engine.campaign import _parse
    from novamove.engine.resolve import pick_host
    if since is not None and _parse(since) is None:
        raise errors.UsageError(f"since must be an ISO time (e.g. 2026-01-31T12:00:00), not {since!r}")
    limit = _parse(since)
    t0 = _time.monotonic()
    with _connected(cloud, **connection) as c:
        name = pick_host(host, c.compute_hosts(with_resources=False)).name
        while True:
            svc = next(s for s in c.list_compute_services() if s.host == name)
            reported = _parse(svc.updated_at)
            fresh = limit is None or (reported is not None and reported > limit)
            if svc.up and not svc.forced_down and fresh:
                return {"host": name, "up": True, "state": svc.state, "status": svc.status,
                        "updated_at": svc.updated_at, "waited": round(_time.monotonic() - t0, 1)}
            if _time.monotonic() - t0 > timeout:
                raise errors.Timeout(
                    f"nova-compute on {name} is not up after {timeout:.0f} s (state {svc.state}"
                    f"{', forced down' if svc.forced_down else ''}, last report {svc.updated_at}"
                    f"{', wanted after ' + since if since else ''})")
            _time.sleep(poll_interval)


def utcnow_iso() -> str:
    """The current UTC time as compute_service_up's `since` takes it."""
    from datetime import datetime as _dt, timezone as _tz
    return _dt.now(_tz.utc).replace(tzinfo=None).isoformat()


__all__ += ["maintain", "campaign_status", "compute_service_up", "utcnow_iso"]


# ------------------------------------------------------------------------------ doctor

def doctor(*, hosts=(), servers=(), older_than: Optional[float] = None, fix: bool = False,
           fix_classes=None, cloud=None, journal_path=None, observers: Sequence[Observer] = (), heartbeat_gap: Optional[float] = None,
           repair_timeout: float = 180.0, poll_interval: float = 2.0,
           progress: Optional[Callable[[str], None]] = None, **connection: Any):
    """Find the drift failed or interrupted migrations left behind (novamove.engine.doctor),
    through Nova's and Placement's APIs alone; with `fix` (or `fix_classes`, a list of class
    names), repair what is repairable: with no class the safe ones only (docs/doctor.md).

    Returns a DoctorReport: `findings` (each `.to_dict()` has the stable keys of `-f json`),
    `repairs`, `left` (the scan after the repairs), `stats` (requests per read), `exit_code`
    (0 clean, 10 findings left, 1 a repair did not take). Bad input (an unknown class, a
    negative `older_than`, an unknown host or server) raises before anything is changed."""
    from novamove.engine import doctor as engine
    # A cloud whose computes report every few seconds (the test minicloud) can judge sooner:
    # NOVAMOVE_DOCTOR_SETTLE and NOVAMOVE_DOCTOR_HEARTBEAT_GAP (docs/doctor.md).
    from novamove.engine.doctor.snapshot import SETTLE
    settle = _env_seconds("NOVAMOVE_DOCTOR_SETTLE", SETTLE)
    if heartbeat_gap is None:
        heartbeat_gap = _env_seconds("NOVAMOVE_DOCTOR_HEARTBEAT_GAP", None)
    opts = engine.Options(older_than=engine.DEFAULT_OLDER_THAN if older_than is None else older_than,
                          settle=settle,
                          hosts=frozenset([hosts] if isinstance(hosts, str) else hosts),
                          servers=frozenset([servers] if isinstance(servers, str) else servers))
    classes = engine.run.check_classes(fix_classes)        # one-line error before connecting
    with _connected(cloud, **connection) as c:
        return engine.doctor(c, open_journal(journal_path, observers), opts, fix=fix, fix_classes=classes,
                             heartbeat_gap=heartbeat_gap, repair_timeout=repair_timeout,
                             poll_interval=poll_interval, progress=progress)


def doctor_classes(fix_classes=None) -> dict:
    """The drift classes, name -> {"explain", "repair"} (safe | one-way | named | operator |
    none: docs/doctor.md); with `fix_classes`, those names are checked first as `--fix CLASS`
    checks them (UsageError, one line, for an unknown or operator-only class). Reads nothing."""
    from novamove.engine import doctor as engine
    engine.run.check_classes(fix_classes)
    return {c.name: {"explain": c.explain, "repair": c.repair} for c in engine.CLASSES.values()}


def _stall_options(on_stall: str, mode: Optional[str] = None) -> dict:
    """--on-stall and the NOVAMOVE_STALL_* settings, checked once before connecting (bad input:
    one line, nothing changed); the batch engines take them as given."""
    from novamove import errors
    from novamove.engine import stall
    stall.check_on_stall(on_stall)
    if mode == "live" and on_stall == stall.COLD:
        # The operator asked for live moves only: falling back to a cold one would break that.
        raise errors.UsageError("--on-stall cold contradicts a live-only move (--live, --mode live): a stalled move would be made "
                                "cold; use --on-stall force-complete, abort or leave")
    return {"on_stall": on_stall, "stall_settings": stall.settings_from_env()}


def _env_seconds(name: str, default: Optional[float]) -> Optional[float]:
    """A number of seconds >= 0 from the environment, else `default` (bad input: one line)."""
    import os
    from novamove import errors
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise errors.UsageError(f"{name}={text!r} is not a number of seconds") from None
    if not value >= 0:
        raise errors.UsageError(f"{name}={text!r} must be a number of seconds >= 0")
    return value


__all__ += ["doctor", "doctor_classes"]
