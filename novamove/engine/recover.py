"""Undo what an interrupted run left behind, from the journal.

For every run that did not finish (killed, interrupted, crashed):
  * re-enable the compute services it disabled -- only those still disabled *with its own
    tagged reason*; a service someone else changed since is reported, not touched;
  * a server left in VERIFY_RESIZE on the run's target is confirmed (or only reported with
    confirm=False); on any other host it is reported;
  * in-flight migrations of the server are reported (Nova is still carrying them out).

With dry_run=True (`novamove recover --dry-run`) the same reads are made and each report says
what would be undone ("would re-enable ...", "would confirm ..."); nothing is written to the
cloud or the journal.
"""

from __future__ import annotations

import os
from typing import Optional

from novamove.engine import events
from novamove import errors
from novamove.engine.frame import RunFrame, mark_recovered
from novamove.engine.journal import Journal, run_alive
from novamove.engine.journal.leases import alive_elsewhere, still_running
from novamove.engine.poll import poll_until
from novamove.model import Service
from novamove.engine.services import restorable, restore_services


# How long recover waits for Nova to carry out a confirmation it asked for.
CONFIRM_SECONDS = 120.0

# Runs of single-server verbs (this module undoes them); drains have their own continuation.
MOVE_VERBS = {"migrate", "back", "abort", "force-complete", "confirm", "revert"}


def services_left_disabled(evs) -> list[Service]:
    """Services a run disabled (or may have: intent without outcome) and did not re-enable."""
    pending: dict[str, Service] = {}
    for e in evs:
        sid = e.data.get("service_id")
        if not sid:
            continue
        # A disable marked failed may still have been applied (the answer was lost): restore
        # checks the tag in the cloud before touching anything, so looking costs nothing.
        if e.kind == events.SERVICE_DISABLE and e.state in ("intent", "done", "failed"):
            pending[sid] = Service(id=sid, host=e.target or "?")
        elif e.kind == events.SERVICE_ENABLE and e.state == "done":
            pending.pop(sid, None)
    return list(pending.values())


def recover_run(cloud, journal: Journal, run: dict, *, confirm: bool = True, dry_run: bool = False) -> dict:
    run_id = run["id"]
    report: dict = {"run_id": run_id, "verb": run["verb"], "server": run.get("server_name"),
                    "status_before": run["status"], "services_enabled": [], "services_left": [],
                    "server_action": None, "in_flight": [], "notes": []}
    evs = journal.events(run_id)
    pending = services_left_disabled(evs)
    if pending and dry_run:
        report["services_enabled"] = restorable(cloud, run_id, pending, left=report["services_left"])
    elif pending:
        report["services_enabled"] = restore_services(cloud, journal, run_id, pending,
                                                      left=report["services_left"])
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
                if confirm and server.host == run.get("dest") and dry_run:
                    report["server_action"] = f"would confirm the resize of {server.name} on {server.host}"
                elif confirm and server.host == run.get("dest"):
                    try:
                        with journal.change(run_id, events.SERVER_CONFIRM, server_id, by="recover"):
                            cloud.confirm_resize(server_id)
                    except errors.NovamoveError as exc:
                        # A lost answer may hide a confirmation that went through: read back.
                        report["notes"].append(f"confirm: {exc}")
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
    enabled_words = "would re-enable" if dry_run else "re-enabled"
    summary = "; ".join(filter(None, [
        f"{enabled_words} {', '.join(report['services_enabled'])}" if report["services_enabled"] else None,
        f"left {', '.join(report['services_left'])} (changed by someone else)" if report["services_left"] else None,
        report["server_action"],
        f"in flight: {', '.join(report['in_flight'])}" if report["in_flight"] else None,
    ])) or "nothing to undo"
    if dry_run:
        report["summary"] = summary + " (dry run: nothing changed)"
        return report
    if server is not None and (report["in_flight"] or server.task_state):
        # Nova is still moving the server: what it ends in (VERIFY_RESIZE to confirm, say) is
        # not known yet, so the run stays unfinished for the next `recover`.
        summary += f"; {server.name} is still moving: run `novamove recover` again once it settles"
        report["summary"] = summary
        journal.update_run(run_id, status="interrupted", summary=f"recovering: {summary}")
        return report
    report["summary"] = summary
    mark_recovered(journal, run_id, f"recovered: {summary}")
    return report


def _settled(cloud, server_id: str, timeout: float = CONFIRM_SECONDS):
    """The server once Nova has carried out the confirmation (it is asynchronous)."""
    server, _ = poll_until(lambda: cloud.get_server(server_id), lambda s: s.status != "VERIFY_RESIZE",
                           timeout=timeout, interval=0.5)
    return server


def unsettled(journal: Journal, run: dict) -> bool:
    """Whether a finished run may have left a change behind: a service it disabled and did not
    re-enable, or a cold move it requested and neither confirmed nor reverted."""
    evs = journal.events(run["id"])
    if services_left_disabled(evs):
        return True
    if run["status"] != "failed":
        return False
    asked = any(e.kind == events.SERVER_MIGRATE and e.data.get("mode") == "cold" and e.state in ("done", "failed")
                for e in evs)
    settled = any(e.kind in (events.SERVER_CONFIRM, events.SERVER_REVERT) and e.state == "done" for e in evs)
    return asked and not settled


