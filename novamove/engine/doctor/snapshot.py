"""The cloud as one scan saw it (`Snapshot`), the scan's thresholds (`Options`), and the
indexes the verdicts look things up in (`Index`, built once: every lookup is a dict access,
so the analysis is linear in servers + migrations + allocations).

Pure data and pure functions: scan.py fills a Snapshot from the cloud, detect.py judges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Optional, Sequence

from novamove import errors
from novamove.engine.times import parse_time   # Nova's timestamps, as UTC
from novamove.model import Migration, ResourceProvider, ServerState, Service

DEFAULT_OLDER_THAN = 3600.0     # seconds: VERIFY_RESIZE and non-terminal migration records
SETTLE = 120.0                  # seconds: nothing younger is judged (a move that started or
                                # ended while the scan read the cloud is not drift)

# Nova's terminal migration statuses (nova/db/main/api.py, what placement audit counts as
# "not in progress") plus the ones novamove's model also treats as over.
TERMINAL = frozenset({"confirmed", "reverted", "error", "failed", "completed", "cancelled", "done",
                      "rejected", "aborted"})
# Where a server belongs after its latest migration ended.
ON_DEST = frozenset({"completed", "confirmed", "done", "finished"})
ON_SOURCE = frozenset({"reverted", "error", "failed", "cancelled", "rejected", "aborted"})

MOVING_TASK_STATES = frozenset({"migrating", "resize_prep", "resize_migrating", "resize_migrated",
                                "resize_finish", "resize_reverting", "resize_confirming"})
REBUILD_TASK_STATES = frozenset({"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"})

# Run states of the local journal, as scan.run_states gives them.
RUN_ALIVE, RUN_DEAD, RUN_FAILED, RUN_FINISHED = "alive", "dead", "failed", "finished"


@dataclass(frozen=True)
class Options:
    older_than: float = DEFAULT_OLDER_THAN
    settle: float = SETTLE
    hosts: frozenset = frozenset()       # only findings about these hosts (empty: all)
    servers: frozenset = frozenset()     # only findings about these servers (ids or names)

    def __post_init__(self) -> None:
        for name in ("older_than", "settle"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise errors.UsageError(f"--{name.replace('_', '-')} must be a number of seconds >= 0, "
                                        f"not {value!r}")


@dataclass(frozen=True)
class Snapshot:
    now: datetime                                   # Nova's clock when the scan ended (UTC)
    servers: Sequence[ServerState]
    migrations: Sequence[Migration]
    services: Sequence[Service]                     # first read
    hypervisors: Sequence[Mapping]                  # adapter.hypervisors() rows
    providers: Sequence[ResourceProvider]
    allocations: Mapping[str, Mapping[str, Mapping[str, float]]]   # provider -> consumer -> rc -> n
    services_again: Optional[Sequence[Service]] = None   # second read (heartbeats), if made
    rechecked: Mapping[str, Mapping] = field(default_factory=dict)  # consumer -> allocations read again
    runs: Mapping[str, str] = field(default_factory=dict)           # run id -> RUN_* (local journal)
    forced_by_us: frozenset = frozenset()   # forced-down hosts a novamove run of this journal forced down


def epoch(ts: Optional[str]) -> Optional[float]:
    """Seconds since the epoch of a Nova/Placement timestamp (naive means UTC), or None."""
    t = parse_time(ts)
    return None if t is None else t.timestamp()


def _migration_order(m: Migration) -> tuple:
    return (m.created_at or "", int(m.id) if m.id.isdigit() else 0)


class Index:
    """The lookups every verdict needs, built in one pass over each listing."""

    def __init__(self, snap: Snapshot, opts: Options):
        self.snap, self.opts = snap, opts
        self.now = snap.now.timestamp()
        self.servers = {s.id: s for s in snap.servers}
        self.migrations_of: dict[str, list[Migration]] = {}
        for m in snap.migrations:
            self.migrations_of.setdefault(m.server_id, []).append(m)
        for rows in self.migrations_of.values():
            rows.sort(key=_migration_order)
        self.migration_by_uuid = {m.uuid: m for m in snap.migrations if m.uuid}
        # A cloud below compute 2.59 gives migrations no uuid: their consumers cannot be told.
        self.migration_uuids_known = not snap.migrations or bool(self.migration_by_uuid)
        self.provider = {p.uuid: p for p in snap.providers}
        self.consumers: dict[str, dict[str, Mapping[str, float]]] = {}
        for rp, held in snap.allocations.items():
            for consumer, resources in held.items():
                self.consumers.setdefault(consumer, {})[rp] = resources
        by_name = {p.name: p.uuid for p in snap.providers}
        # compute node (hypervisor hostname) -> its provider (the root of its tree)
        self.node_rp: dict[str, str] = {}
        for h in snap.hypervisors:
            node = h.get("hypervisor_hostname")
            rp = h.get("id") if h.get("id") in self.provider else by_name.get(node)
            if node and rp:
                self.node_rp[node] = self.root(rp)
        self.node_roots = set(self.node_rp.values())
        self.rp_node = {rp: node for node, rp in self.node_rp.items()}
        node_host = {h.get("hypervisor_hostname"): h.get("host") for h in snap.hypervisors}
        self.rp_host = {rp: node_host.get(node) for node, rp in self.node_rp.items()}
        self.services = {s.host: s for s in snap.services}
        self.servers_on: dict[str, int] = {}
        for s in snap.servers:
            if s.host:
                self.servers_on[s.host] = self.servers_on.get(s.host, 0) + 1
        self.services_again = {s.host: s for s in snap.services_again or ()}

    def root(self, rp: str) -> str:
        p = self.provider.get(rp)
        return (p.root_uuid or rp) if p else rp

    def latest(self, server_id: str) -> Optional[Migration]:
        rows = self.migrations_of.get(server_id)
        return rows[-1] if rows else None

    def in_progress(self, server_id: str) -> list[Migration]:
        """Migrations of the server Nova still counts as running (`finished`, a cold move
        waiting for its confirm, among them)."""
        return [m for m in self.migrations_of.get(server_id, ()) if m.status not in TERMINAL]

    def age(self, ts: Optional[str]) -> Optional[float]:
        """Seconds between `ts` and the scan's `now` (Nova's clock), None if unknown."""
        t = epoch(ts)
        return None if t is None else self.now - t

    def settled(self, *stamps: Optional[str]) -> bool:
        """Every known stamp is older than the settle time (unknown ones do not block)."""
        return all(a is None or a >= self.opts.settle for a in map(self.age, stamps))

    def older(self, ts: Optional[str]) -> bool:
        """Older than --older-than (0: any age, an unknown one too)."""
        a = self.age(ts)
        return self.opts.older_than == 0 or (a is not None and a >= self.opts.older_than)

    def where(self, rps) -> list[str]:
        """Provider uuids as names, each once (a node's own tree by the node's name)."""
        return sorted({self.rp_node.get(self.root(rp)) or (self.provider[rp].name if rp in self.provider else rp)
                       for rp in rps})
