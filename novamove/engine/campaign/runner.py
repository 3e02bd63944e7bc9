"""The campaign's loop: hosts admitted under N+K and the server-group budget, up to K out at once;
hosts admitted together are drained together (one drain, each host under its own caps); the
stages of a host are in takeout.py and stages.py."""

from __future__ import annotations

import time
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine import events, tags
from novamove.engine.runner import GracefulLoop
from novamove.engine.tags import reason_run_id
from novamove.engine.batch import drain as drains
from novamove.engine.commands import command_env
from novamove.engine.journal import state_dir
from novamove.engine.campaign.intents import SKIP, STOP, intents_of
from novamove.engine.campaign.simulate import plan_campaign
from novamove.model import Host, Service
from novamove.planner import CloudState, move_mode, plan_drain
from novamove.engine.campaign import common
from novamove.engine.campaign.common import DONE, FAILED, INTERRUPTED, NOT_STARTED, REFUSED, SKIPPED
from novamove.engine.campaign.common import EV_HOST, RECHECK, reason_text
from novamove.engine.campaign.report import HostResult, Options, _Out
from novamove.engine.campaign.takeout import TakeOut
from novamove.engine.campaign.stages import HostStages
from novamove.engine.campaign.view import CloudView


# ---------------------------------------------------------------------------------- the runner

