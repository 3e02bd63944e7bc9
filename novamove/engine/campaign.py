"""Rolling maintenance campaigns: `novamove maintain` empties, services and returns many compute
hosts in turn, at most K out of service at once.

    report = run_campaign(cloud, journal, ["c1", "c2", "c3"], hook="ssh {host} reboot", max_hosts=2)

Per host (each change journaled before it is made, under the campaign's run id):
  disable (tagged `novamove:<run>: drain: maintain ...`, so undrain/recover know it)
  -> drain (novamove.engine.drain.drain: honest, the host's stage fails with what is left)
  -> power off the servers tagged `novamove:maintenance=stop`
  -> hook (NOVAMOVE_HOST, NOVAMOVE_HYPERVISOR, NOVAMOVE_RUN_ID; own timeout; log file per host)
  -> gate (nova-compute up, not forced down, reporting after the hook ended; then --check)
  -> start the stopped servers -> enable (only if our tag is still there) -> move back (asked).

Scheduling: one drain at a time (so the drain caps, global / per source / per destination,
hold across every host in flight), while hooks and gates of up to K hosts overlap with the next
drains. Before a host is taken out, its servers are planned against the cloud as it is now
(the other hosts out are disabled there): N+K. If they do not fit, the campaign waits for a
host in flight to come back, or refuses the host with the numbers when none is in flight.
Server groups: at most `group_budget` members of one group moving or powered off at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine import events
from novamove.engine.poll import poll_until
from novamove.engine.runner import install_stop_signals
from novamove.engine import drain as drains
from novamove.engine.commands import command_env, run_in_group, validate_command
from novamove.engine.campaign_plan import (COLD, LIVE, SKIP, STOP, CampaignPlan, campaign_owns, intents_of,
                                           plan_campaign, select_hosts)
from novamove.engine.journal import FINAL, pid_alive
from novamove.model import Service
from novamove.planner import CloudState, move_mode, plan_drain
from novamove.strategies.isolate import reason_run_id, tagged_reason

VERB = events.VERB_MAINTAIN

EV_CAMPAIGN = events.MAINTAIN_CAMPAIGN
EV_HOST = events.MAINTAIN_HOST
EV_DISABLE = events.MAINTAIN_DISABLE
EV_DRAIN = events.MAINTAIN_DRAIN
EV_STOP = events.MAINTAIN_STOP
EV_HOOK = events.MAINTAIN_HOOK
EV_GATE = events.MAINTAIN_GATE
EV_CHECK = events.MAINTAIN_CHECK
EV_START = events.MAINTAIN_START
EV_ENABLE = events.MAINTAIN_ENABLE
EV_REASON = events.MAINTAIN_REASON
EV_BACK = events.MAINTAIN_BACK

# Host outcomes.
DONE, FAILED, SKIPPED, REFUSED = events.HOST_DONE, events.HOST_FAILED, events.HOST_SKIPPED, events.HOST_REFUSED
NOT_STARTED, INTERRUPTED = events.HOST_NOT_STARTED, events.HOST_INTERRUPTED

HOOK_TIMEOUT = 3600.0
GATE_TIMEOUT = 900.0
CHECK_TIMEOUT = 600.0
POWER_TIMEOUT = 300.0
POLL = 1.0
RECHECK = 10.0       # a host waiting for capacity or group budget is checked again this often


def reason_text(run_id: str, what: str) -> str:
    """The disabled reason a campaign writes: tagged with its run, and a drain reason so that
    `novamove undrain HOST` (with or without --move-back) can always give the host back."""
    return tagged_reason(run_id, f"drain: maintain: {what}")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _parse(ts: Optional[str]) -> Optional[datetime]:
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


# ---------------------------------------------------------------------------------- results

@dataclass
class HostResult:
    host: str
    outcome: str = NOT_STARTED
    stage: str = ""                   # last stage reached
    moved: int = 0
    left: list = field(default_factory=list)
    stopped: list = field(default_factory=list)     # server names powered off for the hook
    hook_exit: Optional[int] = None
    hook_seconds: float = 0.0
    gate: str = ""
    check_exit: Optional[int] = None
    moved_back: int = 0
    seconds: float = 0.0
    detail: str = ""
    log: Optional[str] = None
    drain_run: Optional[str] = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 1)
        d["hook_seconds"] = round(self.hook_seconds, 1)
        return d


@dataclass
class CampaignReport:
    run_id: Optional[str]
    hosts: list[str]
    dry_run: bool = False
    plan: Optional[CampaignPlan] = None
    results: list[HostResult] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: str = ""              # why no new host was started (stop-loss, interrupt)
    peak_out: int = 0                 # most hosts out of service at once
    peak_group: int = 0               # most members of one group disrupted at once
    changed: bool = False
    elapsed_seconds: float = 0.0
    api_requests: int = 0
    resumed: bool = False

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    @property
    def ok(self) -> bool:
        if self.dry_run:
            return bool(self.plan and self.plan.ok)
        return bool(self.results) and all(r.outcome == DONE for r in self.results) and not self.interrupted

    @property
    def exit_code(self) -> int:
        if self.dry_run:
            return errors.EXIT_OK if self.plan and self.plan.ok else errors.EXIT_PRECONDITION
        if self.interrupted:
            return errors.EXIT_INTERRUPTED
        if self.count(FAILED):
            return errors.EXIT_FAILED
        if self.count(REFUSED):
            return errors.EXIT_PRECONDITION
        return errors.EXIT_OK if self.ok else errors.EXIT_INCOMPLETE

    @property
    def summary(self) -> str:
        if self.dry_run:
            p = self.plan
            if p is None:
                return "maintain: nothing planned"
            moves = sum(len(s.moves) for s in p.stages)
            head = (f"maintain plan: {len(p.hosts)} host(s) in {len(p.stages)} stage(s) of at most "
                    f"{p.max_hosts}, {moves} move(s), about {_duration(p.estimate_seconds)}")
            if p.not_serviced:
                head += f", {len(p.not_serviced)} not serviced"
            if not p.ok:
                head += f"; REFUSED: {p.problems[0]}"
            return head + " (dry run: nothing changed)"
        parts = [f"{self.count(DONE)}/{len(self.results)} host(s) done"]
        for label in (FAILED, REFUSED, SKIPPED, INTERRUPTED, NOT_STARTED):
            if self.count(label):
                parts.append(f"{self.count(label)} {label}")
        parts.append(f"{sum(r.moved for r in self.results)} server(s) moved")
        if self.stopped_by:
            parts.append(f"stopped: {self.stopped_by}")
        head = "interrupted: " if self.interrupted else ""
        return f"{head}maintain: " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "verb": VERB, "run_id": self.run_id, "hosts": self.hosts, "dry_run": self.dry_run,
            "ok": self.ok, "changed": self.changed, "exit_code": self.exit_code, "summary": self.summary,
            "interrupted": self.interrupted, "stopped_by": self.stopped_by, "peak_out": self.peak_out,
            "peak_group": self.peak_group, "resumed": self.resumed,
            "elapsed_seconds": round(self.elapsed_seconds, 1), "api_requests": self.api_requests,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "results": [r.to_dict() for r in self.results],
        }


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# ---------------------------------------------------------------------------------- options

@dataclass
class Options:
    hook: Optional[str] = None
    check: Optional[str] = None
    max_hosts: int = 1
    max_failed_hosts: int = 1
    group_budget: int = 1
    order: str = "fewest"
    move_back: bool = False
    allow_skip: bool = False
    allow_unmovable: bool = False
    hook_timeout: float = HOOK_TIMEOUT
    gate_timeout: float = GATE_TIMEOUT
    check_timeout: float = CHECK_TIMEOUT
    max_parallel: int = 4
    max_per_host: int = 2
    step_timeout: float = 1800.0
    poll_interval: float = drains.POLL_INTERVAL
    reason: Optional[str] = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Options":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        import math
        for name in ("max_hosts", "max_failed_hosts", "group_budget", "max_parallel", "max_per_host"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise errors.UsageError(f"{name.replace('_', '-')} must be a whole number of at least 1, not {v!r}")
        for name in ("hook_timeout", "gate_timeout", "check_timeout", "step_timeout", "poll_interval"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise errors.UsageError(f"{name.replace('_', '-')} must be a positive number of seconds, not {v!r}")
        for name in ("hook", "check"):
            validate_command(getattr(self, name), f"--{name}")


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
    from novamove.engine import campaign_plan as cp
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


# ---------------------------------------------------------------------------------- the runner

@dataclass
class _Out:
    """A host out of service, past its drain."""
    host: str
    result: HostResult
    t0: float
    phase: str = "hook"               # hook | gate | check | return | done
    proc: Optional[subprocess.Popen] = None
    hook_started: Optional[datetime] = None
    hook_ended: Optional[datetime] = None
    hook_t0: float = 0.0
    hook_event: Optional[int] = None
    gate_t0: float = 0.0
    stopped_ids: list = field(default_factory=list)
    log_fh: Any = None


class Campaign:
    def __init__(self, cloud: Any, journal: Any, run_id: str, hosts: Sequence[str], options: Options, *,
                 hypervisors: Optional[dict] = None, say: Optional[Callable[[str], None]] = None,
                 on_update: Optional[Callable[["Campaign"], None]] = None, on_interrupt: str = "finish",
                 prior: Optional[dict] = None, rerun_hooks: bool = False, hook_done: bool = False,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.cloud, self.journal, self.run_id = cloud, journal, run_id
        self.hosts = list(hosts)
        self.o = options
        self.hypervisors = hypervisors or {}
        self.say = say or (lambda line: None)
        self.on_update = on_update or (lambda c: None)
        self.on_interrupt = on_interrupt
        self.prior = prior or {}
        self.rerun_hooks, self.hook_done = rerun_hooks, hook_done
        self.clock, self.sleep = clock, sleep
        self.results: dict[str, HostResult] = {h: HostResult(h) for h in self.hosts}
        self.queue: list[str] = []
        self.out: dict[str, _Out] = {}
        self.failed_out: set[str] = set()      # failed hosts left disabled: still out of service
        self.stop_requested = False
        self.stopped_by = ""
        self.interrupted = False
        self.changed = False
        self.peak_out = 0
        self.peak_group = 0
        self.disrupted: dict[str, set[str]] = {}    # group id -> member ids powered off now
        self.servers_total = 0
        self.servers_done = 0
        self.current = ""                           # the host being drained
        self.rundir = Path(getattr(journal, "path", Path.cwd() / "journal")).parent / "runs" / run_id
        self.t0 = clock()
        self._recheck_at = 0.0

    # -------------------------------------------------------------- helpers

    def _note_host(self, host: str, outcome: str, detail: str = "") -> None:
        r = self.results[host]
        r.outcome, r.detail = outcome, detail or r.detail
        self.journal.note(self.run_id, EV_HOST, host, outcome=outcome, detail=r.detail)
        self.say(f"{host}: {outcome}" + (f": {r.detail}" if r.detail else ""))
        self.on_update(self)

    def _service(self, host: str) -> Service:
        for s in self.cloud.list_compute_services():
            if s.host == host:
                return s
        raise errors.NotFound(f"no nova-compute service on {host!r}")

    def _env(self, host: str) -> dict:
        return command_env({"NOVAMOVE_HOST": host, "NOVAMOVE_HYPERVISOR": self.hypervisors.get(host) or host,
                            "NOVAMOVE_RUN_ID": self.run_id})

    def _tick(self) -> None:
        """Follow the hooks that run (also called from inside a drain's waits)."""
        for o in list(self.out.values()):
            if o.phase == "hook" and o.proc is not None:
                self._poll_hook(o)
        self.on_update(self)

    def _tick_sleep(self, seconds: float) -> None:
        self._tick()
        self.sleep(seconds)

    @property
    def out_count(self) -> int:
        # Failed hosts left disabled are not counted: the N+K check sees them out of service.
        return len(self.out) + (1 if self.current else 0)

    # -------------------------------------------------------------- signals

    def _install_signals(self) -> Callable[[], None]:
        def on_signal(signum, frame):
            if self.stop_requested and self.interrupted:
                raise KeyboardInterrupt
            self.request_stop("interrupted")
        return install_stop_signals(on_signal)

    def request_stop(self, why: str) -> None:
        if why == "interrupted":
            self.interrupted = True
        if not self.stop_requested:
            self.stop_requested = True
            self.stopped_by = self.stopped_by or why
            self.say(f"{why}: starting no new host; finishing the {len(self.out)} host(s) in flight "
                     "(Ctrl-C again to leave now)")

    # -------------------------------------------------------------- the loop

    def run(self) -> list[HostResult]:
        for h in self.hosts:
            p = self.prior.get(h, {})
            if p.get("outcome") == DONE:
                self.results[h].outcome = DONE
                self.results[h].detail = "done by an earlier part of this run"
                continue
            self.queue.append(h)
        # Hosts an earlier part of this run took out of service (still disabled by it) go
        # first: they are out already, and K counts them.
        held = [h for h in self.queue if self.prior.get(h, {}).get("disabled")
                and not self.prior.get(h, {}).get("enabled")]
        self.queue = held + [h for h in self.queue if h not in held]
        restore = self._install_signals()
        waiting_note = ""
        try:
            while self.queue or self.out:
                self._tick()
                progressed = False
                for o in list(self.out.values()):
                    progressed = self._advance(o) or progressed
                if self.queue and not self.stop_requested:
                    failed = self.count_failed()
                    if failed >= self.o.max_failed_hosts:
                        self.request_stop(f"stop-loss: {failed} host(s) failed (--max-failed-hosts "
                                          f"{self.o.max_failed_hosts})")
                if (self.queue and not self.stop_requested and self.out_count < self.o.max_hosts
                        and (progressed or self.clock() >= self._recheck_at)):
                    host = self.queue[0]
                    verdict, why, caps = self._can_start(host)
                    if verdict == "go":
                        self.queue.pop(0)
                        self._take_out(host, caps)
                        progressed = True
                        waiting_note = ""
                    elif verdict == "skipped":
                        progressed = True
                    elif verdict == "refuse":
                        self.queue.pop(0)
                        self._note_host(host, REFUSED, why)
                        self.request_stop(f"{host} refused")
                        progressed = True
                    else:
                        self._recheck_at = self.clock() + RECHECK
                        if why != waiting_note:
                            self.say(f"{host} waits: {why}")
                            waiting_note = why
                if self.stop_requested and self.queue:
                    for h in self.queue:
                        self.results[h].outcome = NOT_STARTED
                        self.results[h].detail = f"not started ({self.stopped_by})"
                    self.queue = []
                self.peak_out = max(self.peak_out, self.out_count)
                if not progressed and (self.queue or self.out):
                    self.sleep(POLL)
        except KeyboardInterrupt:
            self.interrupted = True
            if self.current:
                r = self.results[self.current]
                r.outcome = INTERRUPTED
                r.detail = (f"left while draining (disabled, moves maybe in flight): "
                            f"`novamove maintain --resume {self.run_id}` continues it")
            for o in self.out.values():
                r = o.result
                r.outcome = INTERRUPTED
                r.detail = (f"left {o.phase}" + (" (its hook is still running, pid "
                                                   f"{o.proc.pid})" if o.proc and o.proc.poll() is None else "")
                            + f": `novamove maintain --resume {self.run_id}` continues it")
            raise
        finally:
            restore()
        return [self.results[h] for h in self.hosts]

    def count_failed(self) -> int:
        return sum(r.outcome == FAILED for r in self.results.values())

    # -------------------------------------------------------------- admission: N+K and group budget

    def _can_start(self, host: str) -> tuple[str, str, dict]:
        """("go", "", drain caps) | ("wait", why, {}) | ("refuse", why, {})."""
        hosts = self.cloud.compute_hosts(with_resources=True)
        state = drains.gather_state(self.cloud, [host], hosts)
        on_host = [s for s in state.servers if s.host == host]
        intents, problems = intents_of(on_host)
        for p in problems:
            self.say(f"{host}: {p}")
        cplan = plan_campaign(state, [host], max_hosts=1, intents=intents, allow_skip=self.o.allow_skip,
                              allow_unmovable=self.o.allow_unmovable, run_id=self.run_id,
                              max_parallel=self.o.max_parallel, max_per_host=self.o.max_per_host)
        hp = cplan.host_plans[host]
        if not hp.serviced:
            self.queue.pop(0)
            self._note_host(host, SKIPPED, hp.why_not)
            return "skipped", hp.why_not, {}
        stage = cplan.stages[0]
        if not stage.ok:
            if self.out:
                return "wait", f"N+K: {stage.problem}", {}
            return "refuse", f"N+K: {stage.problem}", {}
        # Server groups: members moving off this host, or powered off on it, within the budget.
        caps = {"max_parallel": self.o.max_parallel}
        stop_ids = {sid for sid, i in intents.items() if i == STOP}
        for g in state.groups:
            members_here = [m for m in g.members if any(s.id == m for s in on_host)]
            if not members_here:
                continue
            busy = len(self.disrupted.get(g.id, ()))
            left = self.o.group_budget - busy
            stops = [m for m in members_here if m in stop_ids]
            movers = [m for m in members_here if m not in stop_ids and intents.get(m) != SKIP]
            if len(stops) > self.o.group_budget:
                return "refuse", (f"server group {g.name or g.id}: {len(stops)} members tagged stop on {host}, "
                                  f"more than --group-budget {self.o.group_budget}"), {}
            if (stops or movers) and left < 1 or len(stops) > left:
                if self.out:
                    return "wait", f"server group {g.name or g.id}: {busy} member(s) already powered off", {}
                return "refuse", f"server group {g.name or g.id}: budget {self.o.group_budget} used", {}
            if len(movers) > 1:
                caps["max_parallel"] = max(1, min(caps["max_parallel"], left))
        # Destinations the campaign will not empty again, when they can take everything (a
        # server moved onto a host still to be serviced would move twice).
        later = set(self.queue[1:])
        targets = [h.name for h in hosts if h.name not in later and h.name != host]
        if later and targets:
            leave = {sid for sid, i in intents.items() if i in (STOP, SKIP)}
            sub = CloudState(state.hosts, [s for s in state.servers if s.id not in leave], state.groups)
            trial = plan_drain(sub, [host], targets=targets)
            if not any(move_mode(s, "auto")[1] is None for s in on_host
                       if s.id in {st.server_id for st in trial.skipped}):
                caps["targets"] = targets
        caps["intents"] = intents
        caps["moves"] = hp.moves
        return "go", "", caps

    # -------------------------------------------------------------- taking a host out

    def _take_out(self, host: str, caps: dict) -> None:
        r = self.results[host]
        t0 = self.clock()
        intents: dict[str, str] = caps.get("intents", {})
        prior = self.prior.get(host, {})
        self.current = host
        self.servers_total += caps.get("moves", 0)
        self.on_update(self)
        try:
            # 1. disable, tagged (ours already: a resumed run)
            svc = self._service(host)
            if svc.enabled:
                reason = reason_text(self.run_id, self.o.reason or "draining")
                with self.journal.change(self.run_id, EV_DISABLE, host, service_id=svc.id, reason=reason):
                    self.cloud.disable_service(svc, reason)
                self.changed = True
                self.say(f"{host}: disabled ({reason})")
            elif not campaign_owns(svc.disabled_reason, self.run_id):
                self.current = ""
                self._note_host(host, SKIPPED, f"disabled by someone else meanwhile ({svc.disabled_reason})")
                return
            r.stage = "drain"
            # 2. drain: honest; stop/skip servers stay, live/cold honoured
            keep = {sid: f"maintenance intent {i}" for sid, i in intents.items() if i in (STOP, SKIP)}
            modes = {sid: i for sid, i in intents.items() if i in (LIVE, COLD)}

            def drain_say(line: str) -> None:
                if ": moved (" in line:
                    self.servers_done += 1
                    self.on_update(self)
                self.say(f"{host}: {line}")
            rep = drains.drain(self.cloud, host, journal=self.journal, targets=caps.get("targets", ()),
                               reason=f"maintain {self.run_id}", max_parallel=caps.get("max_parallel", self.o.max_parallel),
                               max_per_host=self.o.max_per_host, on_interrupt=self.on_interrupt,
                               poll_interval=self.o.poll_interval, step_timeout=self.o.step_timeout,
                               allow_unmovable=self.o.allow_unmovable, progress=drain_say, keep=keep,
                               modes=modes, sleep=self._tick_sleep)
            r.drain_run = rep.run_id
            self._take_back_tag(host, rep.run_id)
            r.moved += rep.count(drains.MOVED)
            r.left = [x for x in rep.left if not x.get("accepted")]
            self.changed = self.changed or rep.changed
            self.journal.note(self.run_id, EV_DRAIN, host, drain_run=rep.run_id, ok=rep.ok,
                              summary=rep.summary, left=rep.left)
            if rep.interrupted:
                self.request_stop("interrupted")
                self.current = ""
                self._give_back(host, r, INTERRUPTED, "drain interrupted before the host was empty")
                return
            if not rep.ok:
                self.current = ""
                names = ", ".join(x["name"] for x in r.left[:3])
                self._fail(host, r, "drain", f"drain did not empty it ({rep.summary})"
                           + (f"; left: {names}" if names else ""))
                return
            # 3. power off the servers that stay (stop intent), group budget counted
            o = _Out(host, r, t0)
            for s in self.cloud.list_servers_on_host(host):
                if intents.get(s.id) == STOP:
                    for g in s.server_groups:
                        self.disrupted.setdefault(g, set()).add(s.id)
                    self.peak_group = max([self.peak_group] + [len(v) for v in self.disrupted.values()])
                    if s.status == "SHUTOFF":
                        if not any(x.get("id") == s.id for x in prior.get("stopped", [])):
                            continue           # was off already: not ours to start again
                        o.stopped_ids.append(s.id)      # this run powered it off before a kill
                        r.stopped.append(s.name)
                    else:
                        o.stopped_ids.append(s.id)
                        r.stopped.append(s.name)
                        r.stage = "stop"
                        with self.journal.change(self.run_id, EV_STOP, s.id, host=host, name=s.name):
                            self.cloud.stop_server(s.id)
                        self._wait_status(s.id, "SHUTOFF")
                        self.changed = True
                        self.say(f"{host}: {s.name} powered off for the hook")
            self.current = ""
            self.out[host] = o
            self.peak_out = max(self.peak_out, self.out_count)
            # 4. the hook (skipped when an earlier part of the run saw it through)
            if prior.get("hook") == "done" and not self.rerun_hooks:
                o.hook_started = _parse(prior.get("hook_started"))
                o.hook_ended = _parse(prior.get("hook_ended")) or o.hook_started
                r.hook_exit = 0
                o.phase = "gate"
                o.gate_t0 = self.clock()
                self.say(f"{host}: hook already done by this run; gating")
            elif prior.get("hook") == "running" and self.hook_done and not self.rerun_hooks:
                o.hook_started = _parse(prior.get("hook_started"))
                o.hook_ended = o.hook_started
                o.phase = "gate"
                o.gate_t0 = self.clock()
                self.say(f"{host}: hook of the killed run taken as done (--hook-done); gating")
            else:
                self._start_hook(o)
            self.on_update(self)
        except BaseException:
            self.current = ""
            raise

    def _wait_status(self, server_id: str, status: str) -> None:
        s, _ = poll_until(lambda: self.cloud.get_server(server_id),
                          lambda s: (s.status == status and not s.task_state) or s.status == "ERROR",
                          timeout=POWER_TIMEOUT, interval=POLL, clock=self.clock, sleep=self._tick_sleep)
        if s.status != status or s.task_state:
            raise errors.Timeout(f"{s.name} did not become {status} (it is {s.status}"
                                 f"{', ' + s.task_state if s.task_state else ''})")

    # -------------------------------------------------------------- hook, gate, check, return

    def _start_hook(self, o: _Out) -> None:
        r = o.result
        if not self.o.hook:
            o.hook_started = o.hook_ended = _utcnow()
            o.phase = "gate"
            o.gate_t0 = self.clock()
            return
        self.rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.rundir / f"{o.host}.hook.log"
        r.log = str(log)
        r.stage = "hook"
        o.hook_started = _utcnow()
        o.log_fh = open(log, "ab")
        o.log_fh.write(f"# {o.hook_started.isoformat()} UTC: {self.o.hook}\n".encode())
        o.log_fh.flush()
        # The intent stays open while the hook runs: a run killed now leaves a hook whose end
        # nobody saw (reported on resume, rerun only when the operator says so).
        with self.journal.change(self.run_id, EV_HOOK, o.host, keep_open=True, command=self.o.hook,
                                 log=str(log), started=o.hook_started.isoformat()) as change:
            o.hook_event = change.id
            # Its own session: a Ctrl-C meant for novamove does not cut a reboot in half.
            o.proc = subprocess.Popen(self.o.hook, shell=True, env=self._env(o.host), stdout=o.log_fh,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        o.hook_t0 = self.clock()
        self.changed = True
        self.say(f"{o.host}: hook started (pid {o.proc.pid}, log {log})")

    def _poll_hook(self, o: _Out) -> None:
        code = o.proc.poll()
        r = o.result
        if code is None:
            if self.clock() - o.hook_t0 > self.o.hook_timeout:
                try:
                    os.killpg(o.proc.pid, signal.SIGTERM)
                    o.proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(o.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    o.proc.wait()
                r.hook_exit = o.proc.returncode
                r.hook_seconds = self.clock() - o.hook_t0
                self.journal.failed(o.hook_event, exit=r.hook_exit, timeout=True)
                o.proc = None
                o.log_fh.close()
                o.phase = "failed"
                self._fail(o.host, r, "hook", f"hook timed out after {self.o.hook_timeout:.0f} s (killed)",
                           log=r.log)
            return
        o.hook_ended = _utcnow()
        r.hook_exit = code
        r.hook_seconds = self.clock() - o.hook_t0
        o.log_fh.close()
        o.proc = None
        if code == 0:
            self.journal.done(o.hook_event, exit=0, ended=o.hook_ended.isoformat())
            self.say(f"{o.host}: hook done in {r.hook_seconds:.0f} s")
            o.phase = "gate"
            o.gate_t0 = self.clock()
            r.stage = "gate"
        else:
            self.journal.failed(o.hook_event, exit=code, ended=o.hook_ended.isoformat())
            o.phase = "failed"
            self._fail(o.host, r, "hook", f"hook exited {code} after {r.hook_seconds:.0f} s", log=r.log)
        self.on_update(self)

    def _advance(self, o: _Out) -> bool:
        r = o.result
        if o.phase == "gate":
            svc = self._service(o.host)
            reported = _parse(svc.updated_at)
            since = o.hook_ended or o.hook_started
            if svc.up and not svc.forced_down and reported is not None and since is not None and reported > since:
                r.gate = f"up, reported {svc.updated_at}"
                self.journal.note(self.run_id, EV_GATE, o.host, ok=True, updated_at=svc.updated_at,
                                  since=since.isoformat())
                self.say(f"{o.host}: gate passed (nova-compute up, reported {svc.updated_at})")
                o.phase = "check" if self.o.check else "return"
                return True
            if self.clock() - o.gate_t0 > self.o.gate_timeout:
                r.gate = f"{svc.state}{' forced down' if svc.forced_down else ''}, last report {svc.updated_at}"
                self.journal.note(self.run_id, EV_GATE, o.host, ok=False, state=svc.state,
                                  forced_down=svc.forced_down, updated_at=svc.updated_at)
                o.phase = "failed"
                self._fail(o.host, r, "gate", f"nova-compute not back up within {self.o.gate_timeout:.0f} s "
                                              f"after the hook ({r.gate})")
                return True
            return False
        if o.phase == "check":
            r.stage = "check"
            self.rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = self.rundir / f"{o.host}.check.log"
            with open(log, "ab") as fh:
                # Its own process group, killed whole on timeout (not only the shell).
                code = run_in_group(self.o.check, self._env(o.host), self.o.check_timeout,
                                       stdout=fh, stderr=subprocess.STDOUT)
                r.check_exit = -1 if code is None else code
            self.journal.note(self.run_id, EV_CHECK, o.host, exit=r.check_exit, log=str(log))
            if r.check_exit != 0:
                o.phase = "failed"
                self._fail(o.host, r, "check", f"--check exited {r.check_exit}", log=str(log))
                return True
            o.phase = "return"
            return True
        if o.phase == "return":
            self._return(o)
            return True
        return False

    def _return(self, o: _Out) -> None:
        r = o.result
        host = o.host
        r.stage = "return"
        for sid in o.stopped_ids:
            s = self.cloud.get_server(sid)
            if s.status == "SHUTOFF":
                with self.journal.change(self.run_id, EV_START, sid, host=host, name=s.name):
                    self.cloud.start_server(sid)
                self._wait_status(sid, "ACTIVE")
                self.say(f"{host}: {s.name} started again")
            for g, members in self.disrupted.items():
                members.discard(sid)
        svc = self._service(host)
        if not svc.enabled:
            # The campaign's tag, or the one its drain of this host wrote over it (a drain holds
            # its host under its own run id and lease while it works).
            if campaign_owns(svc.disabled_reason, self.run_id):
                with self.journal.change(self.run_id, EV_ENABLE, host, service_id=svc.id,
                                         reason=svc.disabled_reason):
                    self.cloud.enable_service(svc)
                self.say(f"{host}: enabled")
            else:
                del self.out[host]
                self._note_host(host, FAILED, f"left disabled: someone else changed its reason meanwhile "
                                               f"({svc.disabled_reason})")
                return
        del self.out[host]
        if self.o.move_back:
            r.stage = "move-back"
            back = drains.undrain(self.cloud, host, journal=self.journal, move_back=True,
                                  max_parallel=min(self.o.max_parallel, self.o.group_budget)
                                  if self.o.group_budget < self.o.max_parallel else self.o.max_parallel,
                                  max_per_host=self.o.max_per_host, on_interrupt=self.on_interrupt,
                                  poll_interval=self.o.poll_interval, step_timeout=self.o.step_timeout,
                                  progress=lambda line: self.say(f"{host}: {line}"), sleep=self._tick_sleep)
            r.moved_back = back.count(drains.MOVED)
            self.journal.note(self.run_id, EV_BACK, host, undrain_run=back.run_id, ok=back.ok,
                              summary=back.summary)
            if not back.ok:
                r.seconds = self.clock() - o.t0
                self._note_host(host, FAILED, f"back in service, but the move-back did not finish ({back.summary})")
                return
        r.stage = "done"
        r.seconds = self.clock() - o.t0
        self._note_host(host, DONE, f"serviced in {r.seconds:.0f} s")

    def _take_back_tag(self, host: str, drain_run: Optional[str]) -> None:
        """The drain held the host under its own run id (and lease) while it worked; the host is
        the campaign's again for its hook, gate and return."""
        svc = self._service(host)
        if svc.enabled or reason_run_id(svc.disabled_reason) != drain_run or not drain_run:
            return
        reason = reason_text(self.run_id, self.o.reason or "draining")
        with self.journal.change(self.run_id, EV_REASON, host, service_id=svc.id, reason=reason):
            self.cloud.disable_service(svc, reason)

    def _give_back(self, host: str, r: HostResult, outcome: str, why: str) -> None:
        """An interrupted host that did not reach its hook goes back into service."""
        svc = self._service(host)
        if not svc.enabled and campaign_owns(svc.disabled_reason, self.run_id):
            with self.journal.change(self.run_id, EV_ENABLE, host, service_id=svc.id, reason=svc.disabled_reason):
                self.cloud.enable_service(svc)
            why += "; enabled again (servers moved off it stay where they are)"
        self._note_host(host, outcome, why)

    def _fail(self, host: str, r: HostResult, stage: str, why: str, log: Optional[str] = None) -> None:
        """The host stays disabled, its reason saying why; counted for the stop-loss. The reason
        is seen by every admin of the cloud: it names no local path (the log is in the journal
        and the report only)."""
        r.stage = stage
        try:
            svc = self._service(host)
            if not svc.enabled and campaign_owns(svc.disabled_reason, self.run_id):
                reason = reason_text(self.run_id, f"FAILED {stage}: {why[:120]}; novamove maintain --resume "
                                                  f"{self.run_id}")
                with self.journal.change(self.run_id, EV_REASON, host, service_id=svc.id, reason=reason):
                    self.cloud.disable_service(svc, reason)
        except errors.NovamoveError as exc:
            why += f" (its disabled reason could not be updated: {exc})"
        self.out.pop(host, None)
        self.failed_out.add(host)
        if log:
            why += f" (log {log})"
        if r.stopped:
            why += f"; powered-off server(s) left off: {', '.join(r.stopped)}"
        self._note_host(host, FAILED, why)


# ---------------------------------------------------------------------------------- journal reading

def campaign_runs(journal: Any) -> list[dict]:
    return [r for r in journal.runs(limit=100000) if r["verb"] == VERB]


def read_campaign(journal: Any, run_id: str) -> tuple[dict, dict, dict]:
    """(run, options+hosts note, per-host state) of a campaign from its journal events."""
    run = journal.get_run(run_id)
    if run is None or run["verb"] != VERB:
        raise errors.NotFound(f"no maintain run {run_id!r} in the journal {getattr(journal, 'path', '')}")
    setup: dict = {}
    hosts: dict[str, dict] = {}
    for ev in journal.events(run["id"]):
        if ev.kind == EV_CAMPAIGN:
            setup = ev.data
            continue
        h = hosts.setdefault(ev.target or "", {}) if ev.kind in (EV_HOST, EV_HOOK, EV_DISABLE, EV_ENABLE,
                                                                  EV_DRAIN, EV_GATE) else None
        if ev.kind == EV_HOST:
            h["outcome"] = ev.data.get("outcome")
            h["detail"] = ev.data.get("detail")
        elif ev.kind == EV_HOOK:
            h["hook"] = {"intent": "running", "done": "done", "failed": "failed"}[ev.state]
            h["hook_started"] = ev.data.get("started")
            h["hook_ended"] = ev.data.get("ended")
            h["log"] = ev.data.get("log")
            h.pop("outcome", None) if ev.state == "intent" else None
        elif ev.kind == EV_STOP and ev.state in ("intent", "done"):
            hosts.setdefault(ev.data.get("host") or "", {}).setdefault("stopped", []).append(
                {"id": ev.target, "name": ev.data.get("name")})
        elif ev.kind == EV_DISABLE and h is not None:
            h["disabled"] = True
        elif ev.kind == EV_ENABLE and h is not None and ev.state == "done":
            h["enabled"] = True
    return run, setup, hosts


def status(journal: Any, run_id: Optional[str] = None) -> list[dict]:
    """Campaigns in the journal (newest first), or one with its hosts' state."""
    runs = [journal.get_run(run_id)] if run_id else campaign_runs(journal)
    out = []
    for run in runs:
        if run is None:
            raise errors.NotFound(f"no maintain run {run_id!r} in the journal")
        _, setup, hosts = read_campaign(journal, run["id"])
        alive = run["status"] == "running" and pid_alive(run.get("pid"))
        out.append({"run_id": run["id"], "status": run["status"] if alive or run["status"] != "running"
                    else "killed", "started_at": run["started_at"], "finished_at": run.get("finished_at"),
                    "hosts": setup.get("hosts", []), "summary": run.get("summary"),
                    "host_state": {h: {k: v for k, v in st.items() if k != "stopped"} for h, st in hosts.items() if h}})
    return out


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
        if run["status"] == "running" and run.get("pid") != os.getpid() and pid_alive(run.get("pid")):
            raise errors.PreconditionFailed(f"campaign {run['id']} is still running (pid {run['pid']}); "
                                            "wait for it or stop it first")
        unfinished = [h for h, p in prior.items() if p.get("hook") == "running" and p.get("outcome") != DONE]
        if unfinished and not (rerun_hooks or hook_done):
            h = unfinished[0]
            raise errors.PreconditionFailed(
                f"the hook on {h} (started {prior[h].get('hook_started')}, log {prior[h].get('log')}) did not end "
                f"when campaign {run['id']} stopped; check the host, then `novamove maintain --resume {run['id']} "
                "--rerun-hook` to run it again, or `--hook-done` if it did its work")
    run_id = run["id"] if run is not None else uuid.uuid4().hex[:12]
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
    if run is None:
        journal.start_run(run_id, VERB, cloud=getattr(cloud, "cloud_name", None), source=_key(selected),
                          mode=f"max-hosts {o.max_hosts}", strategy="campaign")
        journal.note(run_id, EV_CAMPAIGN, None, options=o.to_dict(), hosts=selected, order=cplan.hosts,
                     not_serviced={p.name: p.why_not for p in cplan.not_serviced})
    else:
        journal.update_run(run_id, status="running", finished_at=None)
        say(f"resuming campaign {run_id}")
    hypervisors = {h.name: h.hypervisor_hostname for h in cloud_hosts}
    camp = Campaign(cloud, journal, run_id, cplan.hosts, o, hypervisors=hypervisors, say=say, on_update=on_update,
                    on_interrupt=on_interrupt, prior=prior, rerun_hooks=rerun_hooks, hook_done=hook_done)
    camp.servers_total = 0
    for p in cplan.not_serviced:
        camp.results[p.name] = HostResult(p.name, SKIPPED, detail=p.why_not)
    report.results = [camp.results[h] for h in report.hosts]
    try:
        camp.run()
    except KeyboardInterrupt:
        report.interrupted = True
        _fill(report, camp, t0, requests0, cloud)
        journal.finish_run(run_id, "interrupted", summary=report.summary,
                           error="left by a second Ctrl-C with hosts in flight")
        raise
    except errors.NovamoveError as exc:
        _fill(report, camp, t0, requests0, cloud)
        journal.finish_run(run_id, "failed", summary=report.summary, error=str(exc)[:500])
        raise type(exc)(f"{exc}; the campaign stopped: `novamove maintain --resume {run_id}` continues it") from exc
    except BaseException as exc:
        _fill(report, camp, t0, requests0, cloud)
        journal.finish_run(run_id, "failed", summary=report.summary, error=str(exc)[:500])
        raise
    for p in cplan.not_serviced:
        journal.note(run_id, EV_HOST, p.name, outcome=SKIPPED, detail=p.why_not)
    _fill(report, camp, t0, requests0, cloud)
    status_ = "interrupted" if report.interrupted else ("ok" if report.ok else "failed")
    journal.finish_run(run_id, status_, summary=report.summary)
    return report


def _fill(report: CampaignReport, camp: Campaign, t0: float, requests0: int, cloud: Any) -> None:
    report.results = [camp.results[h] for h in report.hosts]
    report.interrupted = report.interrupted or camp.interrupted
    report.stopped_by = camp.stopped_by
    report.peak_out = camp.peak_out
    report.peak_group = camp.peak_group
    report.changed = camp.changed
    report.elapsed_seconds = time.monotonic() - t0
    report.api_requests = getattr(getattr(cloud, "requests", None), "count", 0) - requests0


__all__ = ["Campaign", "CampaignReport", "HostResult", "Options", "VERB", "plan", "read_campaign",
           "reason_text", "run_campaign", "status"]
