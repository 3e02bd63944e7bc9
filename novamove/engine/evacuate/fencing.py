"""Preconditions of an evacuation: fencing proven (never inferred), the stop-loss, the fence command."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable, Optional, Sequence

from novamove import errors
from novamove.engine.times import parse_time as _parse_time
from novamove.engine.commands import command_env, run_in_group
from novamove.model import Host, Service
from novamove.engine.evacuate.common import FENCE_TIMEOUT, QUIET_PERIOD

# While the quiet period is waited out, Nova's view of a compute not forced down is read this
# often (one service listing): a compute Nova shows down is proof at once, as it is at the start.
DOWN_CHECK_EVERY = 3.0
from novamove.engine.evacuate.service import _service


# ---------------------------------------------------------------------------------- preconditions

def _is_down(svc: Service) -> bool:
    return svc.forced_down or svc.state != "up"


def check_stop_loss(services: Sequence[Service], name: str, max_down_percent: float) -> str:
    """Refuse when more than `max_down_percent` of the computes would be down at once."""
    total = len(services)
    down = sorted({s.host for s in services if _is_down(s)} | {name})
    share = 100.0 * len(down) / total if total else 100.0
    if share > max_down_percent:
        raise errors.PreconditionFailed(
            f"stop-loss: {len(down)} of {total} computes would be down at once ({', '.join(down[:8])}"
            f"{', ...' if len(down) > 8 else ''}), more than {max_down_percent:g}%: that looks like a "
            "network or control-plane problem, not host failures; nothing changed "
            "(--max-down-percent to override)")
    return f"{len(down)} of {total} computes down ({share:.0f}%, limit {max_down_percent:g}%)"


def quiet_period_default(value: Optional[float] = None) -> float:
    """--quiet-period, else NOVAMOVE_QUIET_PERIOD, else QUIET_PERIOD (a rerun by `recover` reads
    the same variable)."""
    if value is not None:
        return float(value)
    env = os.environ.get("NOVAMOVE_QUIET_PERIOD")
    if not env:
        return QUIET_PERIOD
    try:
        return float(env)
    except ValueError:
        raise errors.UsageError(f"NOVAMOVE_QUIET_PERIOD={env!r} is not a number of seconds") from None


def check_fencing(svc: Service, *, fenced: bool, fence_cmd: Optional[str]) -> str:
    """How the host is known fenced; refuses a compute that is not.

    "Down per Nova" is no proof: a crashed nova-compute or a host cut off from RabbitMQ is
    down to Nova while its guests still run, and evacuating them starts them twice on shared
    storage. Only the operator's word (`fenced`), a fence command that exits 0, or a forced_down
    already set counts; `prove_quiet` then checks that the compute has stopped reporting."""
    if svc.forced_down:
        return f"{svc.host} is already forced down"
    if fence_cmd:
        return f"{svc.host} will be fenced by the fence command"
    if fenced:
        return f"{svc.host} fenced (asserted by the operator)"
    state = "down per Nova" if svc.state != "up" else "up"
    raise errors.PreconditionFailed(
        f"{svc.host} is not fenced ({state}{', its guests may still run' if state != 'up' else ''}): "
        "refusing to evacuate, they would run twice; fence it with --fence-cmd CMD, or power it off "
        "and pass --fenced; nothing changed")


def prove_quiet(cloud: Any, name: str, quiet_period: float, *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> str:
    """Proof that the compute has stopped reporting, or PreconditionFailed.

    Nova's view counts when it is its own: a service that is not forced down and shows down has
    not reported for service_down_time (at the start, or when Nova says so while the quiet
    period runs: read every DOWN_CHECK_EVERY seconds). Otherwise (up, or forced down, which hides the state)
    the service's `updated_at` must not advance for `quiet_period` seconds, measured in Nova's
    clock (the answers' Date header) where the cloud gives it, so a report from long ago is
    proof at once and a fresh one is waited out. Call it before novamove changes the service:
    its own PUTs move updated_at too."""
    svc = _service(cloud, name)
    if not svc.forced_down and svc.state != "up":
        return f"Nova shows it down (last report {svc.updated_at or 'never'})"
    first = cloud.compute_service_heartbeat(name)
    now_fn = getattr(cloud, "cloud_now", None)
    waited = 0.0
    t0 = clock()
    looked = t0
    while True:
        if not svc.forced_down and clock() - looked >= DOWN_CHECK_EVERY:
            # Nova's own verdict, when it comes first (its service_down_time can be shorter than
            # the quiet period): the heartbeat has not moved since (checked below at each read).
            looked = clock()
            again = _service(cloud, name)
            if not again.forced_down and again.state != "up":
                return f"Nova shows it down (last report {again.updated_at or 'never'}) after {looked - t0:.0f} s"
        nova_now = now_fn() if now_fn else None
        last = _parse_time(first)
        if nova_now is not None and last is not None:
            quiet_for = (nova_now - last).total_seconds()
        else:
            quiet_for = waited
        if quiet_for >= quiet_period:
            return (f"no report for {quiet_for:.0f} s (last {first or 'never'}"
                    f"{', in Nova clock' if nova_now is not None else ''}; quiet period {quiet_period:g} s)")
        sleep(min(1.0, quiet_period - quiet_for + 0.1))
        waited = clock() - t0
        now = cloud.compute_service_heartbeat(name)
        if now != first:
            how = "forced down but" if svc.forced_down else "fenced but"
            raise errors.PreconditionFailed(
                f"{name} is {how} its nova-compute still reports (updated_at {first} -> {now}): "
                "it is not fenced, its guests may still run; refusing to evacuate; power the host off "
                "(check the fence command) and run evacuate again; nothing changed in the cloud")


def run_fence(cmd: str, host: Host, timeout: float = FENCE_TIMEOUT) -> str:
    """Run the operator's fence command (shell) with NOVAMOVE_HOST/NOVAMOVE_HYPERVISOR set and
    novamove's secrets left out, in its own process group (killed whole on timeout)."""
    import tempfile
    env = command_env({"NOVAMOVE_HOST": host.name, "NOVAMOVE_HYPERVISOR": host.hypervisor_hostname or host.name})
    with tempfile.TemporaryFile(mode="w+") as out:
        code = run_in_group(cmd, env, timeout, stdout=out, stderr=subprocess.STDOUT)
        out.seek(0)
        text = out.read()
    if code is None:
        raise errors.PreconditionFailed(f"fence command did not finish within {timeout:.0f} s: "
                                        f"{host.name} is not known fenced; nothing changed in the cloud")
    if code != 0:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        raise errors.PreconditionFailed(
            f"fence command exited {code}" + (f" ({last.strip()[:200]})" if last else "")
            + f": {host.name} is not known fenced; nothing changed in the cloud")
    return "fence command exited 0"


