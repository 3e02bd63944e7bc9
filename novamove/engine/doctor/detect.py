"""The doctor's verdicts: pure functions from a Snapshot to findings, one per drift class.

No I/O here. Each `check_*` walks what its class is about and asks a small verdict function
whether this one is drift, and why (kubectl drain's filter chain: a verdict with a reason).
Healthy work is never a finding: a server with a task state and a migration in progress, a
migration's allocations on both nodes while it runs, anything younger than the settle time.

    findings = detect(snapshot, Options(older_than=3600))
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional, TypeVar

from novamove.engine import tags
from novamove.engine.doctor.findings import Finding, finding
from novamove.engine.doctor.snapshot import (MOVING_TASK_STATES, ON_DEST, ON_SOURCE, REBUILD_TASK_STATES,
                                             RUN_ALIVE, RUN_DEAD, RUN_FAILED, RUN_FINISHED, TERMINAL, Index,
                                             Options, Snapshot)
from novamove.model import Migration, ServerState

Check = Callable[[Index], Iterator[Finding]]
T = TypeVar("T")
V = TypeVar("V")


def _who(s: ServerState) -> str:
    return f"{s.name} ({s.id})" if s.name else s.id


def _mig(m: Migration) -> dict:
    return {"migration_id": m.id, "migration_uuid": m.uuid, "migration_type": m.migration_type,
            "migration_status": m.status, "source": m.source_host, "dest": m.dest_host,
            "created_at": m.created_at, "updated_at": m.updated_at}


def _find_guest(m: Migration) -> str:
    return f"find where the guest runs (virsh list --all on {m.source_host} and {m.dest_host})"


def _age(ix: Index, ts: Optional[str]) -> Optional[int]:
    a = ix.age(ts)
    return None if a is None else int(a)


def judged(items: Iterable[T], verdict: Callable[[T, Index], Optional[V]], ix: Index) -> Iterator[tuple[T, V]]:
    """(item, reason) for each item the verdict finds drift in (a reason that is not None)."""
    for item in items:
        why = verdict(item, ix)
        if why is not None:
            yield item, why


# ---------------------------------------------------------------------- servers and migrations

def check_verify_resize(ix: Index) -> Iterator[Finding]:
    for s in ix.snap.servers:
        if s.status != "VERIFY_RESIZE":
            continue
        m = ix.latest(s.id)
        since = m.updated_at if m is not None and m.status == "finished" else s.updated
        if not ix.older(since):
            continue
        on_dest = m is not None and m.status == "finished" and s.host == m.dest_host
        yield finding(
            "verify-resize-forgotten",
            f"{_who(s)} has waited in VERIFY_RESIZE on {s.host} for {_age(ix, since)} s",
            f"openstack server resize confirm {s.id}" if on_dest else
            f"check where {s.id} runs (its migration says {m.dest_host if m else 'nothing'}), then "
            f"openstack server resize confirm {s.id} (or resize revert)",
            server_id=s.id, host=s.host, repairable=on_dest,
            evidence={"status": s.status, "since": since, "age_s": _age(ix, since),
                      **(_mig(m) if m else {})})


def moving_without_migration(s: ServerState, ix: Index) -> Optional[str]:
    """Why the server's task state is stuck, or None (not moving, or moving for real)."""
    if s.task_state not in MOVING_TASK_STATES and s.task_state not in REBUILD_TASK_STATES:
        return None
    latest = ix.latest(s.id)
    if s.task_state in REBUILD_TASK_STATES and (latest is None or latest.migration_type != "evacuation"):
        return None                    # a rebuild in place, not a move
    if ix.in_progress(s.id):
        return None
    if not ix.settled(s.updated, latest.updated_at if latest else None):
        return None                    # a move that just started or just ended
    return (f"task state {s.task_state} but its latest migration is {latest.status} ({latest.id})"
            if latest else f"task state {s.task_state} but Nova has no migration record of it")


def expected_host(m: Optional[Migration]) -> Optional[str]:
    """Where a server belongs after its migration `m` ended (None: it has not, or no record)."""
    if m is None:
        return None
    if m.status in ON_DEST:
        return m.dest_host
    if m.status in ON_SOURCE:
        return m.source_host
    return None


def check_task_state(ix: Index) -> Iterator[Finding]:
    for s, why in judged(ix.snap.servers, moving_without_migration, ix):
        latest = ix.latest(s.id)
        where = expected_host(latest)
        # os-resetState only knows active and error: never for a stopped server, and only once
        # the server is verifiably where its latest migration says.
        resettable = s.vm_state == "active" and s.power_state == 1 and where is not None and where == s.host
        fix = (f"openstack server set --state active {s.id}" if resettable else
               f"check the guest on {s.host}{f' and {where}' if where and where != s.host else ''} "
               f"(virsh list --all); restarting nova-compute on {s.host} resets a stuck {s.task_state}; "
               f"reset with `openstack server set --state active {s.id}` only if it runs on {s.host}")
        yield finding("task-state-stuck", f"{_who(s)}: {why}", fix, server_id=s.id, host=s.host,
                      repairable=resettable,
                      evidence={"task_state": s.task_state, "vm_state": s.vm_state, "power_state": s.power_state,
                                "updated": s.updated, **(_mig(latest) if latest else {})})


