"""isolate: make the target the only enabled compute while the scheduler decides.

For clouds whose migrate API cannot name a host (cold < 2.56) or when asked. Steps:
disable every *enabled* nova-compute service except the target (reason tagged
`novamove:<run-id>: ...`), request the move without a host, wait for the scheduling decision,
re-enable exactly the services it disabled -- on success, on error and on Ctrl-C/SIGTERM.
Services that were disabled before keep their status and reason. Every toggle is journaled
before it is made, so `novamove recover` can finish the job after a SIGKILL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Iterable, Optional

from novamove.engine import events
from novamove.engine.services import in_parallel, restore_services
from novamove.engine.tags import is_isolation_tag, reason_run_id, tagged_reason
from novamove import errors
from novamove.model import Host, Service
from novamove.retry import patiently
from novamove.engine.single.strategies._signals import deferred_signals, signals_as_exceptions
from novamove.engine.single.strategies.base import MoveContext, Step, Strategy, run_steps
from novamove.engine.single.strategies.steps import RequestMove, WaitScheduled

def services_to_isolate(hosts: Iterable[Host], target: str) -> list[Host]:
    """The computes isolate disables: every *enabled* one except the target.

    Computes already disabled are left alone: their status and reason are someone else's.
    """
    return [h for h in hosts if h.name != target and h.service.enabled]


def isolating_runs(hosts: Iterable[Host], own_run: str) -> dict[str, list[str]]:
    """Other novamove isolate runs whose toggles are in place: run id -> hosts it disabled.
    (A drain's tag marks a host under maintenance, not an isolation window.)"""
    runs: dict[str, list[str]] = {}
    for h in hosts:
        reason = h.service.disabled_reason
        run_id = None if h.service.enabled else reason_run_id(reason)
        if run_id and run_id != own_run and is_isolation_tag(reason):
            runs.setdefault(run_id, []).append(h.name)
    return runs


class DisableOthers(Step):
    name = "disable-others"

    def __init__(self) -> None:
        self.to_disable: list[Host] = []

    def pre_condition(self, ctx: MoveContext) -> None:
        hosts = ctx.cloud.compute_hosts(with_resources=False)
        target = next((h for h in hosts if h.name == ctx.target.name), None)
        if target is None or not target.service.enabled or not target.service.up:
            raise errors.PreconditionFailed(f"target {ctx.target.name} is not an enabled, up compute")
        # Two isolation windows at once would disable each other's target.
        busy = isolating_runs(hosts, ctx.run_id)
        if busy:
            run_id, names = sorted(busy.items())[0]
            raise errors.PreconditionFailed(
                f"another novamove run ({run_id}) has {', '.join(sorted(names))} disabled to isolate "
                "its own target; wait for it to finish (if it died, `novamove recover` where it ran "
                "re-enables them)")
        self.to_disable = services_to_isolate(hosts, ctx.target.name)

    def execute(self, ctx: MoveContext) -> None:
        reason = tagged_reason(ctx.run_id, ctx.reason)

        def disable(service: Service):
            def call() -> None:
                with ctx.journal.change(ctx.run_id, events.SERVICE_DISABLE, service.host,
                                        service_id=service.id, previous_status=service.status,
                                        previous_reason=service.disabled_reason, reason=reason):
                    # Recorded before the call: if the PUT lands but its answer is lost,
                    # revert still knows to look at this service.
                    ctx.disabled.append(service)
                    ctx.cloud.disable_service(service, reason)
            return call

        # Look again right before writing: a compute someone disabled since the listing keeps
        # their reason (our PUT would overwrite it, and our restore would then re-enable it).
        still_enabled = {s.id for s in ctx.cloud.list_compute_services() if s.enabled}
        self.to_disable = [h for h in self.to_disable if h.service.id in still_enabled]
        if self.to_disable:
            ctx.isolation_started = ctx.clock()
        # Signals wait until every PUT has answered, so that revert sees the final state.
        with deferred_signals():
            in_parallel([disable(h.service) for h in self.to_disable])

    def post_condition(self, ctx: MoveContext) -> None:
        # Read the tags back. Someone may have enabled another compute (or a new one
        # registered) meanwhile; another isolate run that listed at the same moment has
        # disabled our target or tagged computes as its own: both back off (each restores
        # only what carries its own tag) rather than move a server to the wrong place.
        services = ctx.cloud.list_compute_services()
        target = next((s for s in services if s.host == ctx.target.name), None)
        rivals = sorted({reason_run_id(s.disabled_reason) for s in services
                         if not s.enabled and is_isolation_tag(s.disabled_reason)
                         and reason_run_id(s.disabled_reason) != ctx.run_id})
        if target is None or not target.enabled or rivals:
            raise errors.PreconditionFailed(
                f"could not isolate {ctx.target.name}: another novamove isolate run "
                f"({', '.join(r for r in rivals if r) or 'unknown'}) opened its window at the same "
                "moment; nothing was moved, try again")
        others = [s.host for s in services if s.enabled and s.host != ctx.target.name]
        if others:
            raise errors.PreconditionFailed(
                f"could not isolate {ctx.target.name}: {', '.join(others)} enabled meanwhile")

    def revert(self, ctx: MoveContext) -> None:
        with deferred_signals(reraise=False):
            restore_services(ctx.cloud, ctx.journal, ctx.run_id, ctx.disabled)
            ctx.disabled = []
            if ctx.isolation_started is not None and ctx.isolation_ended is None:
                ctx.isolation_ended = ctx.clock()


class RestoreOthers(Step):
    """The normal end of isolation, right after the scheduling decision."""
    name = "restore-others"

    def execute(self, ctx: MoveContext) -> None:
        with deferred_signals():
            restore_services(ctx.cloud, ctx.journal, ctx.run_id, ctx.disabled)
            ctx.disabled = []
            if ctx.isolation_started is not None:
                ctx.isolation_ended = ctx.clock()


class RememberMigrations(Step):
    """List the server's existing migrations *before* isolating, to keep that out of the window."""
    name = "remember-migrations"

    def execute(self, ctx: MoveContext) -> None:
        ctx.known_migration_ids = {m.id for m in ctx.cloud.list_migrations(server_id=ctx.server.id)}


class IsolateStrategy(Strategy):
    name = "isolate"

    def steps(self, ctx: MoveContext) -> list[Step]:
        return [RememberMigrations(), DisableOthers(), RequestMove(host=None), WaitScheduled(),
                RestoreOthers()]

    def run(self, ctx: MoveContext) -> None:
        with signals_as_exceptions():
            run_steps(self.steps(ctx), ctx)
