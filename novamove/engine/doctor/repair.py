"""`novamove doctor --fix`: the repairs, through the public APIs alone.

Each repair of a finding:
1. reads the cloud again and checks the finding still holds exactly as the scan saw it (the
   same migration, the same disabled reason, the same allocations...): anything else means
   someone acted since, and the finding is skipped, nothing changed;
2. is journaled (`journal.change`, kinds events.DOCTOR_*) before its call, with what undoes it
   or the word that it is one-way;
3. is read back (engine/poll.py): "fixed" only when the cloud shows it. A lost answer (a
   timeout, a 5xx) is judged by that read-back, never assumed.

A refusal because something changed meanwhile (Nova's or Placement's 409: a concurrent change
wins) is "skipped" and reported; any other refusal, or a change that does not take, "failed".

    confirm      verify-resize-forgotten     one-way (a tenant's server; the source copy is gone)
    delete       migration-allocation-leaked consumer-unknown: PUT /allocations/{c} {} with the
                 consumer generation read just before (undo: PUT the journaled allocations back)
    enable       compute-isolation-left compute-tag-dead-run: only while the disabled reason is
                 still novamove's tag of that run (undo: disable it again with that reason)
    force up     compute-forced-down-reporting: only where novamove forced it down (undo: force
                 it down again)
    reset        task-state-stuck: os-resetState active, only for an active, running server on
                 the host its latest migration says, the power state untouched; one-way
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from novamove import errors
from novamove.engine import events
from novamove.engine.doctor.findings import Finding
from novamove.engine.doctor.scan import forced_by_novamove, run_states
from novamove.engine.doctor.snapshot import RUN_ALIVE, TERMINAL
from novamove.engine.poll import poll_until

FIXED, SKIPPED, FAILED = "fixed", "skipped", "failed"

# What each repairable class's repair is, and whether it can be undone (said before it runs).
ONE_WAY = {"verify-resize-forgotten": "confirming a resize cannot be undone: the source copy is deleted",
           "task-state-stuck": "a state reset cannot be undone (Nova keeps no earlier task state)",
           "consumer-unknown": "the deleted allocations are journaled; putting them back is by hand"}
KINDS = {"verify-resize-forgotten": events.DOCTOR_CONFIRM,
         "migration-allocation-leaked": events.DOCTOR_DELETE_ALLOCATIONS,
         "consumer-unknown": events.DOCTOR_DELETE_ALLOCATIONS,
         "compute-isolation-left": events.DOCTOR_ENABLE,
         "compute-tag-dead-run": events.DOCTOR_ENABLE,
         "compute-forced-down-reporting": events.DOCTOR_FORCE_UP,
         "task-state-stuck": events.DOCTOR_RESET_STATE}
REPAIRABLE = tuple(KINDS)


@dataclass
class Repair:
    klass: str
    target: str                  # server id, consumer uuid or host
    action: str                  # what was (or was to be) done
    outcome: str                 # fixed | skipped | failed
    detail: str = ""
    one_way: bool = False
    undo: Optional[str] = None   # how to undo it (None: one-way, or nothing was done)
    request_id: Optional[str] = None

    def to_dict(self) -> dict:
        return {"class": self.klass, "target": self.target, "action": self.action, "outcome": self.outcome,
                "detail": self.detail, "one_way": self.one_way, "undo": self.undo,
                "request_id": self.request_id}


class Skip(Exception):
    """The finding no longer holds as the scan saw it: nothing is changed."""


@dataclass
class Repairer:
    cloud: Any
    journal: Any
    run_id: str
    timeout: float = 180.0
    interval: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = lambda line: None
    done: list = field(default_factory=list)

    # ------------------------------------------------------------------ the one change path

    def _change(self, f: Finding, target: str, action: str, call: Callable[[], Any],
                probe: Callable[[], Any], took: Callable[[Any], bool], *, undo: Optional[str],
                timeout: Optional[float] = None, settled: Optional[Callable[[Any], bool]] = None,
                **data: Any) -> Repair:
        one_way = f.klass in ONE_WAY
        self.say(f"{f.klass}: {action}" + (f" (one-way: {ONE_WAY[f.klass]})" if one_way else
                                           f" (undo: {undo})" if undo else ""))
        change, lost = None, None
        try:
            with self.journal.change(self.run_id, KINDS[f.klass], target, doctor_class=f.klass, action=action,
                                     one_way=one_way, undo=undo, **data) as change:
                call()
        except errors.NovamoveError as exc:
            if change is None or not errors.is_ambiguous(exc):
                outcome = SKIPPED if "conflict (409)" in str(exc) else FAILED
                why = "a concurrent change won: " if outcome == SKIPPED else ""
                return Repair(f.klass, target, action, outcome, f"{why}{exc}", one_way, None, exc.request_id)
            lost = exc                 # the answer was lost: the read-back says what happened
        rid = None
        if change is not None:
            ev = next((e for e in self.journal.events(self.run_id) if e.id == change.id), None)
            rid = ev.data.get("request_id") if ev else None
        over = (lambda v: took(v) or settled(v)) if settled else took
        value, _ = poll_until(probe, over, timeout=self.timeout if timeout is None else timeout,
                              interval=self.interval, clock=self.clock, sleep=self.sleep)
        if took(value):
            if lost is not None:
                self.journal.done(change.id, read_back="applied", error=None)
            return Repair(f.klass, target, action, FIXED, "read back: " + _show(value), one_way,
                          None if one_way else undo, rid)
        self.journal.failed(change.id, read_back="did not take: " + _show(value))
        return Repair(f.klass, target, action, FAILED,
                      f"did not take (read back: {_show(value)})" + (f"; {lost}" if lost else ""),
                      one_way, None, rid)

    def run(self, findings: Iterable[Finding]) -> list[Repair]:
        out = []
        for f in findings:
            fn = getattr(self, "_" + f.klass.replace("-", "_"))
            try:
                out.append(fn(f))
            except Skip as why:
                out.append(Repair(f.klass, f.server_id or f.host or "", f"repair {f.klass}", SKIPPED,
                                  f"nothing changed: {why}"))
            self.say(f"{out[-1].klass} {out[-1].target}: {out[-1].outcome} {out[-1].detail}")
        return out

    # ------------------------------------------------------------------ servers

    def _latest(self, server_id: str):
        rows = self.cloud.list_migrations(server_id=server_id)
        return rows[0] if rows else None

    def _verify_resize_forgotten(self, f: Finding) -> Repair:
        sid, dest, mid = f.server_id, f.evidence.get("dest"), f.evidence.get("migration_id")
        s = self.cloud.get_server(sid)
        if s.status != "VERIFY_RESIZE":
            raise Skip(f"{sid} is {s.status} now")
        if not dest or s.host != dest:
            raise Skip(f"{sid} is on {s.host}, not on its migration's destination {dest}")
        latest = self._latest(sid)
        if latest is None or latest.id != mid or latest.status != "finished":
            raise Skip(f"{sid}'s latest migration is {latest.id if latest else 'none'} "
                       f"({latest.status if latest else '-'}), not {mid} finished")

        def took(srv) -> bool:
            return srv.status in ("ACTIVE", "SHUTOFF") and not srv.task_state and srv.host == dest
        return self._change(f, sid, f"confirm the resize of {sid} on {dest} (migration {mid})",
                            lambda: self.cloud.confirm_resize(sid), lambda: self._server(sid),
                            lambda srv: srv is not None and took(srv), undo=None,
                            settled=lambda srv: srv is None or srv.status == "ERROR", migration_id=mid, host=dest)

    def _server(self, sid: str):
        try:
            return self.cloud.get_server(sid)
        except errors.NotFound:
            return None

    def _task_state_stuck(self, f: Finding) -> Repair:
        sid, task = f.server_id, f.evidence.get("task_state")
        s = self.cloud.get_server(sid)
        if s.task_state != task:
            raise Skip(f"{sid}'s task state is {s.task_state or 'none'} now, not {task}")
        if s.vm_state != "active" or s.power_state != 1:
            raise Skip(f"{sid} is {s.vm_state} with power state {s.power}: os-resetState only knows active "
                       "and error, and a server that is not running is never made active")
        latest = self._latest(sid)
        if latest is not None and latest.status not in TERMINAL:
            raise Skip(f"{sid}'s migration {latest.id} is {latest.status}: it may be moving")
        if latest is not None and latest.id != f.evidence.get("migration_id"):
            raise Skip(f"{sid} has a newer migration {latest.id} than the scan saw")
        where = (latest.dest_host if latest and latest.status in ("completed", "confirmed", "done", "finished")
                 else latest.source_host if latest else None)
        if where is None or s.host != where:
            raise Skip(f"{sid} is on {s.host} but its latest migration says {where}: not verifiably where "
                       "Nova says")
        host, power = s.host, s.power_state
        return self._change(f, sid, f"reset the task state {task} of {sid} on {host} (os-resetState active)",
                            lambda: self.cloud.reset_server_state(sid, "active"), lambda: self._server(sid),
                            lambda srv: srv is not None and not srv.task_state and srv.vm_state == "active"
                            and srv.host == host and srv.power_state == power,
                            undo=None, task_state=task, host=host, power_state=power)

    # ------------------------------------------------------------------ placement

    def _delete_allocations(self, f: Finding) -> Repair:
        consumer = f.evidence.get("consumer")
        now = self.cloud.consumer_allocations(consumer)
        if not now.allocations:
            raise Skip(f"consumer {consumer} holds nothing now")
        seen = {rp: dict(r) for rp, r in (f.evidence.get("resources") or {}).items()}
        if {rp: dict(r) for rp, r in now.allocations.items()} != seen:
            raise Skip(f"consumer {consumer}'s allocations changed since the scan")
        if now.generation is None:
            raise Skip(f"placement gives no generation for consumer {consumer} (placement < 1.28): "
                       f"openstack resource provider allocation delete {consumer}")
        undo = (f"PUT /allocations/{consumer} with the allocations journaled in run {self.run_id} "
                "(placement 1.28, consumer_generation null)")
        return self._change(f, consumer, f"delete the allocations of consumer {consumer} "
                            f"(generation {now.generation})",
                            lambda: self.cloud.delete_consumer_allocations(
                                consumer, now.generation, project_id=now.project_id, user_id=now.user_id),
                            lambda: self.cloud.consumer_allocations(consumer), lambda c: not c.allocations,
                            undo=undo, timeout=0, generation=now.generation, allocations=now.allocations,
                            project_id=now.project_id, user_id=now.user_id)

    def _migration_allocation_leaked(self, f: Finding) -> Repair:
        return self._delete_allocations(f)

    def _consumer_unknown(self, f: Finding) -> Repair:
        consumer = f.evidence.get("consumer")
        if self._server(consumer) is not None:
            raise Skip(f"{consumer} is a server")
        return self._delete_allocations(f)

    # ------------------------------------------------------------------ computes

    def _service(self, host: str):
        return next((s for s in self.cloud.list_compute_services() if s.host == host), None)

    def _enable(self, f: Finding) -> Repair:
        host, reason, run = f.host, f.evidence.get("disabled_reason"), f.evidence.get("run_id")
        svc = self._service(host)
        if svc is None:
            raise Skip(f"no nova-compute on {host}")
        if svc.enabled or svc.disabled_reason != reason:
            raise Skip(f"{host} is {svc.status} ({svc.disabled_reason or 'no reason'}) now: not run {run}'s tag")
        if run_states(self.journal, [run]).get(run) == RUN_ALIVE:
            raise Skip(f"run {run} is at work again")
        return self._change(f, host, f"enable {host} (disabled by novamove run {run})",
                            lambda: self.cloud.enable_service(svc), lambda: self._service(host),
                            lambda s: s is not None and s.enabled,
                            undo=f"openstack compute service set --disable --disable-reason '{reason}' "
                                 f"{host} nova-compute", timeout=30, service_id=svc.id, reason=reason)

    _compute_isolation_left = _enable
    _compute_tag_dead_run = _enable

    def _compute_forced_down_reporting(self, f: Finding) -> Repair:
        host = f.host
        svc = self._service(host)
        if svc is None or not svc.forced_down:
            raise Skip(f"{host} is not forced down now")
        if host not in forced_by_novamove(self.journal, [host]):
            raise Skip(f"novamove did not force {host} down: whoever did clears it")
        return self._change(f, host, f"clear forced_down of {host} (its nova-compute keeps reporting)",
                            lambda: self.cloud.set_service_forced_down(svc, False), lambda: self._service(host),
                            lambda s: s is not None and not s.forced_down,
                            undo=f"openstack compute service set --down {host} nova-compute", timeout=30,
                            service_id=svc.id)


def _show(value: Any) -> str:
    if value is None:
        return "gone"
    if hasattr(value, "allocations"):
        return "no allocations" if not value.allocations else f"allocations on {', '.join(sorted(value.allocations))}"
    if hasattr(value, "forced_down"):
        return f"{value.host} {value.status}{', forced down' if value.forced_down else ''}"
    return (f"{value.status}, task state {value.task_state or 'none'}, vm_state {value.vm_state}, "
            f"on {value.host}")


def selected(findings: Iterable[Finding], classes: Optional[Iterable[str]]) -> list[Finding]:
    """The findings `--fix` repairs: with no class, the safe ones; with classes, the repairable
    ones of those classes."""
    if classes is None:
        return [f for f in findings if f.safe and f.klass in KINDS]
    wanted = set(classes)
    return [f for f in findings if f.klass in wanted and f.repairable and f.klass in KINDS]
