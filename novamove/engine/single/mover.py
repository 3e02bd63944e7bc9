"""Run one move end to end: resolve, pre-check, strategy, wait, confirm, report, journal."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Optional

from novamove.engine import events
from novamove import errors
from novamove.engine.single import strategies
from novamove.engine.single import checks
from novamove.engine.frame import RunFrame, new_run_id
from novamove.engine.poll import poll_until
from novamove.engine.journal import Journal, now
from novamove.engine.resolve import pick_host, resolve_server
from novamove.engine.single.result import MoveResult, Snapshot, server_facts, summary_line
from novamove.engine.single.waiter import ON_TIMEOUT, MoveWatcher
from novamove.engine import stall
from novamove.model import COLD, Host, Migration, Server
from novamove.engine.single.strategies._signals import signals_as_exceptions
from novamove.engine.single.strategies.base import MoveContext
from novamove.engine.single.strategies.scheduler import UNDECIDED
from novamove.engine.single.scheduled import prepare_unnamed

log = logging.getLogger("novamove.engine")


@dataclasses.dataclass
class Plan:
    """What a move will do, decided by the pre-checks (nothing changed yet)."""
    server: Server
    target: Host
    mode: str
    strategy: str
    candidates: tuple[str, ...] = ()     # no target named: the hosts the scheduler chooses among


def prepare(cloud, server_ref: str, host_ref: Optional[str], *, mode: str = "auto",
            strategy: str = "auto") -> Plan | MoveResult:
    """Every pre-check; returns a Plan, or a no-op MoveResult when the server is already there.
    Without `host_ref` Nova's scheduler chooses (strategy "scheduler")."""
    if host_ref is None:
        server, chosen_mode, candidates = prepare_unnamed(cloud, server_ref, mode=mode, strategy=strategy)
        return Plan(server, Host(name=UNDECIDED, service=None), chosen_mode, "scheduler", tuple(candidates))
    server = resolve_server(cloud, server_ref)
    hosts = cloud.compute_hosts(with_resources=False)
    target = pick_host(host_ref, hosts)
    if server.host == target.name:
        # "Already there" means settled there: a server mid-move, awaiting confirmation or
        # broken is not a no-op.
        if server.task_state:
            raise errors.PreconditionFailed(
                f"{server.name} is on {target.name} but busy (task state {server.task_state}); "
                f"`novamove wait {server.name}` follows what it is doing")
        if server.status == "VERIFY_RESIZE":
            return Plan(server, target, "cold", "confirm")
        if server.status not in ("ACTIVE", "SHUTOFF", "PAUSED"):
            raise errors.PreconditionFailed(
                f"{server.name} is on {target.name} but {server.status}, not settled there")
        facts = server_facts(server)
        return MoveResult(ok=True, changed=False, server_id=server.id, server_name=server.name,
                          summary=f"{server.name} is already on {target.name} and has a status of "
                                  f"{server.status}",
                          before=facts, after=facts, source=server.host, dest=target.name,
                          microversion=cloud.microversion)
    chosen_mode = checks.choose_mode(server, mode)
    checks.check_target(server, target)
    checks.check_source(server, {h.name: h for h in hosts}.get(server.host))
    chosen_strategy = checks.choose_strategy(strategy, chosen_mode, cloud.supports, cloud.capped)
    if target.hypervisor_hostname:
        capacity, used, max_unit = cloud.host_resources(target.hypervisor_hostname)
        target = dataclasses.replace(target, capacity=capacity, used=used)
        checks.check_capacity(server, target, max_unit)
    return Plan(server, target, chosen_mode, chosen_strategy)


