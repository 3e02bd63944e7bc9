"""The reads `novamove doctor` makes: whole-cloud listings, every page, no per-server loops.

Mixed into `Cloud` (novamove/cloud/adapter.py), so each verb runs through the adapter's own
plumbing: `_compute_pages` follows Nova's "next" links, `_request` maps every HTTP, transport
and auth failure to a novamove.errors subclass (a 503 is errors.Unreachable, which
novamove.retry.patiently rides out), the request counter counts each request and keeps the
answers' Date header (Nova's clock, `cloud_now`).

All of them are raw REST, for the same reason as the adapter's hot listings: an openstacksdk
Resource per row costs a fraction of a millisecond of CPU, and these listings are the whole
cloud (200,000 servers is 200,000 Resources). Nova's and Placement's JSON is what the pure
converters below read.

The number of requests grows with pages and hosts, never with servers:
  servers      GET /servers/detail?all_tenants=1            pages of [api] max_limit
  migrations   GET /os-migrations                           pages (2.59+; one answer before)
  providers    GET /resource_providers                      one request
  allocations  GET /resource_providers/{uuid}/allocations   one per provider
A consumer's own allocations (GET /allocations/{consumer}) are read only for the few
consumers a finding is about: to look again, and for the generation a repair must send.
"""

from __future__ import annotations

from typing import Any

from novamove.cloud import convert
from novamove.cloud.convert import _int_or_none
from novamove.model import ConsumerAllocations, Migration, ResourceProvider, ServerState

# Placement microversions the doctor reads at (placement API reference).
PMV_BASE = "1.0"
PMV_PROVIDER_TREE = "1.14"      # providers carry root_provider_uuid / parent_provider_uuid
PMV_CONSUMER_GEN = "1.28"       # GET /allocations/{consumer} carries consumer_generation


def _adapter():
    # Imported when called: adapter.py imports this module to mix it into Cloud.
    from novamove.cloud import adapter
    return adapter


class DoctorReads:
    """Read verbs for the drift scan (novamove/engine/doctor/scan.py); a mixin of `Cloud`."""

    # ------------------------------------------------------------------ nova

    def list_all_servers(self) -> list[ServerState]:
        """Every server of every project, all pages, with host, node, states, `updated` and
        the last fault."""
        rows = self._compute_pages("/servers/detail", "servers", params={"all_tenants": "1"},
                                   microversion=self._server_mv() or "2.1", what="servers (all projects)")
        return [server_state_from_api(s) for s in rows]

    def list_all_migrations(self) -> list[Migration]:
        """Every migration record Nova lists (all types, all projects), all pages, newest first.

        /os-migrations hides nothing by status: finished, failed and stuck records alike."""
        a = _adapter()
        mv = self._pick(a.MV_MIGRATIONS_MAX, a.MV_MIGRATION_UUID, "2.23") or "2.1"
        rows = self._compute_pages("/os-migrations", "migrations", microversion=mv, what="migrations")
        out = {str(m["id"]): m for m in rows}          # a record that moved pages counts once
        return sorted((convert.migration_from_api(m) for m in out.values()),
                      key=lambda m: int(m.id) if m.id.isdigit() else 0, reverse=True)

    # ------------------------------------------------------------------ placement

    def placement_max_microversion(self) -> tuple[int, int]:
        """The highest placement microversion the cloud offers (1.0 if it does not say)."""
        cached = getattr(self, "_doctor_placement_max", None)
        if cached is None:
            a = _adapter()
            data = self._guard(lambda: self.conn.placement.get_endpoint_data(), "placement API")
            cached = a._version_tuple(getattr(data, "max_microversion", None) or PMV_BASE)
            self._doctor_placement_max = cached
        return cached

    def _placement_pick(self, *wanted: str) -> str:
        top = self.placement_max_microversion()
        for version in wanted:
            if _adapter()._version_tuple(version) <= top:
                return version
        return PMV_BASE

    def _placement(self, url: str, what: str, microversion: str) -> dict:
        return self._request("placement", "GET", url, microversion=microversion, what=what) or {}

    def list_resource_providers(self) -> list[ResourceProvider]:
        """Every resource provider (placement does not page this listing), with its tree."""
        mv = self._placement_pick(PMV_PROVIDER_TREE)
        body = self._placement("/resource_providers", "resource providers", mv)
        return [provider_from_api(p) for p in body.get("resource_providers") or []]

    def provider_allocations(self, provider_uuid: str) -> dict[str, dict[str, float]]:
        """{consumer uuid: {resource class: amount}} of everything allocated on one provider."""
        body = self._placement(f"/resource_providers/{provider_uuid}/allocations",
                               f"allocations on provider {provider_uuid}", PMV_BASE)
        return allocations_by_consumer(body)

    def consumer_allocations(self, consumer: str) -> ConsumerAllocations:
        """What one consumer (a server or a migration uuid) holds, with its generation (1.28+)."""
        mv = self._placement_pick(PMV_CONSUMER_GEN, "1.12")
        body = self._placement(f"/allocations/{consumer}", f"allocations of consumer {consumer}", mv)
        return consumer_allocations_from_api(consumer, body)


# ---------------------------------------------------------------------- pure converters

def server_state_from_api(body: dict[str, Any]) -> ServerState:
    fault = body.get("fault") if isinstance(body.get("fault"), dict) else {}
    return ServerState(
        id=body["id"],
        name=body.get("name") or "",
        status=body.get("status") or "UNKNOWN",
        host=body.get("OS-EXT-SRV-ATTR:host") or None,
        node=body.get("OS-EXT-SRV-ATTR:hypervisor_hostname") or None,
        vm_state=body.get("OS-EXT-STS:vm_state"),
        task_state=body.get("OS-EXT-STS:task_state") or None,
        power_state=_int_or_none(body.get("OS-EXT-STS:power_state")),
        updated=body.get("updated"),
        project_id=body.get("tenant_id") or body.get("project_id"),
        fault_message=fault.get("message"),
        fault_code=_int_or_none(fault.get("code")),
        fault_created=fault.get("created"),
        fault_details=fault.get("details"),
    )


def provider_from_api(body: dict[str, Any]) -> ResourceProvider:
    return ResourceProvider(uuid=body["uuid"], name=body.get("name") or "",
                            generation=_int_or_none(body.get("generation")),
                            root_uuid=body.get("root_provider_uuid"),
                            parent_uuid=body.get("parent_provider_uuid"))


def allocations_by_consumer(body: dict[str, Any]) -> dict[str, dict[str, float]]:
    """/resource_providers/{uuid}/allocations -> {consumer: {resource class: amount}}."""
    return {consumer: dict((alloc or {}).get("resources") or {})
            for consumer, alloc in (body.get("allocations") or {}).items()}


def consumer_allocations_from_api(consumer: str, body: dict[str, Any]) -> ConsumerAllocations:
    return ConsumerAllocations(
        consumer=consumer,
        allocations={rp: dict((alloc or {}).get("resources") or {})
                     for rp, alloc in (body.get("allocations") or {}).items()},
        generation=_int_or_none(body.get("consumer_generation")),
        project_id=body.get("project_id"), user_id=body.get("user_id"))
