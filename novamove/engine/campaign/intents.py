"""The pure part of a maintenance campaign: which hosts, in which order, in which stages, and
whether the cloud can absorb each stage (N+K). No API calls, no clock: tests and the
`--dry-run` of `novamove maintain` use the same functions as the runner's pre-flight check.

    plan = plan_campaign(state, ["c1", "c2", "c3"], max_hosts=2)
    plan.ok, plan.stages[0].hosts, plan.estimate_seconds

Per-server intent comes from a server tag `novamove:maintenance=<intent>`:
- `live` / `cold`: the server is moved in that mode only (a live intent on a SHUTOFF server
  cannot be honoured: the host is then not serviced); `live` is never moved cold, not even
  after a stall (engine/stall.py);
- `live-strict`: as `live` for planning, and a stalled live move of it is never force-completed
  nor switched to post-copy: it is aborted and stays (engine/stall.py reads the tag itself);
- `stop`: the server is not moved; it is powered off in place before the hook and started
  again after the gate (for servers that cannot move);
- `skip`: the server is never touched, and the host holding it is not serviced unless the
  operator allows it (`allow_skip`), in which case it stays on the host, running, during the hook.

Stages: the ordered hosts are cut into stages of at most `max_hosts`; every stage is planned
with `novamove.planner.plan_drain` over the state as the earlier stages left it (their servers
moved), with the stage's own hosts out of service: a stage whose servers do not all find a
destination fails the N+K check with the numbers.
"""


from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional, Sequence

from novamove.errors import NotFound, UsageError
from novamove.model import COLD, LIVE, Host, Server


from novamove.engine.tags import is_drain_tag, reason_run_id

_LEASE_SUFFIX = re.compile(r" \[lease [^\]]*\]$")

# The per-server intent tag is read in engine/intents.py (rebalance reads it too).
from novamove.engine.intents import INTENT_KEY, INTENTS, intents_of, server_intent  # noqa: E402,F401
STOP, SKIP = "stop", "skip"
ORDERS = ("fewest", "name", "given")

# Estimate defaults (seconds): a move, a hook (a reboot), the gate after it.
MOVE_SECONDS = 30.0
HOOK_SECONDS = 300.0
GATE_SECONDS = 30.0


def select_hosts(hosts: Sequence[Host], names: Sequence[str] = (), *, zone: Optional[str] = None,
                 aggregate_hosts: Optional[Sequence[str]] = None, all_hosts: bool = False) -> list[str]:
    """The service host names a campaign covers, in the order given (names first, then the
    selection by name). Hypervisor hostnames are accepted for names. Bad input raises."""
    if not names and zone is None and aggregate_hosts is None and not all_hosts:
        raise UsageError("name the hosts to maintain, or select them with --zone, --aggregate or --all")
    by_name = {h.name: h for h in hosts}
    by_node = {h.hypervisor_hostname: h.name for h in hosts if h.hypervisor_hostname}
    chosen: list[str] = []
    typed: dict[str, str] = {}
    for n in names:
        if n in by_name:
            host = n
        elif n in by_node:
            host = by_node[n]
        else:
            raise NotFound(f"no compute host named {n!r}")
        if host in typed:
            # (a host twice, or by its name and by its hypervisor hostname: a typo, likely)
            raise UsageError(f"{host} is named twice ({typed[host]!r} and {n!r}): name each host once")
        typed[host] = n
        chosen.append(host)
    selected = list(by_name) if all_hosts else None
    if zone is not None:
        in_zone = [h.name for h in hosts if h.zone == zone]
        if not in_zone:
            raise NotFound(f"no compute host in availability zone {zone!r}")
        selected = [n for n in (selected or in_zone) if n in set(in_zone)]
    if aggregate_hosts is not None:
        agg = [by_node.get(a, a) for a in aggregate_hosts]
        agg = [a for a in agg if a in by_name]
        if not agg:
            raise NotFound("the aggregate holds no compute host of this cloud")
        selected = [n for n in (selected if selected is not None else sorted(agg)) if n in set(agg)]
    if selected is not None:
        chosen.extend(sorted(selected))
    out = list(dict.fromkeys(chosen))
    if not out:
        raise UsageError("the selection holds no host")
    return out


def campaign_owns(disabled_reason: Optional[str], run_id: str) -> bool:
    """The campaign's own tag, or that of a drain it ran on the host (the drain holds the host
    under its own run id and lease, and names the campaign in its reason: `maintain <run>`)."""
    if not run_id:
        return False
    if reason_run_id(disabled_reason) == run_id:
        return True
    # Exactly a drain's tag whose reason is this campaign ("novamove:<drain>: drain: maintain <run>
    # [lease ...]"), never a substring: another run id that starts with ours, or an operator's
    # own words that happen to mention the run, is not ours.
    if not is_drain_tag(disabled_reason):
        return False
    text = (disabled_reason or "").split(": drain: ", 1)[1]
    text = _LEASE_SUFFIX.sub("", text)
    return text == f"maintain {run_id}"


def order_hosts(hosts: Sequence[str], counts: Mapping[str, int], order: str = "fewest") -> list[str]:
    """Empty hosts first (nothing to move, the quickest win), then by `order`: fewest servers
    first, by name, or as given. Stable: ties keep the given order."""
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}: expected one of {', '.join(ORDERS)}")
    pos = {h: i for i, h in enumerate(hosts)}
    if order == "fewest":
        key = lambda h: (counts.get(h, 0) > 0, counts.get(h, 0), pos[h])  # noqa: E731
    elif order == "name":
        key = lambda h: (counts.get(h, 0) > 0, h)  # noqa: E731
    else:
        key = lambda h: (counts.get(h, 0) > 0, pos[h])  # noqa: E731
    return sorted(hosts, key=key)