def server_moving(s: Optional[ServerState]) -> bool:
    return s is not None and (s.task_state in MOVING_TASK_STATES or s.task_state in REBUILD_TASK_STATES)


def stuck_migration(m: Migration, ix: Index) -> Optional[str]:
    """Why a non-terminal migration record is stuck, or None."""
    if m.status in TERMINAL:
        return None
    s = ix.servers.get(m.server_id)
    if m.status == "finished" and s is not None and s.status == "VERIFY_RESIZE":
        return None                    # waiting for its confirm: verify-resize-forgotten's case
    # The server's own stamp too: a live migration's record stays `running` through the source's
    # post-migration clean-up, after the destination has cleared the task state (seen on the
    # minicloud: 8 s under load); a server whose state just changed is a move that just ended.
    if server_moving(s) or not ix.older(m.updated_at) or not ix.settled(m.updated_at, s.updated if s else None):
        return None
    state = "gone" if s is None else f"{s.status}, task state {s.task_state or 'none'}"
    return f"migration {m.id} ({m.migration_type}) has been {m.status} for {_age(ix, m.updated_at)} s; server {state}"


def check_stuck_migrations(ix: Index) -> Iterator[Finding]:
    for m, why in judged(ix.snap.migrations, stuck_migration, ix):
        held = ix.consumers.get(m.uuid or "", {})
        yield finding(
            "migration-stuck", why,
            f"Nova has no API to end a migration record: once {m.server_id} is known not to be moving "
            f"(virsh on {m.source_host} and {m.dest_host}), set it in Nova's cell database: "
            f"UPDATE migrations SET status='error' WHERE id={m.id}; then run novamove doctor again",
            server_id=m.server_id, host=m.source_host,
            evidence={**_mig(m), "age_s": _age(ix, m.updated_at), "holds_allocations_on": ix.where(held)})


def misplaced(s: ServerState, ix: Index) -> Optional[str]:
    """Why the server is not where its latest migration says, or None."""
    m = ix.latest(s.id)
    where = expected_host(m)
    if where is None or s.host is None or s.host == where or server_moving(s) or ix.in_progress(s.id):
        return None
    if not ix.settled(m.updated_at, s.updated):
        return None
    side = "destination" if m.status in ON_DEST else "source"
    return f"its latest migration {m.id} is {m.status} ({side} {where}) but Nova has it on {s.host}"


def check_misplaced(ix: Index) -> Iterator[Finding]:
    for s, why in judged(ix.snap.servers, misplaced, ix):
        m = ix.latest(s.id)
        yield finding(
            "server-not-where-migration-says", f"{_who(s)}: {why}",
            f"{_find_guest(m)}; Nova's host "
            f"can only be corrected in its database or by nova-compute, then reset {s.id}",
            server_id=s.id, host=s.host, evidence={"host": s.host, "status": s.status, **_mig(m)})


_MIGRATION_WORDS = ("migrat", "resize", "evacuat", "confirm", "revert")


def error_from_migration(s: ServerState, ix: Index) -> Optional[Migration]:
    """The migration a server's ERROR came from, or None."""
    if s.status != "ERROR" or not (s.fault_message or s.fault_details):
        return None
    m = ix.latest(s.id)
    if m is None:
        return None
    text = f"{s.fault_message or ''} {s.fault_details or ''}".lower()
    began, fault = ix.age(m.created_at), ix.age(s.fault_created)
    ended = ix.age(m.updated_at)
    # The fault was written while the migration ran (or just after it ended), or says so.
    during = began is not None and fault is not None and began >= fault >= (ended or 0) - 600
    says = m.status in ("error", "failed") and any(w in text for w in _MIGRATION_WORDS)
    return m if during or says else None


def check_error_after_migration(ix: Index) -> Iterator[Finding]:
    for s, m in judged(ix.snap.servers, error_from_migration, ix):
        yield finding(
            "server-error-after-migration",
            f"{_who(s)} is in ERROR on {s.host} after migration {m.id} ({m.status}): {s.fault_message}",
            f"{_find_guest(m)}; if it runs "
            f"on {s.host}: openstack server set --state active {s.id}, then move it again",
            server_id=s.id, host=s.host,
            evidence={"fault": s.fault_message, "fault_code": s.fault_code, "fault_created": s.fault_created,
                      **_mig(m)})


