"""`maintain`: gather and plan, then run (or resume) a campaign in its run frame."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine.batch import drain as drains
from novamove.engine.campaign.planning import CampaignPlan
from novamove.engine.campaign.simulate import plan_campaign
from novamove.engine.campaign.intents import select_hosts
from novamove.engine.frame import RunFrame, new_run_id
from novamove.engine.journal import FINAL, run_alive
from novamove.engine.campaign.common import DONE, SKIPPED
from novamove.engine.campaign.common import EV_CAMPAIGN, EV_HOST, VERB
from novamove.engine.campaign.report import CampaignReport, HostResult, Options
from novamove.engine.campaign.runner import Campaign
from novamove.engine.campaign.status import campaign_runs, read_campaign


# ---------------------------------------------------------------------------------- gathering

def gather(cloud: Any, names: Sequence[str] = (), *, zone: Optional[str] = None,
           aggregate: Optional[str] = None, all_hosts: bool = False):
    """(hosts, selected host names, state of the selected hosts' servers and their group mates)."""
    hosts = cloud.compute_hosts(with_resources=True)
    agg = cloud.aggregate_hosts(aggregate) if aggregate is not None else None
    selected = select_hosts(hosts, names, zone=zone, aggregate_hosts=agg, all_hosts=all_hosts)
    state = drains.gather_state(cloud, selected, hosts)
    return hosts, selected, state


def plan(cloud: Any, names: Sequence[str] = (), *, zone: Optional[str] = None, aggregate: Optional[str] = None,
         all_hosts: bool = False, options: Optional[Options] = None, run_id: Optional[str] = None,
         move_seconds: Optional[float] = None, hook_seconds: Optional[float] = None) -> CampaignPlan:
    """The campaign's dry run (reads only)."""
    from novamove.engine.campaign import intents as cp
    o = options or Options()
    o.validate()
    _, selected, state = gather(cloud, names, zone=zone, aggregate=aggregate, all_hosts=all_hosts)
    return plan_campaign(state, selected, max_hosts=o.max_hosts, order=o.order, allow_skip=o.allow_skip,
                         allow_unmovable=o.allow_unmovable, move_back=o.move_back,
                         max_parallel=o.max_parallel, max_per_host=o.max_per_host,
                         move_seconds=move_seconds or cp.MOVE_SECONDS,
                         hook_seconds=hook_seconds if hook_seconds is not None else (
                             cp.HOOK_SECONDS if o.hook else 0.0),
                         gate_seconds=cp.GATE_SECONDS, run_id=run_id)


# ---------------------------------------------------------------------------------- the verb

def _key(hosts: Sequence[str]) -> str:
    return ",".join(sorted(hosts))


def _unfinished_campaign(journal: Any, hosts: Sequence[str]) -> Optional[dict]:
    key = _key(hosts)
    for r in campaign_runs(journal):
        if r["source"] == key and r["status"] not in FINAL:
            return r
        if r["source"] == key:
            return None             # the latest campaign over these hosts ended
    return None


def run_campaign(cloud: Any, journal: Any, hosts: Sequence[str] = (), *, zone: Optional[str] = None,
                 aggregate: Optional[str] = None, all_hosts: bool = False, options: Optional[Options] = None,
                 dry_run: bool = False, resume: Optional[str] = None, rerun_hooks: bool = False,
                 hook_done: bool = False, on_interrupt: str = "finish",
                 progress: Optional[Callable[[str], None]] = None,
                 on_update: Optional[Callable[[Campaign], None]] = None,
                 move_seconds: Optional[float] = None, hook_seconds: Optional[float] = None) -> CampaignReport:
    """Plan, check (N+K), then run a campaign; or continue one (`resume`, or the same hosts
    again after a kill). Bad input and a refused plan raise before anything changes."""
    say = progress or (lambda line: None)
    t0 = time.monotonic()
    requests0 = getattr(getattr(cloud, "requests", None), "count", 0)
    if rerun_hooks and hook_done:
        raise errors.UsageError("give --rerun-hook or --hook-done, not both (run the hook again, or take it as done)")
    if on_interrupt not in drains.ON_INTERRUPT:
        raise errors.UsageError(f"on_interrupt must be one of {', '.join(drains.ON_INTERRUPT)}")
    prior: dict = {}
    run: Optional[dict] = None
    if resume:
        run, setup, prior = read_campaign(journal, resume)
        if run["status"] in FINAL and run["status"] != "failed":
            raise errors.PreconditionFailed(f"campaign {run['id']} already ended ({run['status']}): nothing to resume")
        options = Options.from_dict(setup.get("options", {}))
        hosts = setup.get("hosts") or []
        zone = aggregate = None
        all_hosts = False
    o = options or Options()
    o.validate()
    if not dry_run and not resume and not hosts and not (zone or aggregate or all_hosts):
        raise errors.UsageError("name the hosts to maintain, or select them with --zone, --aggregate or --all")
    cloud_hosts, selected, state = gather(cloud, hosts, zone=zone, aggregate=aggregate, all_hosts=all_hosts)
    if run is None and not dry_run:
        found = _unfinished_campaign(journal, selected)
        if found is not None:
            run, setup, prior = read_campaign(journal, found["id"])
            say(f"continuing campaign {found['id']} over the same hosts (it did not finish)")
    if run is not None:
        # Read it again now: another process may have run (and ended) it while this one
        # gathered; judged on the first read, a host it returned meanwhile would go out twice.
        run, _, prior = read_campaign(journal, run["id"])
        if resume and run["status"] in FINAL and run["status"] != "failed":
            raise errors.PreconditionFailed(f"campaign {run['id']} already ended ({run['status']}): nothing to resume")
        if run["status"] == "running" and run.get("pid") != os.getpid() and run_alive(run):
            raise errors.PreconditionFailed(f"campaign {run['id']} is still running (pid {run['pid']}); "
                                            "wait for it or stop it first")
        unfinished = [h for h, p in prior.items() if p.get("hook") == "running" and p.get("outcome") != DONE]
        for h in unfinished:
            pid = prior[h].get("hook_pid")
            if pid and run_alive({"pid": pid, "process": prior[h].get("hook_process")}):
                raise errors.PreconditionFailed(
                    f"the hook on {h} of campaign {run['id']} is still running (pid {pid}, its own process "
                    f"group): wait for it to end, or stop it (`kill -- -{pid}`), then resume; nothing changed")
        if unfinished and not (rerun_hooks or hook_done):
            h = unfinished[0]
            raise errors.PreconditionFailed(
                f"the hook on {h} (started {prior[h].get('hook_started')}, log {prior[h].get('log')}) did not end "
                f"when campaign {run['id']} stopped; check the host, then `novamove maintain --resume {run['id']} "
                "--rerun-hook` to run it again, or `--hook-done` if it did its work")
    run_id = run["id"] if run is not None else new_run_id()
    cplan = plan_campaign(state, selected, max_hosts=o.max_hosts, order=o.order, allow_skip=o.allow_skip,
                          allow_unmovable=o.allow_unmovable, move_back=o.move_back, max_parallel=o.max_parallel,
                          max_per_host=o.max_per_host, run_id=run_id if run is not None else None,
                          **({"move_seconds": move_seconds} if move_seconds else {}),
                          **({"hook_seconds": hook_seconds} if hook_seconds is not None else
                             ({} if o.hook else {"hook_seconds": 0.0})))
    report = CampaignReport(run_id if not dry_run else None, list(cplan.hosts) + [h.name for h in cplan.not_serviced],
                            dry_run=dry_run, plan=cplan, resumed=run is not None)
    if dry_run:
        report.elapsed_seconds = time.monotonic() - t0
        return report
    pending = [h for h in cplan.hosts if prior.get(h, {}).get("outcome") != DONE]
    if not cplan.ok and pending:
        raise errors.NoCapacity(f"campaign refused (N+K), nothing changed: {cplan.problems[0]}")
    frame = RunFrame(journal, VERB, cloud=cloud, run_id=run_id, report=report, t0=t0, requests0=requests0,
                     resume=run is not None, interrupt_error="left by a second Ctrl-C with hosts in flight",
                     source=_key(selected), mode=f"max-hosts {o.max_hosts}", strategy="campaign")
    with frame:
        if run is None:
            journal.note(run_id, EV_CAMPAIGN, None, options=o.to_dict(), hosts=selected, order=cplan.hosts,
                         not_serviced={p.name: p.why_not for p in cplan.not_serviced})
        else:
            say(f"resuming campaign {run_id}")
        hypervisors = {h.name: h.hypervisor_hostname for h in cloud_hosts}
        camp = Campaign(cloud, journal, run_id, cplan.hosts, o, hypervisors=hypervisors, say=say,
                        on_update=on_update, on_interrupt=on_interrupt, prior=prior, rerun_hooks=rerun_hooks,
                        hook_done=hook_done, cloud_hosts=cloud_hosts)
        camp.servers_total = 0
        for p in cplan.not_serviced:
            camp.results[p.name] = HostResult(p.name, SKIPPED, detail=p.why_not)
        report.results = [camp.results[h] for h in report.hosts]
        try:
            try:
                camp.run()
            finally:
                _fill(report, camp)
        except errors.NovamoveError as exc:
            raise type(exc)(f"{exc}; the campaign stopped: `novamove maintain --resume {run_id}` continues it") from exc
        for p in cplan.not_serviced:
            journal.note(run_id, EV_HOST, p.name, outcome=SKIPPED, detail=p.why_not)
    return report


def _fill(report: CampaignReport, camp: Campaign) -> None:
    report.results = [camp.results[h] for h in report.hosts]
    report.interrupted = report.interrupted or camp.interrupted
    report.stopped_by = camp.stopped_by
    report.peak_out = camp.peak_out
    report.peak_group = camp.peak_group
    report.changed = camp.changed

