"""Pre-checks and choices made before anything changes: pure functions over model values.

Each check raises a novamove.errors subclass with a one-line message that says what is wrong
and, where there is one, what to do instead.
"""

from __future__ import annotations

from typing import Optional

from novamove import errors, refusals
from novamove.model import COLD, LIVE, Host, Resources, Server, ServerGroup

MODES = ("auto", LIVE, COLD)
STRATEGIES = ("auto", "native", "isolate")

# vm states Nova accepts for each move (nova/compute/api.py @check_instance_state).
LIVE_STATUSES = {"ACTIVE", "PAUSED"}
COLD_STATUSES = {"ACTIVE", "SHUTOFF"}


def choose_mode(server: Server, requested: str = "auto") -> str:
    """live for ACTIVE, cold for SHUTOFF by default; refuse what Nova would refuse."""
    if requested not in MODES:
        raise errors.UsageError(f"unknown mode {requested!r} (choose one of {', '.join(MODES)})")
    if server.task_state:
        raise errors.PreconditionFailed(
            f"server {server.name} is busy (task state {server.task_state}); wait for it to finish")
    if requested == "auto":
        if server.status in LIVE_STATUSES:
            return LIVE
        if server.status in COLD_STATUSES:
            return COLD
        hint = ("; confirm or revert its pending move first (novamove confirm/revert)"
                if server.status == "VERIFY_RESIZE" else "")
        raise errors.PreconditionFailed(
            f"server {server.name} is {server.status}: only ACTIVE/PAUSED (live) or SHUTOFF (cold) "
            f"servers can be moved{hint}")
    allowed = LIVE_STATUSES if requested == LIVE else COLD_STATUSES
    if server.status not in allowed:
        hint = " (use --cold)" if requested == LIVE and server.status in COLD_STATUSES else ""
        raise errors.PreconditionFailed(
            f"cannot {requested}-migrate server {server.name}: it is {server.status}{hint}")
    return requested


def choose_strategy(requested: str, mode: str, supports: "callable",
                    capped: Optional["callable"] = None) -> str:
    """native when the API can target a host for this mode, isolate otherwise or when asked.

    `supports(microversion)` says whether novamove may use a compute microversion;
    `capped(microversion)` whether the cloud offers it but the user's ceiling
    (--os-compute-api-version, OS_COMPUTE_API_VERSION, clouds.yaml compute_api_version) forbids
    it. `auto` falls back to isolate only for the cloud's own limit: isolate disables every other
    compute while the scheduler decides, which a version option must never quietly cause.
    """
    if requested not in STRATEGIES:
        raise errors.UsageError(f"unknown strategy {requested!r} (choose one of {', '.join(STRATEGIES)})")
    needed = "2.30" if mode == LIVE else "2.56"
    if supports(needed) or requested == "isolate":
        return "native" if requested == "auto" else requested
    if capped is not None and capped(needed):
        raise errors.PreconditionFailed(
            f"a {mode} migration to a named host needs compute API {needed}, above the compute API "
            f"version you set; raise it, or ask for --strategy isolate (it disables every other "
            "compute while the scheduler decides)")
    if requested == "native":
        raise errors.PreconditionFailed(
            f"native {mode} migration to a named host needs compute API {needed}; "
            "use --strategy isolate (or auto)")
    return "isolate"


def check_target(server: Server, target: Host) -> None:
    """The target must be a different, enabled, up compute service."""
    if server.host == target.name:
        raise errors.PreconditionFailed(f"server {server.name} is already on {target.name}")
    if not target.service.up:
        raise errors.PreconditionFailed(
            f"target {target.name} is down (its nova-compute service is not reporting)")
    if not target.service.enabled:
        reason = f" ({target.service.disabled_reason})" if target.service.disabled_reason else ""
        raise errors.PreconditionFailed(f"target {target.name} is disabled{reason}; enable it first")