def _snapshotter(ctx_start: float, progress: Optional[Callable[[Snapshot], None]]):
    def observe(phase: str, server: Optional[Server], migration: Optional[Migration]) -> None:
        if progress is None:
            return
        snap = Snapshot(
            phase=phase, elapsed=round(time.monotonic() - ctx_start, 1),
            server_status=server.status if server else None,
            task_state=server.task_state if server else None,
            host=server.host if server else None,
            migration_id=migration.id if migration else None,
            migration_status=migration.status if migration else None,
            dest=migration.dest_host if migration else None,
            memory_total_bytes=migration.memory_total_bytes if migration else None,
            memory_remaining_bytes=migration.memory_remaining_bytes if migration else None,
            disk_total_bytes=migration.disk_total_bytes if migration else None,
            disk_remaining_bytes=migration.disk_remaining_bytes if migration else None)
        try:
            progress(snap)
        except Exception:  # a display bug must not break a move
            log.exception("progress callback failed")
    return observe


def move(cloud, journal: Journal, server_ref: str, host_ref: Optional[str], *, mode: str = "auto",
         strategy: str = "auto", reason: Optional[str] = None, confirm: bool = True,
         wait: bool = True, timeout: float = 600, on_timeout: str = "abort",
         check_mode: bool = False, progress: Optional[Callable[[Snapshot], None]] = None,
         poll_interval: float = 1.0, verb: str = "migrate", run_id: Optional[str] = None,
         schedule_timeout: float = 60.0, on_stall: str = stall.DEFAULT_ON_STALL) -> MoveResult:
    if on_timeout not in ON_TIMEOUT:
        raise errors.UsageError(f"unknown on-timeout {on_timeout!r} (choose {', '.join(ON_TIMEOUT)})")
    stall.check_on_stall(on_stall)
    stall_settings = stall.settings_from_env()
    for name, value in (("timeout", timeout), ("schedule_timeout", schedule_timeout),
                        ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or (value == 0 and name != "poll_interval"):
            raise errors.UsageError(f"{name} must be a positive number of seconds, not {value!r}")
    started = time.monotonic()
    requests_before = cloud.requests.count

    def finish(result: MoveResult) -> MoveResult:
        return _stamped(cloud, result, started, requests_before, journal)

    plan = prepare(cloud, server_ref, host_ref, mode=mode, strategy=strategy)
    if isinstance(plan, MoveResult):
        return finish(plan)
    server, target = plan.server, plan.target
    if plan.strategy == "confirm":
        return finish(_finish_on_target(cloud, journal, server, confirm=confirm, check_mode=check_mode,
                                        verb=verb, run_id=run_id))
    before = server_facts(server)
    common = dict(server_id=server.id, server_name=server.name, before=before, source=server.host,
                  dest=target.name, mode=plan.mode, strategy=plan.strategy)
    if check_mode:
        where = (f"; the scheduler chooses among: {', '.join(plan.candidates)}" if plan.candidates
                 else f" to {target.name}")
        return finish(MoveResult(
            ok=True, changed=True, check_mode=True, after=before,
            summary=f"{server.name} would be migrated from {server.host}{where} "
                    f"({plan.mode}, {plan.strategy})", **common))

    run_id = run_id or new_run_id()
    with RunFrame(journal, verb, cloud=cloud, run_id=run_id, server_id=server.id,
                  server_name=server.name, source=server.host, dest=target.name,
                  mode=plan.mode, strategy=plan.strategy) as frame:
        result = _run_move(frame, plan, common, reason=reason, confirm=confirm, wait=wait,
                           timeout=timeout, on_timeout=on_timeout, progress=progress,
                           poll_interval=poll_interval, schedule_timeout=schedule_timeout,
                           on_stall=on_stall, stall_settings=stall_settings)
    return finish(result)


def _run_move(frame: RunFrame, plan: Plan, common: dict[str, Any], *, reason: Optional[str],
              confirm: bool, wait: bool, timeout: float, on_timeout: str,
              progress: Optional[Callable[[Snapshot], None]], poll_interval: float,
              schedule_timeout: float, on_stall: str = stall.DEFAULT_ON_STALL,
              stall_settings: Optional[stall.StallSettings] = None) -> MoveResult:
    """The move itself, inside its run's frame; the outcome is said with frame.end."""
    cloud, journal, run_id = frame.cloud, frame.journal, frame.run_id
    server, target = plan.server, plan.target
    # --timeout counts from the move request, not from start-up: authentication and pre-checks
    # can take a while on a busy cloud and must not eat the migration's time.
    ctx = MoveContext(cloud=cloud, journal=journal, run_id=run_id, server=server, target=target,
                      mode=plan.mode, reason=reason, timeout=float(timeout),
                      poll_interval=poll_interval, started_at=now(), started=time.monotonic(),
                      schedule_timeout=float(schedule_timeout))
    ctx.observe = _snapshotter(ctx.started, progress)
    common["run_id"] = run_id

    try:
        # SIGTERM/SIGHUP end the run like Ctrl-C does: journaled as interrupted, services restored.
        with signals_as_exceptions():
            strategies.get(plan.strategy).run(ctx)
            target = ctx.target          # the scheduler's choice, once it has made it
            common["dest"] = target.name
            if not wait:
                return _accepted(frame, ctx, common)
            outcome = MoveWatcher(ctx, confirm=confirm, on_timeout=on_timeout,
                                  original_status=server.status, on_stall=on_stall,
                                  stall_settings=stall_settings).run()
            if outcome.cold_fallback:
                ctx, outcome = _cold_after_stall(ctx, outcome, confirm=confirm, on_timeout=on_timeout)
                common["mode"] = ctx.mode
    except (KeyboardInterrupt, errors.Interrupted) as exc:
        where = (f"; migration {ctx.migration.id} continues in Nova" if ctx.migration else "")
        message = f"interrupted{where} - see `novamove migrations {server.name}` and `novamove recover`"
        frame.end("interrupted", error=message)
        raise errors.Interrupted(message) from exc
    except errors.NovamoveError as exc:
        frame.end("failed", error=str(exc))
        raise
    except BaseException as exc:
        frame.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise

    after = outcome.server
    migration = outcome.migration
    result = MoveResult(
        ok=outcome.ok, changed=True, after=server_facts(after), migration_id=migration.id if migration else None,
        migration_status=migration.status if migration else None, error=outcome.error,
        exit_code=outcome.exit_code, isolation_seconds=ctx.isolation_seconds,
        disabled_services=_disabled_hosts(journal, run_id), stall=outcome.stall,
        summary=(summary_line(server.name, server.host, after.host, after.status) if outcome.ok
                 else f"{server.name} was not migrated to {target.name}: it is on {after.host} "
                      f"with a status of {after.status}"),
        **common)
    # honest: "changed" says whether the server moved, not whether we tried
    result.changed = after.host != server.host
    if result.ok and not result.changed:     # the scheduler's choice must be another host
        result.ok, result.exit_code = False, errors.EXIT_FAILED
        result.error = f"{server.name} is still on {server.host} after the move"
    frame.end("ok" if result.ok else "failed", summary=result.summary, error=result.error)
    return result


def _cold_after_stall(ctx: MoveContext, stalled, *, confirm: bool, on_timeout: str):
    """--on-stall cold: the stalled live move was aborted (the server is back on its source);
    move it cold to the same target, in the same run, journaled as any cold move."""
    from novamove.engine.single.strategies.native import NativeStrategy
    if stalled.server.host != ctx.server.host or stalled.server.status not in ("ACTIVE", "SHUTOFF"):
        return ctx, stalled        # not back as it was: nothing more is tried; the error says where
    cold = dataclasses.replace(ctx, mode=COLD, migration=None, known_migration_ids=None, scheduled=False,
                               started=time.monotonic(), server=stalled.server)
    NativeStrategy().run(cold)
    outcome = MoveWatcher(cold, confirm=confirm, on_timeout=on_timeout,
                          original_status=stalled.server.status).run()
    outcome.stall = stalled.stall
    if outcome.error:
        outcome.error = f"{stalled.error}; then cold: {outcome.error}"
    return cold, outcome


def _finish_on_target(cloud, journal: Journal, server: Server, *, confirm: bool, check_mode: bool,
                      verb: str, run_id: Optional[str]) -> MoveResult:
    """The server already reached the target and awaits confirmation: finish that move."""
    from novamove.engine.single import operations

    facts = server_facts(server)
    common = dict(server_id=server.id, server_name=server.name, before=facts, source=server.host,
                  dest=server.host, mode="cold", strategy="confirm")
    if check_mode or not confirm:
        what = "would confirm" if check_mode else "left awaiting confirmation (--no-confirm):"
        return MoveResult(ok=True, changed=check_mode, check_mode=check_mode, after=facts,
                          summary=f"{server.name} is on {server.host} in VERIFY_RESIZE; {what} "
                                  "its cold move", **common)
    result = operations.confirm(cloud, journal, server.id)
    result.summary = (f"{server.name} was already on {server.host} awaiting confirmation: "
                      f"{result.summary}")
    return result


def _accepted(frame: RunFrame, ctx: MoveContext, common: dict[str, Any]) -> MoveResult:
    """--no-wait: the move is accepted and scheduled; report where it is headed."""
    server = ctx.cloud.get_server(ctx.server.id)
    migration = ctx.migration
    if migration is not None and migration.failed:
        reason = ctx.cloud.server_fault(server.id, since=ctx.started_at)
        error = f"{ctx.mode} migration of {server.name} failed at scheduling" + (f": {reason}" if reason else "")
        frame.end("failed", error=error)
        return MoveResult.failure(error, after=server_facts(server), migration_id=migration.id,
                                  migration_status=migration.status, changed=False,
                                  isolation_seconds=ctx.isolation_seconds, **common)
    dest = migration.dest_host if migration else None
    summary = (f"{server.name} is being migrated from {ctx.server.host} to {dest or ctx.target.name} "
               f"(migration {migration.status if migration else 'accepted'}, status {server.status})")
    # The run is over for novamove; Nova carries on. "ok" here means accepted and scheduled.
    frame.end("ok", summary=summary)
    return MoveResult(ok=True, changed=True, summary=summary, after=server_facts(server),
                      migration_id=migration.id if migration else None,
                      migration_status=migration.status if migration else None,
                      isolation_seconds=ctx.isolation_seconds, **common)


def _disabled_hosts(journal: Journal, run_id: str) -> list[str]:
    return [e.target for e in journal.events(run_id) if e.kind == events.SERVICE_DISABLE and e.state == "done"]


# ----------------------------------------------------------------------------- wait

MOVE_TYPES = {"live-migration": "live", "migration": "cold"}


def follow(cloud, journal: Journal, server_ref: str, *, confirm: bool = False, timeout: float = 600,
           on_timeout: str = "leave", progress: Optional[Callable[[Snapshot], None]] = None,
           poll_interval: float = 1.0) -> MoveResult:
    """Wait for the move SERVER is in (started by `migrate --no-wait`, a dashboard, another
    tool) and judge it like `migrate` does; confirm a cold one only when asked, and by default
    do nothing to a live one on timeout (it may not be ours)."""
    if on_timeout not in ON_TIMEOUT:
        raise errors.UsageError(f"unknown on-timeout {on_timeout!r} (choose {', '.join(ON_TIMEOUT)})")
    started = time.monotonic()
    requests_before = cloud.requests.count
    server = resolve_server(cloud, server_ref)
    migration = _current_move(cloud, server)
    mode = MOVE_TYPES[migration.migration_type]
    ctx = MoveContext(cloud=cloud, journal=journal, run_id=new_run_id(), server=server,
                      target=Host(name=migration.dest_host or "?", service=None), mode=mode,
                      timeout=float(timeout), poll_interval=poll_interval, started_at=now(),
                      started=time.monotonic(), migration=migration, scheduled=True)
    ctx.observe = _snapshotter(ctx.started, progress)
    migration = ctx.migration = _wait_destination(ctx)
    ctx.target = Host(name=migration.dest_host or "?", service=None)
    # The server as it was before the move is unknown here; the source is the record's.
    ctx.server = server.replace(host=migration.source_host)
    common = dict(server_id=server.id, server_name=server.name, before=server_facts(server),
                  source=migration.source_host, dest=migration.dest_host, mode=mode, strategy="-",
                  run_id=ctx.run_id)
    with RunFrame(journal, events.VERB_WAIT, cloud=cloud, run_id=ctx.run_id, server_id=server.id,
                  server_name=server.name, source=migration.source_host,
                  dest=migration.dest_host, mode=mode, strategy="-") as frame:
        try:
            with signals_as_exceptions():
                # A move this run did not start: a stall is journaled, never acted on (its
                # owner chose; --on-timeout still governs the wait).
                outcome = MoveWatcher(ctx, confirm=confirm, on_timeout=on_timeout,
                                      check_status=False, on_stall=stall.LEAVE).run()
        except (KeyboardInterrupt, errors.Interrupted) as exc:
            frame.end("interrupted", error="stopped waiting")
            raise errors.Interrupted(f"stopped waiting; migration {migration.id} of {server.name} "
                                     "continues in Nova") from exc
        except BaseException as exc:
            frame.end("failed", error=str(exc))
            raise
        result = _judged(outcome, server, migration, common)
        frame.end("ok" if outcome.ok else "failed", summary=result.summary, error=outcome.error)
    return _stamped(cloud, result, started, requests_before, journal)


def _judged(outcome: Any, server: Server, migration: Migration, common: dict[str, Any]) -> MoveResult:
    """What `wait` reports of the move it followed."""
    after = outcome.server
    done = outcome.migration or migration
    awaiting = outcome.ok and after.status == "VERIFY_RESIZE"
    summary = (f"{server.name} is on {after.host} awaiting confirmation (novamove confirm / revert)"
               if awaiting else
               summary_line(server.name, migration.source_host, after.host, after.status)
               if outcome.ok else
               f"{server.name} was not migrated to {migration.dest_host}: it is on {after.host} "
               f"with a status of {after.status}")
    return MoveResult(ok=outcome.ok, changed=outcome.ok and after.host != migration.source_host,
                      after=server_facts(after), migration_id=done.id, migration_status=done.status,
                      error=outcome.error, exit_code=outcome.exit_code, summary=summary, **common)


def _stamped(cloud, result: MoveResult, started: float, requests_before: int,
             journal: Optional[Journal] = None) -> MoveResult:
    """The cost of a verb on its result: API requests, seconds, the microversion used; and
    Nova's request ids of the changes it made (to grep the cloud's logs)."""
    if journal is not None and result.run_id:
        result.request_ids = journal.request_ids(result.run_id)
    result.api_requests = cloud.requests.count - requests_before
    result.elapsed_seconds = time.monotonic() - started
    result.microversion = cloud.microversion
    return result


def _current_move(cloud, server: Server) -> Migration:
    """The cold or live migration SERVER is in: in progress, or finished and awaiting
    confirmation (VERIFY_RESIZE)."""
    moves = [m for m in cloud.list_migrations(server_id=server.id) if m.migration_type in MOVE_TYPES]
    for m in moves:   # newest first
        if m.in_progress or (m.status == "finished" and server.status == "VERIFY_RESIZE"):
            return m
    raise errors.PreconditionFailed(
        f"server {server.name} is not being migrated (it is {server.status} on {server.host}); "
        "nothing to wait for")


def _wait_destination(ctx: MoveContext) -> Migration:
    """A move still being scheduled has no destination yet: wait for the scheduler."""
    first = ctx.migration

    def look() -> Migration:
        return next((m for m in ctx.cloud.list_migrations(server_id=ctx.server.id) if m.id == first.id), first)
    if first.dest_host or first.failed:
        return first
    migration, decided = poll_until(look, lambda m: bool(m.dest_host) or m.failed,
                                    timeout=max(ctx.deadline - ctx.clock(), 0.0), interval=ctx.poll_interval,
                                    clock=ctx.clock, sleep=ctx.sleep)
    if not decided:
        raise errors.Timeout(f"migration {first.id} of {ctx.server.name} was not scheduled "
                             f"within {ctx.timeout:g}s")
    return migration