# ---------------------------------------------------------------------- placement

def check_migration_allocations(ix: Index) -> Iterator[Finding]:
    for consumer, held in ix.consumers.items():
        m = ix.migration_by_uuid.get(consumer)
        if m is None or m.status not in TERMINAL or not ix.settled(m.updated_at):
            continue                   # a running migration holds the source: healthy
        if ix.snap.rechecked.get(consumer) == {}:
            continue                   # gone when looked at again
        yield finding(
            "migration-allocation-leaked",
            f"migration {m.id} of {m.server_id} is {m.status} but its consumer still holds "
            f"{', '.join(ix.where(held))}",
            f"openstack resource provider allocation delete {consumer}",
            server_id=m.server_id, host=m.source_host,
            evidence={**_mig(m), "consumer": consumer, "providers": ix.where(held),
                      "resources": {rp: dict(r) for rp, r in held.items()}})


def allocation_verdict(s: ServerState, ix: Index) -> Optional[tuple[str, str]]:
    """(class, reason) if the server's allocations do not match the node it runs on, else None."""
    if s.node is None or s.task_state is not None or ix.in_progress(s.id):
        return None                    # not placed, or busy: allocations are in motion
    node_rp = ix.node_rp.get(s.node)
    if node_rp is None:
        return None                    # a node Placement does not know: not ours to judge
    held = ix.consumers.get(s.id)
    if not held:
        return "server-allocation-missing", f"runs on {s.node} and holds no allocation"
    nodes = {ix.root(rp) for rp in held} & ix.node_roots   # sharing providers are not nodes
    if nodes - {node_rp} and not left_by_evacuation(s, nodes - {node_rp}, ix):
        return ("server-allocation-elsewhere",
                f"runs on {s.node} but holds allocations on {', '.join(ix.where(held))}")
    if node_rp not in nodes:
        return "server-allocation-missing", f"runs on {s.node} and holds no allocation there"
    return None


def left_by_evacuation(s: ServerState, others: set[str], ix: Index) -> bool:
    """The extra allocation is on the failed host the server was evacuated from, whose
    nova-compute is still down: Nova frees it itself when that nova-compute starts again."""
    m = ix.latest(s.id)
    if m is None or m.migration_type != "evacuation" or m.status not in ON_DEST:
        return False
    source = ix.services.get(m.source_host)
    return (source is not None and not source.up
            and all(ix.rp_host.get(rp) == m.source_host for rp in others))


def check_server_allocations(ix: Index) -> Iterator[Finding]:
    for s in ix.snap.servers:
        verdict = allocation_verdict(s, ix)
        if verdict is None or not ix.settled(s.updated):
            continue
        klass, why = verdict
        held = ix.consumers.get(s.id, {})
        yield finding(klass, f"{_who(s)} {why}",
                      f"nova-manage placement heal_allocations --instance {s.id}"
                      + (" --force" if held else "") + " (needs Nova's database)",
                      server_id=s.id, host=s.host,
                      evidence={"node": s.node, "providers": ix.where(held),
                                "resources": {rp: dict(r) for rp, r in held.items()}})


def unknown_consumers(ix: Index) -> list[str]:
    """Consumers that are neither a listed server nor a known migration (scan.py reads these
    again before judging: a server deleted during the scan is not drift)."""
    if not ix.migration_uuids_known:
        return []
    return sorted(c for c in ix.consumers if c not in ix.servers and c not in ix.migration_by_uuid)


def check_unknown_consumers(ix: Index) -> Iterator[Finding]:
    for consumer in unknown_consumers(ix):
        if ix.snap.rechecked.get(consumer) == {}:
            continue
        held = ix.consumers[consumer]
        yield finding("consumer-unknown",
                      f"consumer {consumer} is no server and no known migration but holds "
                      f"{', '.join(ix.where(held))}",
                      f"openstack resource provider allocation delete {consumer}",
                      host=next((ix.rp_host[r] for r in map(ix.root, held) if ix.rp_host.get(r)), None),
                      evidence={"consumer": consumer, "providers": ix.where(held),
                                "resources": {rp: dict(r) for rp, r in held.items()}})


# ---------------------------------------------------------------------- computes

def reporting(host: str, first: Optional[str], ix: Index) -> Optional[bool]:
    """True: its updated_at moved between the scan's two reads; False: it did not; None: one read."""
    again = ix.services_again.get(host)
    if again is None:
        return None
    return again.updated_at != first