def _failed_campaigns_holding_hosts(cloud, journal: Journal) -> list[dict]:
    """Campaigns that ended failed while hosts they took out stay disabled under their tag: not
    over for the operator (`maintain --resume RUN` finishes them), so recover lists them."""
    failed = [r for r in journal.recent_final_runs({events.VERB_MAINTAIN}) if r["status"] == events.RUN_FAILED]
    if not failed:
        return []
    from novamove.engine.tags import reason_run_id
    held = {reason_run_id(s.disabled_reason) for s in cloud.list_compute_services() if not s.enabled}
    return [r for r in failed if r["id"] in held]


def recover(cloud, journal: Journal, run_id: Optional[str] = None, *, confirm: bool = True,
            break_lock: bool = False, runner_kwargs: Optional[dict] = None,
            dry_run: bool = False) -> list[dict]:
    """Finish or undo what runs left behind. Looks at every run that did not finish, at runs
    that finished with a change unsettled, and at the cloud itself: a compute disabled with a
    novamove isolation tag whose run is over (or whose process is gone) is re-enabled.
    `break_lock` with `run_id`: re-enable the services carrying that run's tag even though
    this journal does not know the run (it ran on another machine that is gone).
    `runner_kwargs` (clock, sleep, poll_interval) go to the runs a verb continues itself.
    `dry_run`: make the same reads, change nothing, say what would be undone."""
    if run_id:
        run = journal.get_run(run_id)
        if run is None and break_lock:
            return [_break_lock(cloud, journal, run_id, dry_run=dry_run)]
        if run is None:
            raise errors.NotFound(f"no run {run_id!r} in the journal {journal.path} (if it ran on "
                                  "another machine that is gone, add --break-lock)")
        runs = [run]
    else:
        runs = journal.unfinished_runs()
        runs += [r for r in journal.recent_final_runs(MOVE_VERBS) if unsettled(journal, r)]
        runs += _failed_campaigns_holding_hosts(cloud, journal)
    reports = []
    for run in runs:
        if alive_elsewhere(run):
            # Whatever its verb, a live run is its holder's: no rerun, --resume or recover
            # advice that would race it, only who holds it and until when.
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": run.get("server_name"),
                            "status_before": run["status"],
                            "summary": f"{run['verb']} {still_running(run)}; not touched"})
            continue
        if run["verb"] in ("evacuate", "unfence") and dry_run:
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": None,
                            "status_before": run["status"],
                            "summary": f"{run['verb']} of {run.get('source') or '?'} did not finish: "
                                       "`novamove recover` would continue it (rerun it as "
                                       f"`novamove {run['verb']} {run.get('source') or 'HOST'}` "
                                       "to see its plan with --dry-run)"})
            continue
        if run["verb"] in ("evacuate", "unfence"):      # novamove.engine.evacuate finishes its own
            from novamove.engine.evacuate import recover_run as recover_evacuation
            reports.append(recover_evacuation(cloud, journal, run, **(runner_kwargs or {})))
            continue
        if run["verb"] == "maintain":
            # Campaigns continue from their journal: hosts done are skipped, the rest resumed.
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": None,
                            "status_before": run["status"],
                            "summary": f"maintenance campaign over {run.get('source') or '?'} did not finish: "
                                       f"`novamove maintain --resume {run['id']}` continues it "
                                       f"(`novamove campaign status {run['id']}` shows each host)"})
            continue
        if run["verb"] == events.VERB_REBALANCE:       # its moves followed to their end, then closed
            from novamove.engine.batch.rebalance import recover_run as recover_rebalance
            reports.append(recover_rebalance(cloud, journal, run, dry_run=dry_run, **(runner_kwargs or {})))
            continue
        if run["verb"] == events.VERB_DOCTOR:
            reports.append(_doctor_left(journal, run, dry_run))
            continue
        if run["verb"] not in MOVE_VERBS:
            # Drains own their leftovers: rerunning the drain adopts them (and marks this run).
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": run.get("server_name"),
                            "status_before": run["status"],
                            "summary": f"{run['verb']} of {run.get('source') or '?'} did not finish: run "
                                       f"`novamove {run['verb']} {run.get('source') or 'HOST'}` again "
                                       "to continue it"})
            continue
        if not dry_run and not journal.take_over(run["id"]):
            # Its holder renewed the lease between our read and now (compare-and-swap lost): alive.
            now = journal.get_run(run["id"]) or run
            reports.append({"run_id": run["id"], "verb": run["verb"], "server": run.get("server_name"),
                            "status_before": run["status"], "summary": f"{still_running(now)}; not touched"})
            continue
        reports.append(recover_run(cloud, journal, run, confirm=confirm, dry_run=dry_run))
    if not run_id:
        reports.extend(_sweep_tags(cloud, journal, {r["run_id"] for r in reports}, dry_run=dry_run))
    return reports


