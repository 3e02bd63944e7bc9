"""Nova's refusals, predicted from what the API shows: pure functions over model values.

Each returns None (Nova would not refuse for this reason) or one line: Nova's own words first,
then what novamove saw. The rules and the words are Nova's (2025.2/2026.1 source):

- required and forbidden traits: `trait:X=required|forbidden` in the flavor's extra specs, and
  the traits Nova adds itself for a vTPM (COMPUTE_SECURITY_TPM_1_2/_2_0 and
  COMPUTE_SECURITY_TPM_TIS/_CRB, nova/scheduler/utils.py _translate_vtpm_request; the flavor's
  hw:tpm_* or the image's hw_tpm_*, which the server shows from 2.98), checked by placement
  against the destination's root provider: "No valid host was found";
- hard server-group policies (ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter over
  the group's hosts, which include the server's own);
- a pinned availability zone (`pinned_availability_zone`, compute API 2.96);
- features that block live migration in nova/compute/api.py live_migrate: memory encryption
  (SEV, reject_mem_enc_instances) and vTPM unless `hw:tpm_secret_security=host`
  (reject_legacy_vtpm_live_migration), each an OperationNotSupportedFor... error.

Not predicted, because the API does not show what Nova decides on: a flavor PCI alias (Nova
live-migrates it when the alias is `live_migratable` in nova.conf, which no API shows: refused
after the request with "This request does not explicitly request live-migratable devices"),
vPMEM (live-migratable since compute service version 51), an image's `trait:X` properties
(2.98 shows only standard image properties; Glance's image may have changed since the boot),
the traits Nova 33+ adds for a vTPM's secret security or a memory encryption model (older
Novas do not: predicting them would refuse falsely there), numbered trait groups (`trait1:`,
possibly on nested providers), and aggregate filters: those stay refusals Nova reports and a
drain plans again around.
"""

from __future__ import annotations

from typing import Collection, Mapping, Optional

from novamove.model import Server, ServerGroup

NO_VALID_HOST = "No valid host was found"
LIVE_MIGRATION = "live-migration"        # nova/compute/instance_actions.py LIVE_MIGRATION
_TRUE = {"1", "t", "true", "on", "y", "yes"}


def _specs(server: Server) -> dict[str, str]:
    return dict(server.flavor.extra_specs) if server.flavor else {}


def _props(server: Server) -> dict[str, str]:
    return dict(server.image_properties)


def _flavor_or_image(server: Server, spec: str, prop: str) -> Optional[str]:
    """A setting given by the flavor (hw:X) or the image (hw_X): Nova refuses to boot a server
    whose flavor and image disagree, so either is the server's."""
    value = _specs(server).get(spec)
    return value if value is not None else _props(server).get(prop)


def vtpm(server: Server) -> Optional[tuple[str, str]]:
    """(version, model) of the server's emulated TPM, or None (nova.virt.hardware
    get_vtpm_constraint: the model defaults to tpm-tis)."""
    version = _flavor_or_image(server, "hw:tpm_version", "hw_tpm_version")
    if not version:
        return None
    return version, _flavor_or_image(server, "hw:tpm_model", "hw_tpm_model") or "tpm-tis"


def required_traits(server: Server) -> tuple[frozenset[str], frozenset[str]]:
    """(required, forbidden) traits the scheduler asks placement for on the root provider."""
    required: set[str] = set()
    forbidden: set[str] = set()
    for source in (_specs(server),):      # an image's trait:X is not shown (module docstring)
        for key, value in source.items():
            if not key.startswith("trait:"):
                continue
            wanted = value.strip().lower()
            if wanted == "required":
                required.add(key[len("trait:"):])
            elif wanted == "forbidden":
                forbidden.add(key[len("trait:"):])
    tpm = vtpm(server)
    if tpm is not None:
        version, model = tpm
        required.add("COMPUTE_SECURITY_TPM_2_0" if version == "2.0" else "COMPUTE_SECURITY_TPM_1_2")
        required.add("COMPUTE_SECURITY_TPM_CRB" if model == "tpm-crb" else "COMPUTE_SECURITY_TPM_TIS")
    return frozenset(required), frozenset(forbidden)