class Campaign(TakeOut, HostStages, GracefulLoop):
    def __init__(self, cloud: Any, journal: Any, run_id: str, hosts: Sequence[str], options: Options, *,
                 hypervisors: Optional[dict] = None, say: Optional[Callable[[str], None]] = None,
                 on_update: Optional[Callable[["Campaign"], None]] = None, on_interrupt: str = "finish",
                 prior: Optional[dict] = None, rerun_hooks: bool = False, hook_done: bool = False,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 cloud_hosts: Optional[Sequence[Host]] = None):
        # The campaign and its drains see the cloud through its view (view.py): read whole once
        # (`cloud_hosts`, the read the plan was made from), kept current stage by stage.
        self.cloud = CloudView(cloud, cloud_hosts if cloud_hosts is not None
                               else cloud.compute_hosts(with_resources=True), clock)
        self.view = self.cloud
        self.journal, self.run_id = journal, run_id
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
        self._init_stop()
        self.changed = False
        self.peak_group = 0
        self.disrupted: dict[str, set[str]] = {}    # group id -> member ids powered off now
        self.servers_total = 0
        self.servers_done = 0
        self.move_durations: list[float] = []       # seconds each move of its drains took (their polls)
        self.current: list[str] = []                # the hosts being drained (one drain)
        # Hook logs: beside a journal file; on this machine's state directory for a database
        # journal (its URL is no directory: it made one named after the URL in the cwd).
        where = getattr(journal, "path", Path.cwd() / "journal")
        self.rundir = (where.parent if isinstance(where, Path) else state_dir()) / "runs" / run_id
        self.t0 = clock()
        self._recheck_at = 0.0
        self._leased_at = clock()
        self._alone_since: Optional[float] = None   # one slot free, waiting for company since

    # -------------------------------------------------------------- helpers

    def _note_host(self, host: str, outcome: str, detail: str = "") -> None:
        r = self.results[host]
        r.outcome, r.detail = outcome, detail or r.detail
        self.journal.note(self.run_id, EV_HOST, host, outcome=outcome, detail=r.detail)
        self.say(f"{host}: {outcome}" + (f": {r.detail}" if r.detail else ""))
        self.on_update(self)

    def _service(self, host: str, now: bool = False) -> Service:
        """`host`'s nova-compute as listed through the view (a listing read in the same breath
        answers again: view.py READ_FRESH); `now`: read from the cloud now (a gate's poll)."""
        for s in (self.view.services_now() if now else self.cloud.list_compute_services()):
            if s.host == host:
                return s
        raise errors.NotFound(f"no nova-compute service on {host!r}")

    def _nova_now(self) -> datetime:
        """Nova's time now (naive UTC, as Nova writes it): from the latest answer's Date header,
        this machine's clock only when the cloud gave none."""
        now = getattr(self.cloud, "cloud_now", lambda: None)()
        return (now.astimezone(timezone.utc) if now is not None else datetime.now(timezone.utc)).replace(tzinfo=None)

    def _uptime(self, host: str) -> Optional[str]:
        read = getattr(self.cloud, "hypervisor_uptime", None)
        return read(host) if read is not None else None

    def _env(self, host: str) -> dict:
        return command_env({"NOVAMOVE_HOST": host, "NOVAMOVE_HYPERVISOR": self.hypervisors.get(host) or host,
                            "NOVAMOVE_RUN_ID": self.run_id})

    def _tick(self) -> None:
        """Follow the hooks that run and keep the hosts out leased (also called from inside a
        drain's waits)."""
        for o in list(self.out.values()):
            if o.phase == "hook" and o.proc is not None:
                self._poll_hook(o)
        self._renew_leases()
        self.on_update(self)

    def _lease_until(self) -> datetime:
        return tags.lease_from_now(now=self._nova_now().replace(tzinfo=timezone.utc))

    def _renew_leases(self) -> None:
        """The hosts out (hook, gate, check, return) carry the campaign's lease: renewed as a
        drain's is, so other operators' drain, undrain and maintain of them are refused. A
        failed renewal is tried again at the next tick (the lease has time left)."""
        if self.clock() - self._leased_at < tags.RENEW_AFTER or not self.out:
            return
        try:
            services = {s.host: s for s in self.cloud.list_compute_services()}
            for host, o in self.out.items():
                svc = services.get(host)
                if (svc is None or svc.enabled or o.phase in ("failed", "done")
                        or tags.lease_of(svc.disabled_reason) is None
                        or reason_run_id(svc.disabled_reason) != self.run_id):
                    continue
                reason = reason_text(self.run_id, self.o.reason or "draining", self._lease_until())
                with self.journal.change(self.run_id, events.MAINTAIN_LEASE, host, service_id=svc.id,
                                         reason=reason):
                    self.cloud.disable_service(svc, reason)
            self._leased_at = self.clock()
        except errors.NovamoveError as exc:
            self.say(f"lease renewal failed ({exc}); trying again")

    def _tick_sleep(self, seconds: float) -> None:
        self._tick()
        self.sleep(seconds)

    @property
    def out_count(self) -> int:
        # Failed hosts left disabled are not counted: the N+K check sees them out of service.
        return len(self.out) + len(self.current)

    @property
    def peak_out(self) -> int:
        """Most hosts out of service at once."""
        return self.peak

    # -------------------------------------------------------------- the stop machinery's hooks
    # (engine/runner.py GracefulLoop: the first signal starts no new host, the second leaves)

    INTERRUPT = "interrupted"
    STARTS = "starting no new host"

    def _announce(self, line: str) -> None:
        self.say(line)

    def _in_flight(self) -> int:
        return self.out_count

    def _stop_message(self) -> str:
        return f"finishing the {len(self.out)} host(s) in flight"

    def _left_in_flight(self) -> None:
        for host in self.current:
            r = self.results[host]
            r.outcome = INTERRUPTED
            r.detail = (f"left while draining (disabled, moves maybe in flight): "
                        f"`novamove maintain --resume {self.run_id}` continues it")
        for o in self.out.values():
            r = o.result
            r.outcome = INTERRUPTED
            r.detail = (f"left {o.phase}" + (" (its hook is still running, pid "
                                               f"{o.proc.pid})" if o.proc and o.proc.poll() is None else "")
                        + f": `novamove maintain --resume {self.run_id}` continues it")

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
        waiting_note = ""
        with self._stoppable():
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
                        and (progressed or self.clock() >= self._recheck_at) and not self._wait_for_company()):
                    host = self.queue[0]
                    verdict, why, caps = self._can_start(host)
                    if verdict == "go":
                        self.queue.pop(0)
                        self._alone_since = None
                        self._take_out(self._joiners([(host, caps)]))
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
                self._note_peak()
                if not progressed and (self.queue or self.out):
                    self._pause(common.POLL)
        return [self.results[h] for h in self.hosts]

    def count_failed(self) -> int:
        return sum(r.outcome == FAILED for r in self.results.values())

    # -------------------------------------------------------------- admission: N+K and group budget

    def _can_start(self, host: str) -> tuple[str, str, dict]:
        """("go", "", drain caps) | ("wait", why, {}) | ("refuse", why, {}): judged on the view
        (view.py), its plan's hosts read for this stage; an N+K "no" is judged again on a whole
        read of the cloud before the host is refused, and while it waits at most every
        FULL_RECHECK seconds (capacity someone else freed is seen)."""
        self.view.begin_stage()
        t = self.clock()
        verdict = self._judge(host)
        if (verdict[0] in ("wait", "refuse") and verdict[1].startswith("N+K") and self.view.last_full < t
                and (verdict[0] == "refuse" or self.clock() - self.view.last_full >= common.FULL_RECHECK)):
            self.view.read_all()
            verdict = self._judge(host)
        return verdict

    def _wait_for_company(self) -> bool:
        """Whether to hold the one free slot a little (common.PAIR_WAIT): another host out is
        nearly back (its hook done) and a host is queued to take its slot too, so that both are
        drained together. Never longer than PAIR_WAIT; never with two slots free."""
        if self.o.max_hosts - self.out_count != 1 or len(self.queue) < 2 or not any(
                o.phase in ("gate", "check", "return") for o in self.out.values()):
            self._alone_since = None
            return False
        if self._alone_since is None:
            self._alone_since = self.clock()
        return self.clock() - self._alone_since < common.PAIR_WAIT

    def _joiners(self, batch: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """The hosts admitted with the first while K leaves room, each judged with those before
        it out (N+K over all of them at once): they are drained together, so their moves are in
        flight at the same time (each host under its own caps), not one drain after another. A
        host that cannot join now waits for its own turn, judged again alone."""
        while self.queue and not self.stop_requested and self.out_count + len(batch) < self.o.max_hosts:
            verdict, _, caps = self._judge(self.queue[0], joining=batch)
            if verdict == "skipped":
                continue
            if verdict != "go":
                break
            batch.append((self.queue.pop(0), caps))
        return batch

    def _judge(self, host: str, joining: Sequence[tuple[str, dict]] = ()) -> tuple[str, str, dict]:
        """`joining`: hosts admitted in this breath, to be drained with `host` (their servers
        still on them): the stage is judged with all of them out, and a host that shares a
        server group with them, or does not fit beside them, waits ("wait"), never refused."""
        together = [h for h, _ in joining]
        found = drains.gather_state(self.cloud, [*together, host], [])
        on_host = [s for s in found.servers if s.host == host]
        intents, problems = intents_of(on_host)
        for p in problems:
            self.say(f"{host}: {p}")
        if together:
            on_them = {s.id for s in found.servers if s.host in together}
            here = {s.id for s in on_host}
            for g in found.groups:
                if set(g.members) & on_them and set(g.members) & here:
                    return "wait", f"server group {g.name or g.id} has members on {', '.join(together)} too", {}
        merged: dict = {}
        for _, caps in joining:
            merged.update(caps.get("intents", {}))
        merged.update(intents)
        sources = [*together, host]
        later = set(self.queue[1:])
        leave = {sid for sid, i in merged.items() if i in (STOP, SKIP)}

        def plan(hosts: list) -> tuple[tuple, set[str]]:
            state = CloudState(hosts, found.servers, found.groups)
            cplan = plan_campaign(state, sources, max_hosts=len(sources), intents=merged,
                                  allow_skip=self.o.allow_skip, allow_unmovable=self.o.allow_unmovable,
                                  run_id=self.run_id, max_parallel=self.o.max_parallel,
                                  max_per_host=self.o.max_per_host)
            touched = set(sources) | {m.dest for st in cplan.stages for m in st.moves if m.dest}
            # Destinations the campaign will not empty again, when they can take everything (a
            # server moved onto a host still to be serviced would move twice).
            targets = [h.name for h in hosts if h.name not in later and h.name not in sources]
            if later and targets:
                sub = CloudState(hosts, [s for s in found.servers if s.id not in leave], found.groups)
                trial = plan_drain(sub, sources, targets=targets)
                touched |= {st.dest for st in trial.steps if st.dest}
                if any(move_mode(s, "auto")[1] is None for s in found.servers
                       if s.id in {st.server_id for st in trial.skipped}):
                    targets = []
            else:
                targets = []
            # The plan the drain will make (engine/batch/drain.py make_plan): its hosts too.
            touched |= {st.dest for st in plan_drain(state, sources, targets=targets).steps if st.dest}
            return (state, cplan, targets), touched

        state, cplan, targets = self.view.fresh_plan(plan)
        hp = cplan.host_plans[host]
        if not hp.serviced:
            self.queue.pop(0)
            self._note_host(host, SKIPPED, hp.why_not)
            return "skipped", hp.why_not, {}
        stage = cplan.stages[0]
        if not stage.ok or set(stage.hosts) != set(sources):
            if self.out or together:
                return "wait", f"N+K: {stage.problem}", {}
            return "refuse", f"N+K: {stage.problem}", {}
        # Server groups: members moving off this host, or powered off on it, within the budget.
        caps: dict = {"max_parallel": self.o.max_parallel}
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
        if targets:
            caps["targets"] = targets
        caps["intents"] = intents
        caps["moves"] = hp.moves
        return "go", "", caps
