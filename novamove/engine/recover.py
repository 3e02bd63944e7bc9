"""Undo what an interrupted run left behind, from the journal.

For every run that did not finish (killed, interrupted, crashed):
  * re-enable the compute services it disabled -- only those still disabled *with its own
    tagged reason*; a service someone else changed since is reported, not touched;
  * a server left in VERIFY_RESIZE on the run's target is confirmed (or only reported with
    confirm=False); on any other host it is reported;
  * in-flight migrations of the server are reported (Nova is still carrying them out).
"""

from __future__ import annotations

import os
import time
from typing import Optional

from novamove import errors
from novamove.engine.journal import Journal, pid_alive
from novamove.model import Service
from novamove.strategies.isolate import restore_services


# How long recover waits for Nova to carry out a confirmation it asked for.
CONFIRM_SECONDS = 120.0

# Runs of single-server verbs (this module undoes them); drains have their own continuation.
MOVE_VERBS = {"migrate", "back", "abort", "force-complete", "confirm", "revert"}


def services_left_disabled(events) -> list[Service]:
    """Services a run disabled (or may have: intent without outcome) and did not re-enable."""
    pending: dict[str, Service] = {}
    for e in events:
        sid = e.data.get("service_id")
        if not sid:
            continue
        if e.kind == "service.disable" and e.state in ("intent", "done"):
            pending[sid] = Service(id=sid, host=e.target or "?")
        elif e.kind == "service.enable" and e.state == "done":
            pending.pop(sid, None)
    return list(pending.values())


def recover_run(cloud, journal: Journal, run: dict, *, confirm: bool = True) -> dict:
    run_id = run["id"]
    report: dict = {"run_id": run_id, "verb": run["verb"], "server": run.get("server_name"),
                    "status_before": run["status"], "services_enabled": [], "services_left": [],
                    "server_action": None, "in_flight": [], "notes": []}
    events = journal.events(run_id)
    pending = services_left_disabled(events)
    if pending:
        report["services_enabled"] = restore_services(cloud, journal, run_id, pending)
        report["services_left"] = [s.host for s in pending if s.host not in report["services_enabled"]]
    server_id = run.get("server_id")
    server = None
    if server_id:
        try:
            server = cloud.get_server(server_id)
        except errors.NotFound:
            report["notes"].append("server no longer exists")
            server = None
        if server is not None:
            if server.status == "VERIFY_RESIZE" and not server.task_state:
                if confirm and server.host == run.get("dest"):
                    event = journal.intent(run_id, "server.confirm", server_id, by="recover")
                    cloud.confirm_resize(server_id)
                    journal.done(event)
                    server = _settled(cloud, server_id)
                    report["server_action"] = (
                        f"confirmed the resize of {server.name} on {server.host}"
                        if server.status != "VERIFY_RESIZE" else
                        f"asked Nova to confirm the resize of {server.name}; it is still "
                        f"VERIFY_RESIZE on {server.host}")
                else:
                    report["server_action"] = (f"{server.name} awaits confirmation on {server.host} "
                                               "(novamove confirm / revert)")
            report["server_state"] = f"{server.name} is {server.status} on {server.host}"
            report["in_flight"] = [f"{m.migration_type} {m.id}: {m.source_host} -> {m.dest_host} ({m.status})"
                                   for m in cloud.list_migrations(server_id=server_id) if m.in_progress]
    summary = "; ".join(filter(None, [
        f"re-enabled {', '.join(report['services_enabled'])}" if report["services_enabled"] else None,
        f"left {', '.join(report['services_left'])} (changed by someone else)" if report["services_left"] else None,
        report["server_action"],
        f"in flight: {', '.join(report['in_flight'])}" if report["in_flight"] else None,
    ])) or "nothing to undo"
    if server is not None and (report["in_flight"] or server.task_state):
        # Nova is still moving the server: what it ends in (VERIFY_RESIZE to confirm, say) is
        # not known yet, so the run stays unfinished for the next `recover`.
        summary += f"; {server.name} is still moving: run `novamove recover` again once it settles"
        report["summary"] = summary
        journal.update_run(run_id, status="interrupted", summary=f"recovering: {summary}")
        return report
    report["summary"] = summary
    journal.finish_run(run_id, "recovered", summary=f"recovered: {summary}")
    return report


def _settled(cloud, server_id: str, timeout: float = CONFIRM_SECONDS):
    """The server once Nova has carried out the confirmation (it is asynchronous)."""
    deadline = time.monotonic() + timeout
    server = cloud.get_server(server_id)
    while server.status == "VERIFY_RESIZE" and time.monotonic() < deadline:
        time.sleep(0.5)
        server = cloud.get_server(server_id)
    return server


def recover(cloud, journal: Journal, run_id: Optional[str] = None, *, confirm: bool = True) -> list[dict]:
    if run_id:
        run = journal.get_run(run_id)
        if run is None:
            raise errors.NotFound(f"no run {run_id!r} in the journal {journal.path}")
        runs = [run]
    else:
        runs = journal.unfinished_runs()
    reports = []
    for run in runs:
        if run["verb"] == "maintain":
            # Campaigns continue from their journal: hosts done are skipped, the rest resumed.
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": None,
                            "status_before": run["status"],
                            "summary": f"maintenance campaign over {run.get('source') or '?'} did not finish: "
                                       f"`novamove maintain --resume {run['id']}` continues it "
                                       f"(`novamove campaign status {run['id']}` shows each host)"})
            continue
        if run["verb"] not in MOVE_VERBS:
            # Drains own their leftovers: rerunning the drain adopts them (and marks this run).
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": run.get("server_name"),
                            "status_before": run["status"],
                            "summary": f"{run['verb']} of {run.get('source') or '?'} did not finish: run "
                                       f"`novamove {run['verb']} {run.get('source') or 'HOST'}` again "
                                       "to continue it"})
            continue
        if run["status"] == "running" and run.get("pid") != os.getpid() and pid_alive(run.get("pid")) \
                and not run_id:
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": run.get("server_name"),
                            "status_before": run["status"],
                            "summary": f"still running (pid {run['pid']}); not touched"})
            continue
        reports.append(recover_run(cloud, journal, run, confirm=confirm))
    return reports
