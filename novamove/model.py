"""The domain model: plain, typed values with no API calls in them.

The cloud adapter builds these from openstacksdk resources; strategies, the engine and the
planner only ever see these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

# Nova service/host vocabulary
ENABLED = "enabled"
DISABLED = "disabled"
UP = "up"
DOWN = "down"

LIVE = "live"
COLD = "cold"

# Migration statuses that mean "over" (nova/objects/migration.py and the API ref).
MIGRATION_DONE = {"completed", "confirmed", "finished"}
MIGRATION_FAILED = {"error", "failed", "cancelled", "reverted", "rejected", "aborted"}


@dataclass(frozen=True)
class Resources:
    vcpus: float = 0
    memory_mb: float = 0
    disk_gb: float = 0
    pcpus: float = 0       # dedicated CPUs (placement PCPU: flavors with hw:cpu_policy=dedicated)

    FIELDS = ("vcpus", "memory_mb", "disk_gb", "pcpus")

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.vcpus + other.vcpus, self.memory_mb + other.memory_mb,
                         self.disk_gb + other.disk_gb, self.pcpus + other.pcpus)

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(self.vcpus - other.vcpus, self.memory_mb - other.memory_mb,
                         self.disk_gb - other.disk_gb, self.pcpus - other.pcpus)

    def fits(self, need: "Resources") -> bool:
        return (need.vcpus <= self.vcpus and need.memory_mb <= self.memory_mb
                and need.disk_gb <= self.disk_gb and need.pcpus <= self.pcpus)

    def shortfall(self, need: "Resources") -> list[str]:
        """Human-readable list of what is missing for `need` (empty if it fits)."""
        out = []
        for name in self.FIELDS:
            have, want = getattr(self, name), getattr(need, name)
            if want > have:
                out.append(f"{name} {want:g} needed, {max(have, 0):g} free")
        return out


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram: int       # MB
    disk: int      # GB (root) ; ephemeral and swap are added in `resources`
    ephemeral: int = 0
    swap: int = 0  # MB
    dedicated_cpus: bool = False   # hw:cpu_policy=dedicated: placement allocates PCPU, not VCPU
    # trait:NAME=required / =forbidden extra specs: a host's provider must have / lack NAME
    required_traits: frozenset = frozenset()
    forbidden_traits: frozenset = frozenset()

    @property
    def resources(self) -> Resources:
        return self.resources_for(volume_backed=False)

    def resources_for(self, volume_backed: bool) -> Resources:
        """What placement allocates on the host for a server of this flavor: a volume-backed
        server's root disk lives in the block storage, not on the host's DISK_GB."""
        disk = (0 if volume_backed else self.disk) + self.ephemeral
        if self.dedicated_cpus:
            return Resources(0, self.ram, disk, self.vcpus)
        return Resources(self.vcpus, self.ram, disk)


@dataclass(frozen=True)
class Service:
    """A nova-compute service record (os-services)."""
    id: str
    host: str
    binary: str = "nova-compute"
    zone: Optional[str] = None
    status: str = ENABLED          # enabled | disabled
    state: str = UP                # up | down
    disabled_reason: Optional[str] = None
    forced_down: bool = False
    updated_at: Optional[str] = None   # the service's last report (campaign gates read it)

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED

    @property
    def up(self) -> bool:
        return self.state == UP and not self.forced_down


@dataclass(frozen=True)
class Host:
    """A compute node: its service (scheduling switch) and its hypervisor (capacity).

    `name` is the service host (what the migrate APIs take); `hypervisor_hostname` is the
    node name, which real clouds often spell differently (FQDN vs short name).
    """
    name: str
    service: Service
    hypervisor_hostname: Optional[str] = None
    capacity: Resources = Resources()   # inventory x allocation ratio - reserved
    used: Resources = Resources()       # placement usages

    @property
    def free(self) -> Resources:
        return self.capacity - self.used

    @property
    def zone(self) -> Optional[str]:
        return self.service.zone


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    status: str                    # ACTIVE, SHUTOFF, VERIFY_RESIZE, ...
    host: Optional[str]            # service host (OS-EXT-SRV-ATTR:host)
    hypervisor_hostname: Optional[str] = None
    task_state: Optional[str] = None
    power_state: Optional[int] = None
    vm_state: Optional[str] = None
    flavor: Optional[Flavor] = None
    project_id: Optional[str] = None
    zone: Optional[str] = None
    server_groups: tuple[str, ...] = ()
    fault: Optional[str] = None
    volume_backed: bool = False    # booted from volume: no local root disk on the host
    tags: tuple[str, ...] = ()     # server tags (microversion >= 2.26): campaign intents

    POWER_STATES = {0: "NOSTATE", 1: "RUNNING", 3: "PAUSED", 4: "SHUTDOWN", 6: "CRASHED", 7: "SUSPENDED"}

    @property
    def power(self) -> str:
        return self.POWER_STATES.get(self.power_state or 0, str(self.power_state))

    def replace(self, **changes) -> "Server":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ServerGroup:
    id: str
    name: str
    policy: str                    # affinity | anti-affinity | soft-affinity | soft-anti-affinity
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Migration:
    id: str
    server_id: str
    source_host: Optional[str]
    dest_host: Optional[str]
    status: str
    migration_type: str            # migration | live-migration | resize | evacuation
    uuid: Optional[str] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    memory_total_bytes: Optional[int] = None
    memory_remaining_bytes: Optional[int] = None
    disk_total_bytes: Optional[int] = None
    disk_remaining_bytes: Optional[int] = None
    source_node: Optional[str] = None     # hypervisor hostnames (compute nodes), when Nova says
    dest_node: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.status in MIGRATION_DONE

    @property
    def failed(self) -> bool:
        return self.status in MIGRATION_FAILED

    @property
    def in_progress(self) -> bool:
        return not (self.done or self.failed)


@dataclass
class PlanStep:
    """One server's move in a plan: data, so a plan can be saved, reviewed and applied later."""
    server_id: str
    server_name: str
    source: str
    dest: Optional[str]            # None: not movable (see `skip_reason`)
    mode: str                      # live | cold
    skip_reason: Optional[str] = None
    need: Resources = field(default_factory=Resources)