def _doctor_left(journal: Journal, run: dict, dry_run: bool) -> dict:
    """An interrupted `novamove doctor --fix`: nothing to undo or continue here. Each repair was
    a one-shot change guarded by what the scan saw (a rerun scans afresh and judges again); one
    whose outcome was never written is named, and the next doctor's scan says whether it took."""
    report = {"run_id": run["id"], "verb": run["verb"], "server": None, "status_before": run["status"]}
    if run["status"] == events.RUN_RUNNING and run.get("pid") != os.getpid() and run_alive(run):
        report["summary"] = f"doctor --fix {still_running(run)}; not touched"
        return report
    open_ = [f"{e.kind} {e.target}" for e in journal.events(run["id"])
             if e.kind in events.DOCTOR_KINDS and e.state == "intent"]
    summary = ("doctor --fix did not finish: nothing to undo (its repairs are not continued; "
               + (f"the outcome of {', '.join(open_)} was never written; " if open_ else "")
               + "run `novamove doctor` to see what is left, `novamove doctor --fix [CLASS ...]` "
                 "to repair it)")
    if dry_run:
        report["summary"] = summary + " (dry run: nothing changed)"
        return report
    report["summary"] = summary
    mark_recovered(journal, run["id"], f"recovered: {summary}")
    return report


def _sweep_tags(cloud, journal: Journal, handled: set[str], dry_run: bool = False) -> list[dict]:
    """Computes the cloud shows disabled with a novamove isolation tag (not a drain's, which is
    maintenance on purpose) whose run is over: the journal lost track (a disable whose answer
    was lost, a run recovered by hand). A tag of a run this journal does not know is reported
    with the command that clears it."""
    from novamove.engine.tags import reason_run_id
    tagged: dict[str, list[Service]] = {}
    for svc in cloud.list_compute_services():
        run_id = None if svc.enabled else reason_run_id(svc.disabled_reason)
        if run_id and run_id not in handled and ": drain:" not in (svc.disabled_reason or "") \
                and ": evacuate:" not in (svc.disabled_reason or ""):      # a failed host: unfence's
            tagged.setdefault(run_id, []).append(svc)
    reports = []
    for run_id, services in sorted(tagged.items()):
        run = journal.get_run(run_id)
        names = ", ".join(sorted(s.host for s in services))
        base = {"run_id": run_id, "verb": run["verb"] if run else "?", "server": run.get("server_name") if run else None,
                "status_before": run["status"] if run else "unknown"}
        if run is None:
            reports.append(dict(base, summary=f"{names} disabled by novamove run {run_id}, which this journal "
                                              "does not know: run `novamove recover` where it ran, or "
                                              f"`novamove recover --run {run_id} --break-lock` if that "
                                              "machine is gone"))
            continue
        if run["status"] == "running" and run_alive(run) and run.get("pid") != os.getpid():
            continue            # its own run is still at work
        if dry_run:
            reports.append(dict(base, summary=f"would re-enable {names} (tagged by run {run_id}, which "
                                              "is over) (dry run: nothing changed)"))
            continue
        enabled = restore_services(cloud, journal, run_id, services)
        reports.append(dict(base, summary=f"re-enabled {', '.join(enabled)} (tagged by run {run_id}, "
                                          "which is over)" if enabled else f"left {names}"))
    return reports


def _break_lock(cloud, journal: Journal, run_id: str, dry_run: bool = False) -> dict:
    """Clear a foreign run's isolation tags, journaled under a run of its own."""
    from novamove.engine.tags import reason_run_id
    if dry_run:
        hosts = sorted(s.host for s in cloud.list_compute_services()
                       if not s.enabled and reason_run_id(s.disabled_reason) == run_id)
        return {"run_id": run_id, "verb": "recover", "server": None, "status_before": "unknown",
                "summary": (f"would break run {run_id}'s lock: would re-enable {', '.join(hosts)}"
                            if hosts else f"no compute carries run {run_id}'s tag")
                           + " (dry run: nothing changed)"}
    with RunFrame(journal, events.VERB_RECOVER, cloud=cloud, source=run_id, mode="break-lock") as frame:
        services = [s for s in cloud.list_compute_services()
                    if not s.enabled and reason_run_id(s.disabled_reason) == run_id]
        journal.note(frame.run_id, events.LOCK_BREAK, run_id, services=[s.host for s in services])
        enabled = []
        for svc in services:
            with journal.change(frame.run_id, events.SERVICE_ENABLE, svc.host, service_id=svc.id,
                                broke_lock_of=run_id):
                cloud.enable_service(svc)
            enabled.append(svc.host)
        summary = (f"broke run {run_id}'s lock: re-enabled {', '.join(enabled)}" if enabled
                   else f"no compute carries run {run_id}'s tag")
        frame.end(events.RUN_OK, summary=summary)
    return {"run_id": run_id, "verb": "recover", "server": None, "status_before": "unknown",
            "summary": summary}
