"""The smaller verbs around a move: abort, force-complete, confirm, revert.

Each resolves the server, checks the state allows the action (one-line error otherwise),
journals the change before making it and returns a MoveResult describing what happened.
"""

from __future__ import annotations

from typing import Optional

from novamove.engine import events
from novamove import errors
from novamove.engine.frame import RunFrame
from novamove.engine.journal import Journal
from novamove.engine.poll import poll_until
from novamove.engine.resolve import resolve_server
from novamove.engine.single.result import MoveResult, server_facts
from novamove.model import Migration, Server


def in_progress_live_migration(cloud, server: Server) -> Migration:
    rows = [m for m in cloud.list_migrations(server_id=server.id)
            if m.migration_type == "live-migration" and m.in_progress]
    if not rows:
        raise errors.PreconditionFailed(f"server {server.name} has no live migration in progress")
    return rows[0]


def _act(cloud, journal: Journal, server_ref: str, verb: str, action, *,
         check=None, wait_for=None, verify=None, timeout: float = 120, poll: float = 1.0) -> MoveResult:
    """Make one journaled change to a server's move, wait until Nova settles it, and judge the
    end state with `verify(before, after, target_id) -> error or None`: an exit 0 only when
    what was asked for took (a server in ERROR, an abort that came too late, are failures)."""
    server = resolve_server(cloud, server_ref)
    target_id = check(server) if check else server.id
    with RunFrame(journal, verb, cloud=cloud, server_id=server.id, server_name=server.name,
                  source=server.host) as frame:
        after, error, code, summary = _change_and_judge(frame, server, verb, action, target_id,
                                                        wait_for=wait_for, verify=verify,
                                                        timeout=timeout, poll=poll)
    run_id = frame.run_id
    return MoveResult(ok=error is None, changed=True, summary=summary, server_id=server.id,
                      request_ids=journal.request_ids(run_id),
                      server_name=server.name, before=server_facts(server), after=server_facts(after),
                      source=server.host, dest=after.host, run_id=run_id, error=error, exit_code=code,
                      migration_id=target_id if target_id != server.id else None)


def _change_and_judge(frame: RunFrame, server: Server, verb: str, action, target_id: str, *,
                      wait_for, verify, timeout: float, poll: float) -> tuple[Server, Optional[str], int, str]:
    """The journaled change, the wait for Nova to settle it and the verdict, inside the run's
    frame: (the server after, the error or None, the exit code, the summary)."""
    cloud, journal, run_id = frame.cloud, frame.journal, frame.run_id
    kind = {"abort": events.MIGRATION_ABORT, "force-complete": events.MIGRATION_FORCE_COMPLETE}.get(verb, f"server.{verb}")
    try:
        with journal.change(run_id, kind, target_id):
            action(server, target_id)
    except BaseException as exc:
        frame.end("failed", error=str(exc))
        raise
    after, settled = server, wait_for is None
    if wait_for is not None:
        after, settled = poll_until(lambda: cloud.get_server(server.id), wait_for, timeout=timeout,
                                    interval=poll)
    error, code = None, errors.EXIT_OK
    if not settled:
        error, code = (f"{verb} of {server.name} did not settle within {timeout:g} s: it is "
                       f"{after.status}/{after.task_state} on {after.host}"), errors.EXIT_TIMEOUT
    elif wait_for is not None and after.status == "ERROR":
        error, code = f"{verb} of {server.name} left it in ERROR on {after.host}", errors.EXIT_FAILED
    elif wait_for is not None and verify is not None:
        error = verify(server, after, target_id)
        code = errors.EXIT_FAILED if error else errors.EXIT_OK
    summary = (error if error else
               f"{verb} of {server.name}: done; it is on {after.host} with a status of {after.status}"
               if settled and wait_for is not None else
               f"{verb} of {server.name} requested; it is {after.status} on {after.host}")
    frame.end("failed" if error else "ok", summary=summary, error=error)
    return after, error, code, summary


def abort(cloud, journal: Journal, server_ref: str, *, wait: bool = True, timeout: float = 120) -> MoveResult:
    def verify(before: Server, after: Server, mid: str) -> Optional[str]:
        if after.host != before.host:
            return (f"the abort came too late: the live migration of {after.name} completed, "
                    f"it is on {after.host}")
        return None
    return _act(cloud, journal, server_ref, "abort",
                lambda s, mid: cloud.abort_migration(s.id, mid),
                check=lambda s: in_progress_live_migration(cloud, s).id,
                wait_for=(lambda s: not s.task_state) if wait else None, verify=verify, timeout=timeout)


def force_complete(cloud, journal: Journal, server_ref: str, *, wait: bool = True,
                   timeout: float = 300) -> MoveResult:
    def check(server: Server) -> str:
        migration = in_progress_live_migration(cloud, server)
        if migration.status != "running":
            raise errors.PreconditionFailed(
                f"live migration {migration.id} of {server.name} is {migration.status}; "
                "force-complete needs it running")
        return migration.id
    def verify(before: Server, after: Server, mid: str) -> Optional[str]:
        if after.host == before.host:
            return (f"force-complete did not take: {after.name} is still on {after.host} "
                    f"({after.status}); the live migration ended without it")
        return None
    return _act(cloud, journal, server_ref, "force-complete",
                lambda s, mid: cloud.force_complete_migration(s.id, mid), check=check,
                wait_for=(lambda s: not s.task_state) if wait else None, verify=verify, timeout=timeout)


def _needs_verify_resize(server: Server) -> str:
    if server.status != "VERIFY_RESIZE":
        raise errors.PreconditionFailed(
            f"server {server.name} is {server.status}, not VERIFY_RESIZE: nothing to confirm or revert")
    return server.id


def confirm(cloud, journal: Journal, server_ref: str, *, wait: bool = True, timeout: float = 120) -> MoveResult:
    return _act(cloud, journal, server_ref, "confirm", lambda s, _: cloud.confirm_resize(s.id),
                check=_needs_verify_resize,
                wait_for=(lambda s: s.status != "VERIFY_RESIZE" and not s.task_state) if wait else None,
                timeout=timeout)


def revert(cloud, journal: Journal, server_ref: str, *, wait: bool = True, timeout: float = 300) -> MoveResult:
    def verify(before: Server, after: Server, _: str) -> Optional[str]:
        if after.host == before.host:
            return f"revert did not take: {after.name} is {after.status} on {after.host}, the cold move's target"
        return None
    return _act(cloud, journal, server_ref, "revert", lambda s, _: cloud.revert_resize(s.id),
                check=_needs_verify_resize,
                wait_for=(lambda s: s.status != "VERIFY_RESIZE" and not s.task_state) if wait else None,
                verify=verify, timeout=timeout)


def previous_host(cloud, journal: Journal, server_ref: str) -> tuple[Server, str]:
    """Where `server` was before its last novamove move (for `novamove back`)."""
    server = resolve_server(cloud, server_ref)
    run: Optional[dict] = journal.last_move(server.id)
    if run is None:
        raise errors.NotFound(f"the journal {journal.path} has no completed novamove move of {server.name}")
    return server, run["source"]