@dataclass
class Plan:
    kind: str                      # "drain" | "batch"
    source: Optional[str] = None
    steps: list[PlanStep] = field(default_factory=list)
    created_at: Optional[str] = None


# ---------------------------------------------------------------------- drift (novamove doctor)

@dataclass(frozen=True, slots=True)
class ServerState:
    """A server as the drift scan reads it from the servers listing: where Nova says it is,
    what it is doing and since when, and its last fault (Nova shows one for servers in ERROR)."""
    id: str
    name: str
    status: str
    host: Optional[str]                # service host (OS-EXT-SRV-ATTR:host)
    node: Optional[str] = None         # hypervisor hostname (OS-EXT-SRV-ATTR:hypervisor_hostname)
    vm_state: Optional[str] = None
    task_state: Optional[str] = None
    power_state: Optional[int] = None
    updated: Optional[str] = None      # Nova's `updated`: moves with every state change
    project_id: Optional[str] = None
    fault_message: Optional[str] = None
    fault_code: Optional[int] = None
    fault_created: Optional[str] = None
    fault_details: Optional[str] = None


@dataclass(frozen=True, slots=True)
class ResourceProvider:
    """A Placement resource provider; root/parent from placement 1.14 (None before)."""
    uuid: str
    name: str
    generation: Optional[int] = None
    root_uuid: Optional[str] = None
    parent_uuid: Optional[str] = None


@dataclass(frozen=True, slots=True)
class ConsumerAllocations:
    """GET /allocations/{consumer}: what one consumer holds, by provider, and the consumer
    generation a guarded write must send back (placement 1.28; None before)."""
    consumer: str
    allocations: dict            # {provider uuid: {resource class: amount}}
    generation: Optional[int] = None
    project_id: Optional[str] = None
    user_id: Optional[str] = None
