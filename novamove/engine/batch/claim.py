"""A drain's hold on its host(s): the tagged disabled_reason with its lease, written and read
back, and the journal's view of other drains of the same host (see novamove.engine.tags)."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from novamove import errors
from novamove.engine import events, tags
from novamove.engine.batch.common import DRAIN_VERB, EV_DISABLE
from novamove.planner import DrainPlan
from novamove.engine.journal import run_alive
from novamove.engine.poll import poll_until
from novamove.engine.tags import LEASE_SECONDS, RENEW_AFTER, is_drain_tag, is_isolation_tag, reason_run_id
from novamove.model import Service

log = logging.getLogger("novamove.drain")

def drain_reason(run_id: str, reason: Optional[str], lease_until: Optional[datetime] = None) -> str:
    """The disabled_reason a drain writes: tagged, so undrain only re-enables its own; with a
    lease while the drain runs (see novamove.engine.tags)."""
    return tags.drain_reason(run_id, reason, lease_until)


def is_our_drain_reason(disabled_reason: Optional[str]) -> bool:
    return is_drain_tag(disabled_reason)


# How long a drain waits for another run's isolation window on its source to close.
ISOLATION_WAIT = 90.0
# Pause before reading a tag back (the other writer's PUT, if any, lands meanwhile).
READ_BACK_PAUSE = 1.0
EV_LEASE = events.DRAIN_LEASE


def _refuse_down_sources(plan: DrainPlan, services: dict[str, Service]) -> None:
    """Nova moves a server only while the compute it is on is up (cold and live alike): with a
    down source every move would fail, so refuse before anything is changed."""
    with_moves = {s.source for s in plan.moves}
    for name in plan.sources:
        svc = services.get(name)
        if svc is not None and not svc.up and name in with_moves:
            count = sum(1 for s in plan.moves if s.source == name)
            raise errors.PreconditionFailed(
                f"cannot drain {name}: its nova-compute is down, and Nova moves no server off a "
                f"down compute ({count} to move); bring it back up, or evacuate them")


def _drain_runs(journal: Any, source_key: str, limit: int = 100000) -> list[dict]:
    return journal.runs(limit=limit, verbs={DRAIN_VERB}, source=source_key)


def _unfinished_drains(journal: Any, source_key: str) -> list[dict]:
    """Earlier drains of the same host(s) that a new run continues: every one since the last
    that ended ok, except those already continued (`recover` marks a run recovered, but its
    leftover moves are still the drain's business)."""
    out: list[dict] = []
    for r in reversed(_drain_runs(journal, source_key)):     # oldest first
        if r["status"] == "ok":
            out = []
        elif not (r.get("summary") or "").startswith("continued by"):
            out.append(r)
    return out


def _refuse_concurrent_drain(journal: Any, source_key: str, doing: str = "drain") -> None:
    for r in _unfinished_drains(journal, source_key):
        if r["status"] == "running" and r.get("pid") != os.getpid() and run_alive(r):
            raise errors.PreconditionFailed(
                f"cannot {doing} {source_key}: drain run {r['id']} of it is still running "
                f"(pid {r['pid']}); wait for it or stop it first")


def cloud_now(cloud: Any):
    """Nova's time (the latest answer's Date header), or None: leases are set and judged in it."""
    return getattr(cloud, "cloud_now", lambda: None)()


def _service(cloud: Any, name: str) -> Service:
    svc = next((s for s in cloud.list_compute_services() if s.host == name), None)
    if svc is None:
        raise errors.NotFound(f"no nova-compute service on {name!r}")
    return svc


class _DeadDrains:
    """Drain and campaign runs this journal knows are over (finished, or their process is
    gone): their lease on a host no longer means anything. Asked about one run at a time (the
    run a host's tag names), so that a drain's start does not read every run a shared journal
    ever had."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal

    def __contains__(self, run_id: object) -> bool:
        r = self.journal.get_run(run_id) if isinstance(run_id, str) and run_id else None
        return (r is not None and r["id"] == run_id and r["verb"] in (DRAIN_VERB, events.VERB_MAINTAIN)
                and (r["status"] != "running" or not run_alive(r)))


def _dead_drains(journal: Any) -> _DeadDrains:
    return _DeadDrains(journal)


def _disable_sources(cloud: Any, journal: Any, run_id: str, plan: DrainPlan,
                     say: Callable[[str], None], own_runs: set[str],
                     sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic,
                     held_for: Optional[str] = None, held: Optional[set[str]] = None) -> tuple[str, bool]:
    """Disable each source first (so nothing new lands there) with our tag and a lease,
    journaled before the call, then read the tag back: the last writer wins, so a run that
    reads back another drain's live tag has lost the race and stops (nothing of its own is
    left there). An isolation window open on the source is waited out first (its run
    re-enables the host when it closes). Returns (what happened, whether a service changed).

    `held_for`: the run this drain works for (a campaign). A source read under that run's live
    tag and lease is left as it is: that run disabled it and read it back at least
    READ_BACK_PAUSE after its write (engine/campaign/takeout.py), so this listing is the read
    back; the drain renews that lease in that run's words (`_Lease`) and writes no tag of its
    own (a write, its read-back and a hand-back less per host; issue 24); those sources are
    added to `held`."""
    notes = []
    changed = False
    dead = _dead_drains(journal)
    for name in plan.sources:
        for _ in range(4):
            svc = _service(cloud, name)
            tags.refuse_if_drained_elsewhere(name, svc.disabled_reason, own_runs, "drain", dead, cloud_now(cloud))
            if held_for and not svc.enabled and tags.live_drain(svc.disabled_reason, cloud_now(cloud)) == held_for:
                notes.append(f"{name} held by novamove run {held_for}; this drain works under its lease")
                journal.note(run_id, EV_DISABLE, name, already=True, held_by=held_for, reason=svc.disabled_reason)
                say(notes[-1])
                if held is not None:
                    held.add(name)
                break
            if not svc.enabled and is_isolation_tag(svc.disabled_reason):
                _wait_isolation_over(cloud, name, svc.disabled_reason, say, sleep, clock)
                continue
            if not svc.enabled and not is_drain_tag(svc.disabled_reason):
                notes.append(f"{name} already disabled by someone else ({svc.disabled_reason or 'no reason'}): "
                             "left as is, undrain will not re-enable it")
                journal.note(run_id, EV_DISABLE, name, already=True, reason=svc.disabled_reason)
                say(notes[-1])
                break
            reason = drain_reason(run_id, plan.reason, tags.lease_from_now(now=cloud_now(cloud)))
            with journal.change(run_id, EV_DISABLE, name, service_id=svc.id, reason=reason,
                                previous_status=svc.status, previous_reason=svc.disabled_reason):
                cloud.disable_service(svc, reason)
            changed = changed or svc.enabled
            sleep(READ_BACK_PAUSE)
            now = _service(cloud, name)
            if reason_run_id(now.disabled_reason) == run_id and not now.enabled:
                notes.append(f"{name} disabled ({tags.tagged_reason(run_id, 'drain: ' + (plan.reason or 'maintenance'))})"
                             if svc.enabled else f"{name} already disabled by a novamove drain; this run's now")
                say(notes[-1])
                break
            # Someone wrote after us: another drain (refused above on the next pass), an
            # isolation window (waited out), a person (left alone), or it is enabled again.
            journal.note(run_id, events.DRAIN_LOST_RACE, name, found=now.disabled_reason, status=now.status)
        else:
            raise errors.PreconditionFailed(f"could not disable {name}: its status kept changing under "
                                            "novamove (another operator at work?); nothing else was changed")
    return "; ".join(notes), changed


def _wait_isolation_over(cloud: Any, name: str, reason: Optional[str], say: Callable[[str], None],
                         sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    """Another novamove run disabled `name` for an isolation window (seconds, normally): once
    it closes that run re-enables the host, so disabling it now would be undone under us."""
    say(f"{name} is disabled for another novamove run's isolation window ({reason}); waiting for it")
    _, over = poll_until(lambda: _service(cloud, name),
                         lambda now: now.enabled or not is_isolation_tag(now.disabled_reason),
                         timeout=ISOLATION_WAIT, interval=1.0, clock=clock, sleep=sleep)
    if over:
        return
    raise errors.PreconditionFailed(
        f"cannot drain {name}: it has been disabled for novamove run {reason_run_id(reason)}'s isolation "
        f"window for over {ISOLATION_WAIT:.0f} s (if that run died, `novamove recover` re-enables it)")


class _Lease:
    """Keeps the drain's lease on its source(s) fresh while it runs, and drops it at the end
    (the host stays disabled, marked as drained). A renewal that finds another live drain's
    tag means this run lost the host: it stops starting moves."""

    def __init__(self, cloud: Any, journal: Any, run_id: str, plan: DrainPlan, say: Callable[[str], None],
                 clock: Callable[[], float], hand_back: Optional[Callable[[], str]] = None,
                 held_for: Optional[str] = None):
        self.cloud, self.journal, self.run_id, self.plan, self.say, self.clock = cloud, journal, run_id, plan, say, clock
        # The reason the drain leaves on its source(s) at the end instead of its own tag without
        # a lease: the run it worked for (a campaign) holds the host again with that one write.
        self.hand_back = hand_back
        # That run (`held_for`, with `hand_back`): a source under its tag is renewed in its words
        # (`hand_back()`), never taken as lost, and needs no hand-back at the end.
        self.held_for = held_for if hand_back is not None else None
        self.held: set[str] = set()     # the sources found under its tag (_disable_sources)
        self.last = clock()
        self.lost_to: Optional[str] = None
        # Until when (Nova's clock) the lease this run last wrote holds: the claim just wrote one.
        self.held_until = tags.lease_from_now(now=cloud_now(cloud))
        self.failing = False

    def __call__(self) -> bool:
        """Renew when due (again soon after a failed renewal); False once the host was lost to
        another drain."""
        if self.lost_to:
            return False
        due = RENEW_AFTER if not self.failing else LEASE_SECONDS / 12
        if self.clock() - self.last >= due:
            self.last = self.clock()
            self._write(release=False)
        return self.lost_to is None

    def holds(self) -> bool:
        """Whether moves may start: the lease has a third of its time left. A run whose renewals
        fail (the API unreachable) starts nothing new until it holds the lease again, so a run
        that others may already take for dead never starts a move (in flight ones go on)."""
        now = cloud_now(self.cloud) or datetime.now(timezone.utc)
        ok = now < self.held_until - timedelta(seconds=LEASE_SECONDS / 3)
        if not ok and not self.failing:
            self.failing = True
        return ok

    def release(self) -> None:
        if self.held and self.held >= set(self.plan.sources):
            return          # no tag of this drain's anywhere: nothing to hand back, nothing read
        self._write(release=True)

    def _write(self, release: bool) -> None:
        try:
            services = {s.host: s for s in self.cloud.list_compute_services()}
            until = None if release else tags.lease_from_now(now=cloud_now(self.cloud))
            for name in self.plan.sources:
                svc = services.get(name)
                if (name in self.held and svc is not None and not svc.enabled
                        and reason_run_id(svc.disabled_reason) == self.held_for):
                    if not release:
                        reason = self.hand_back()
                        with self.journal.change(self.run_id, EV_LEASE, name, service_id=svc.id, reason=reason):
                            self.cloud.disable_service(svc, reason)
                    continue
                if svc is None or svc.enabled or reason_run_id(svc.disabled_reason) != self.run_id:
                    other = tags.live_drain(svc.disabled_reason) if svc is not None else None
                    if other and other != self.run_id and not release:
                        self.lost_to = other
                        self.say(f"{name}: novamove run {other} took the host over; starting nothing new")
                    continue
                reason = (self.hand_back() if release and self.hand_back is not None
                          else drain_reason(self.run_id, self.plan.reason, until))
                with self.journal.change(self.run_id, EV_LEASE, name, service_id=svc.id, reason=reason):
                    self.cloud.disable_service(svc, reason)
            if not release:
                self.held_until = until
                if self.failing:
                    self.say("lease renewed: starting moves again")
                self.failing = False
        except errors.NovamoveError as exc:
            # The lease has time left: a blip is ridden out; renewal is tried again soon, and
            # no move starts once a third of the lease is left (`holds`).
            log.warning("lease of %s: %s", self.run_id, exc)
            if not release:
                if not self.failing:
                    self.say(f"lease renewal failed ({exc}); moves in flight go on, new ones wait for it")
                self.failing = True