def check_source(server: Server, source: Optional[Host]) -> None:
    """Nova moves a server (cold or live) only while the compute it is on is up."""
    if source is not None and not source.service.up:
        raise errors.PreconditionFailed(
            f"{server.name}'s host {source.name} is down (its nova-compute service is not "
            "reporting): Nova moves no server off a down compute; bring it back up, or evacuate")


def check_capacity(server: Server, target: Host, max_unit: Optional[Resources] = None) -> None:
    """The target's placement inventory (x allocation ratio - reserved - used) fits the flavor."""
    if server.flavor is None:
        return  # nothing to compare; the scheduler will decide and we report its reason
    need = server.flavor.resources_for(server.volume_backed)
    missing = target.free.shortfall(need)
    if max_unit is not None:
        for name in ("vcpus", "memory_mb", "disk_gb"):
            limit, want = getattr(max_unit, name), getattr(need, name)
            if limit and want > limit:
                missing.append(f"{name} {want:g} exceeds the per-instance maximum {limit:g}")
    if missing:
        if need.pcpus and any(m.startswith("pcpus ") for m in missing):
            # Nova's scheduler: placement has no PCPU candidate there, "No valid host was found".
            missing = [m + " (dedicated CPUs: hw:cpu_policy=dedicated allocates placement's PCPU)"
                       if m.startswith("pcpus ") else m for m in missing]
        raise errors.NoCapacity(
            f"target {target.name} has no room for {server.name} (flavor {server.flavor.name}): "
            + "; ".join(missing))


def refusal(server: Server, target: Host, mode: str, traits: Optional[frozenset[str]],
            groups: list[ServerGroup], host_of: dict[str, Optional[str]],
            zone_hosts: Optional[set[str]] = None) -> Optional[str]:
    """Nova's reason (its words first) to refuse moving `server` to `target` in `mode`, or None."""
    if mode == LIVE:
        why = refusals.live_refusal(server)
        if why:
            return why + "; a cold migration (--cold) moves it, with a restart"
    return (refusals.zone_refusal(server, target.name, target.zone, zone_hosts)
            or refusals.trait_refusal(server, target.name, traits)
            or refusals.group_refusal(server, target.name, groups, host_of))


def check_refusals(server: Server, target: Host, mode: str, traits: Optional[frozenset[str]],
                   groups: list[ServerGroup], host_of: dict[str, Optional[str]],
                   zone_hosts: Optional[set[str]] = None) -> None:
    """Raise PreconditionFailed (exit 4) with Nova's reason when Nova would refuse the move:
    predicted here, before any request, instead of discovered after it (novamove.refusals)."""
    why = refusal(server, target, mode, traits, groups, host_of, zone_hosts)
    if why:
        raise errors.PreconditionFailed(f"Nova would refuse to move {server.name} to {target.name}: {why}")


def scheduler_candidates(server: Server, hosts: list[Host]) -> tuple[list[str], list[str]]:
    """Without a named target: the computes that pass the same pre-checks a named target
    would (another host, enabled, up, room for the flavor), and why each other one does not.
    The scheduler decides among the first list; its filters may narrow it further."""
    passing, refused = [], []
    for host in sorted(hosts, key=lambda h: h.name):
        if host.name == server.host:
            continue
        try:
            check_target(server, host)
            check_capacity(server, host)
        except errors.PreconditionFailed as exc:
            refused.append(str(exc))
            continue
        passing.append(host.name)
    return passing, refused


def check_unnamed_strategy(requested: str) -> str:
    """Without --to Nova's scheduler chooses: isolate (which needs a target to keep enabled)
    is refused, native and auto become the scheduler's choice."""
    if requested not in STRATEGIES:
        raise errors.UsageError(f"unknown strategy {requested!r} (choose one of {', '.join(STRATEGIES)})")
    if requested == "isolate":
        raise errors.UsageError("--strategy isolate needs a target: name it with --to HOST "
                                "(without --to Nova's scheduler chooses)")
    return "scheduler"
