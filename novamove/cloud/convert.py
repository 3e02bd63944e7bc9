"""Nova/Placement JSON -> novamove.model values.

Pure functions: no API calls, so they are unit-tested with recorded bodies.
"""

from __future__ import annotations

from typing import Any, Optional

from novamove.model import Flavor, Migration, Resources, Server, Service

# Placement resource classes novamove reasons about, mapped to Resources fields.
RESOURCE_CLASSES = {"VCPU": "vcpus", "MEMORY_MB": "memory_mb", "DISK_GB": "disk_gb", "PCPU": "pcpus"}


def flavor_from_api(body: Optional[dict]) -> Optional[Flavor]:
    """The embedded flavor of a server (microversion >= 2.47) or a /flavors/{id} body."""
    if not body or "vcpus" not in body:
        return None
    return Flavor(
        name=body.get("original_name") or body.get("name") or body.get("id") or "?",
        vcpus=int(body.get("vcpus") or 0),
        ram=int(body.get("ram") or 0),
        disk=int(body.get("disk") or 0),
        ephemeral=int(body.get("ephemeral") or body.get("OS-FLV-EXT-DATA:ephemeral") or 0),
        # Nova answers "" for "no swap" on old microversions.
        swap=int(body.get("swap") or 0),
        # Embedded flavors carry extra_specs from 2.61 on (and /flavors/{id} bodies with 2.61).
        dedicated_cpus=str((body.get("extra_specs") or {}).get("hw:cpu_policy", "")).lower() == "dedicated",
        required_traits=_traits(body, "required"),
        forbidden_traits=_traits(body, "forbidden"),
    )


def _traits(body: dict, value: str) -> frozenset:
    """The traits a flavor's `trait:NAME` extra specs set to `value` (required | forbidden)."""
    specs = body.get("extra_specs") or {}
    return frozenset(k[len("trait:"):] for k, v in specs.items()
                     if isinstance(k, str) and k.startswith("trait:") and str(v).lower() == value)


def server_from_api(body: dict[str, Any], flavor: Optional[Flavor] = None) -> Server:
    fault = body.get("fault") or {}
    return Server(
        id=body["id"],
        name=body.get("name") or "",
        status=body.get("status") or "UNKNOWN",
        host=body.get("OS-EXT-SRV-ATTR:host"),
        hypervisor_hostname=body.get("OS-EXT-SRV-ATTR:hypervisor_hostname"),
        task_state=body.get("OS-EXT-STS:task_state"),
        power_state=body.get("OS-EXT-STS:power_state"),
        vm_state=body.get("OS-EXT-STS:vm_state"),
        flavor=flavor or flavor_from_api(body.get("flavor")),
        project_id=body.get("tenant_id") or body.get("project_id"),
        zone=body.get("OS-EXT-AZ:availability_zone"),
        server_groups=tuple(body.get("server_groups") or ()),
        fault=fault.get("message") if isinstance(fault, dict) else None,
        # Nova shows "" (not an image) for a server booted from a volume.
        volume_backed=not body.get("image"),
        tags=tuple(body.get("tags") or ()),
    )


def service_from_api(body: dict[str, Any]) -> Service:
    return Service(
        id=str(body["id"]),
        host=body["host"],
        binary=body.get("binary") or "nova-compute",
        zone=body.get("zone"),
        status=body.get("status") or "enabled",
        state=body.get("state") or "up",
        disabled_reason=body.get("disabled_reason"),
        forced_down=bool(body.get("forced_down")),
        updated_at=body.get("updated_at"),
    )


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def migration_from_api(body: dict[str, Any], server_id: Optional[str] = None) -> Migration:
    """A row of /os-migrations or /servers/{id}/migrations.

    `source_host`/`dest_host` carry Nova's *compute* names (source_compute/dest_compute: the
    service hosts), not its dest_host field, which is an IP address; `source_node`/`dest_node`
    are the hypervisor hostnames (compute nodes) Nova records beside them.
    """
    return Migration(
        id=str(body["id"]),
        server_id=body.get("instance_uuid") or body.get("server_uuid") or server_id or "",
        source_host=body.get("source_compute"),
        dest_host=body.get("dest_compute"),
        status=body.get("status") or "unknown",
        # /servers/{id}/migrations lists live migrations only and has no migration_type.
        migration_type=body.get("migration_type") or "live-migration",
        uuid=body.get("uuid"),
        created_at=body.get("created_at"),
        updated_at=body.get("updated_at"),
        memory_total_bytes=_int_or_none(body.get("memory_total_bytes")),
        memory_remaining_bytes=_int_or_none(body.get("memory_remaining_bytes")),
        disk_total_bytes=_int_or_none(body.get("disk_total_bytes")),
        disk_remaining_bytes=_int_or_none(body.get("disk_remaining_bytes")),
        source_node=body.get("source_node") or None,
        dest_node=body.get("dest_node") or None,
    )


def capacity_from_inventories(inventories: dict[str, dict]) -> Resources:
    """What the scheduler may place on a provider: (total - reserved) x allocation_ratio."""
    values = {}
    for rc, attr in RESOURCE_CLASSES.items():
        inv = inventories.get(rc)
        if inv is None:
            values[attr] = 0
            continue
        values[attr] = (inv.get("total", 0) - inv.get("reserved", 0)) * float(
            inv.get("allocation_ratio", 1.0))
    return Resources(**values)


def max_unit_from_inventories(inventories: dict[str, dict]) -> Resources:
    """The largest single allocation a provider accepts per class (placement's max_unit)."""
    values = {}
    for rc, attr in RESOURCE_CLASSES.items():
        inv = inventories.get(rc)
        values[attr] = float(inv.get("max_unit", inv.get("total", 0))) if inv else 0
    return Resources(**values)


def used_from_usages(usages: dict[str, float]) -> Resources:
    return Resources(**{attr: usages.get(rc, 0) for rc, attr in RESOURCE_CLASSES.items()})