def needs_traits(server: Server) -> bool:
    required, forbidden = required_traits(server)
    return bool(required or forbidden)


def trait_refusal(server: Server, host: str, traits: Optional[Collection[str]]) -> Optional[str]:
    """Why placement would offer no candidate on `host` for the server's traits (None: it
    would, or the host's traits are unknown)."""
    if traits is None:
        return None
    required, forbidden = required_traits(server)
    missing = sorted(required - set(traits))
    unwanted = sorted(forbidden & set(traits))
    if missing:
        return (f"{NO_VALID_HOST}: {host} lacks the trait{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} that {server.name} requires ({_origin(server, missing[0])})")
    if unwanted:
        return (f"{NO_VALID_HOST}: {host} has the trait {unwanted[0]} that {server.name} forbids "
                f"({_origin(server, unwanted[0])})")
    return None


def _origin(server: Server, trait: str) -> str:
    flavor = server.flavor.name if server.flavor else "?"
    if f"trait:{trait}" in _specs(server):
        return f"flavor {flavor}: trait:{trait}={_specs(server)[f'trait:{trait}']}"
    if f"trait:{trait}" in _props(server):
        return f"image property trait:{trait}={_props(server)[f'trait:{trait}']}"
    return f"its vTPM, TPM {vtpm(server)[0]} {vtpm(server)[1]}" if vtpm(server) else f"flavor {flavor}"


def live_refusal(server: Server) -> Optional[str]:
    """Nova's refusal of any live migration of the server (whatever the destination), or None."""
    encrypted = _flavor_or_image(server, "hw:mem_encryption", "hw_mem_encryption")
    if encrypted is not None and encrypted.strip().lower() in _TRUE:
        return (f"Operation '{LIVE_MIGRATION}' not supported for mem encryption enabled instance "
                f"({server.id}): {server.name} has memory encryption (SEV, hw:mem_encryption)")
    if vtpm(server) is not None and (_specs(server).get("hw:tpm_secret_security") or "user") != "host":
        return (f"Operation '{LIVE_MIGRATION}' not supported for vTPM-enabled instance ({server.id}): "
                f"{server.name} has an emulated TPM whose secret security is not 'host' "
                "(hw:tpm_secret_security)")
    return None


def zone_refusal(server: Server, host: str, zone: Optional[str],
                 zone_hosts: Optional[Collection[str]]) -> Optional[str]:
    """A server pinned to an availability zone moves only to the hosts of the aggregates of that
    zone (nova/scheduler/request_filter.py map_az_to_placement_aggregate); `zone_hosts` None: no
    aggregate has the zone (the default zone), which restricts nothing."""
    if server.pinned_zone and zone_hosts is not None and host not in zone_hosts:
        return (f"{NO_VALID_HOST}: {server.name} is pinned to availability zone {server.pinned_zone!r} "
                f"(pinned_availability_zone) and {host} is in {zone!r}")
    return None


def group_refusal(server: Server, host: str, groups: Collection[ServerGroup],
                  host_of: Mapping[str, Optional[str]]) -> Optional[str]:
    """Nova's hard group filters for `server` on `host`; `host_of` maps member ids to their
    compute hosts (members not in it are ignored)."""
    for group in groups:
        if server.id not in group.members and group.id not in server.server_groups:
            continue
        others = {m: host_of.get(m) for m in group.members if m != server.id}
        if group.policy == "anti-affinity":
            clash = sorted(m for m, h in others.items() if h == host)
            if clash:
                return (f"{NO_VALID_HOST}: {host} already holds member {clash[0]} of anti-affinity "
                        f"group {group.name or group.id} (ServerGroupAntiAffinityFilter)")
        elif group.policy == "affinity":
            hosts = {h for h in others.values() if h} | ({server.host} if server.host else set())
            if host not in hosts:
                return (f"{NO_VALID_HOST}: affinity group {group.name or group.id} lives on "
                        f"{', '.join(sorted(hosts))}, not {host} (ServerGroupAffinityFilter)")
    return None