def check_computes(ix: Index) -> Iterator[Finding]:
    for svc in ix.snap.services:
        again = ix.services_again.get(svc.host)
        moved = reporting(svc.host, svc.updated_at, ix)
        forced = svc.forced_down and (again is None or again.forced_down)
        if forced and moved:
            # Cleared by --fix only where novamove set it (unfence's rule): someone else's flag
            # (an operator, a fencing agent) is theirs to clear.
            ours = svc.host in ix.snap.forced_by_us
            yield finding(
                "compute-forced-down-reporting",
                f"{svc.host} is forced down but its nova-compute still reports "
                f"(updated_at {svc.updated_at} -> {again.updated_at})",
                f"{svc.host} is not fenced: power it off (or stop nova-compute) before evacuating it, or if "
                f"it is healthy clear the flag: openstack compute service set --up {svc.host} nova-compute"
                + ("" if ours else " (novamove did not force it down: whoever did clears it)"),
                host=svc.host, repairable=ours,
                evidence={"updated_at": [svc.updated_at, again.updated_at], "forced_down": True,
                          "forced_down_by_novamove": ours})
            continue
        held = ix.servers_on.get(svc.host, 0)
        if svc.enabled and (forced or svc.state == "down") and held and moved is not True:
            yield finding(
                "compute-down-holding-servers",
                f"{svc.host} is down and enabled and still holds {held} server(s)",
                f"fence {svc.host} and evacuate it: novamove evacuate {svc.host} --fence-cmd CMD "
                f"(or --fenced once it is powered off), or bring its nova-compute back",
                host=svc.host, evidence={"servers": held, "state": svc.state, "forced_down": svc.forced_down,
                                         "updated_at": svc.updated_at})
        if not svc.enabled:
            tagged = tag_verdict(svc.host, svc.disabled_reason, ix)
            if tagged is not None:
                yield tagged


def tag_verdict(host: str, reason: Optional[str], ix: Index) -> Optional[Finding]:
    """A disabled compute's novamove tag: a window left open, a dead run's, a finished drain's
    (information), or None (no tag, or its run is still at work)."""
    run = tags.reason_run_id(reason)
    if run is None:
        return None
    state = ix.snap.runs.get(run)
    evidence = {"disabled_reason": reason, "run_id": run, "run_state": state or "unknown (not in this journal)"}
    if tags.is_isolation_tag(reason):
        if state == RUN_ALIVE:
            return None
        known = state in (RUN_DEAD, RUN_FAILED, RUN_FINISHED)
        return finding("compute-isolation-left",
                       f"{host} is disabled by the isolation window of novamove run {run} "
                       f"({'which is over' if known else 'not in this machine journal'})",
                       f"openstack compute service set --enable {host} nova-compute" if known else
                       f"where run {run} ran: novamove recover; if that machine is gone: "
                       f"novamove recover --run {run} --break-lock",
                       host=host, repairable=known, safe=known, evidence=evidence)
    if state == RUN_ALIVE:
        return None                    # the run is at work here
    what = "drain" if tags.is_drain_tag(reason) else "evacuation"
    back = f"novamove undrain {host}" if what == "drain" else f"novamove unfence {host}"
    if tags.live_drain(reason, ix.snap.now) and state != RUN_DEAD:
        return None                    # a drain at work (its lease is fresh)
    lease = tags.lease_of(reason)
    died = state in (RUN_DEAD, RUN_FAILED) or lease is not None     # an expired lease: it died
    if died:
        return finding("compute-tag-dead-run",
                       f"{host} is disabled by novamove {what} run {run}, which "
                       f"{'failed' if state == RUN_FAILED else 'died'} before it finished",
                       f"run `novamove {'drain' if what == 'drain' else 'evacuate'} {host}` again to finish it, "
                       f"or put the host back with `{back}`", host=host,
                       evidence={**evidence, "lease": lease.isoformat() if lease else None})
    return finding("compute-held", f"{host} is kept disabled by finished novamove {what} run {run}",
                   f"{back} when the maintenance is over", host=host, evidence=evidence)


# ---------------------------------------------------------------------- all of them

CHECKS: tuple[Check, ...] = (check_verify_resize, check_task_state, check_stuck_migrations, check_misplaced,
                             check_migration_allocations, check_server_allocations, check_unknown_consumers,
                             check_computes, check_error_after_migration)


def detect(snap: Snapshot, opts: Options = Options(), checks: Iterable[Check] = CHECKS) -> list[Finding]:
    """Every finding of the snapshot, filtered by opts.hosts / opts.servers."""
    ix = Index(snap, opts)
    return [f for check in checks for f in check(ix) if in_scope(f, ix)]


def in_scope(f: Finding, ix: Index) -> bool:
    hosts, servers = ix.opts.hosts, ix.opts.servers
    if hosts and f.host not in hosts and not set(f.evidence.get("providers") or ()) & hosts:
        return False
    if servers:
        s = ix.servers.get(f.server_id or "")
        return f.server_id in servers or (s is not None and s.name in servers)
    return True
