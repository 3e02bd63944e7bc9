"""Provisioning verbs for the minicloud: identity, catalog, flavors, image, servers.

Kept in the cloud adapter because it is openstacksdk code; the minicloud manager calls these
instead of shelling out to the `openstack` CLI (one Python process does in a few seconds what
~40 CLI invocations do in over a minute).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import openstack
from openstack import exceptions as sdk_exc

FLAVORS = (  # name, vcpus, ram MB, disk GB
    ("m1.nano", 1, 128, 1),
    ("m1.small", 1, 512, 5),
    ("m1.medium", 2, 2048, 10),
    ("m1.large", 4, 8192, 20),
)
IMAGE_NAME = "cirros-tiny"


def admin_connection(auth_url: str, password: str, region: str, user: str = "admin",
                     project: str = "admin") -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=auth_url, username=user, password=password, project_name=project,
        user_domain_name="Default", project_domain_name="Default", region_name=region,
        identity_api_version="3", load_yaml_config=False, load_envvars=False)


def _ensure(find: Callable, create: Callable, name: str, **attrs):
    found = find(name, ignore_missing=True)
    return found if found is not None else create(name=name, **attrs)


def provision_identity(conn, region: str, endpoints: dict[str, tuple[str, str]],
                       service_passwords: dict[str, str], member_password: str) -> None:
    """Projects, service users, the member user, and the service catalog.

    endpoints: service type -> (service name, URL).
    """
    ident = conn.identity
    default = ident.find_domain("default")
    service_project = _ensure(ident.find_project, ident.create_project, "service",
                              domain_id=default.id, description="OpenStack service users")
    demo = _ensure(ident.find_project, ident.create_project, "demo",
                   domain_id=default.id, description="A tenant project")
    roles = {r.name: r for r in ident.roles()}
    for name in ("admin", "member", "reader", "service"):
        if name not in roles:
            roles[name] = ident.create_role(name=name)

    for user_name, password in service_passwords.items():
        user = ident.find_user(user_name, domain_id=default.id, ignore_missing=True)
        if user is None:
            user = ident.create_user(name=user_name, password=password, domain_id=default.id,
                                     default_project_id=service_project.id)
        for role in ("admin", "service"):
            ident.assign_project_role_to_user(service_project, user, roles[role])

    member = ident.find_user("member", domain_id=default.id, ignore_missing=True)
    if member is None:
        member = ident.create_user(name="member", password=member_password, domain_id=default.id,
                                   default_project_id=demo.id)
    ident.assign_project_role_to_user(demo, member, roles["member"])

    existing = {s.type: s for s in ident.services()}
    for stype, (sname, url) in endpoints.items():
        svc = existing.get(stype) or ident.create_service(name=sname, type=stype, is_enabled=True)
        have = {e.interface for e in ident.endpoints(service_id=svc.id)}
        for interface in ("public", "internal"):
            if interface not in have:
                ident.create_endpoint(service_id=svc.id, interface=interface, url=url,
                                      region_id=region)


def compute_services(conn) -> list:
    return [s for s in conn.compute.services() if s.binary == "nova-compute"]


def wait_for_computes(conn, hosts: Iterable[str], timeout: float, tick: Callable[[], None]) -> None:
    """Until every host has an up nova-compute, a hypervisor, and a placement provider."""
    want = set(hosts)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        tick()
        try:
            up = {s.host for s in compute_services(conn) if s.state == "up"}
            hypervisors = {h.name.split(".")[0] for h in conn.compute.hypervisors()}
            providers = {p.name.split(".")[0] for p in conn.placement.resource_providers()}
            last = (f"services up {sorted(up & want)}, hypervisors {sorted(hypervisors & want)}, "
                    f"providers {sorted(providers & want)}")
            if want <= up and want <= hypervisors and want <= providers:
                return
        except (sdk_exc.SDKException, OSError) as exc:
            last = str(exc)
        time.sleep(1)
    raise TimeoutError(f"computes not ready after {timeout:.0f}s: {last}")


def ensure_flavors(conn) -> None:
    have = {f.name for f in conn.compute.flavors(is_public=None)}
    for name, vcpus, ram, disk in FLAVORS:
        if name not in have:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)


def ensure_image(conn) -> str:
    image = conn.image.find_image(IMAGE_NAME, ignore_missing=True)
    if image is None:
        # The fake virt driver never reads the bits; a few bytes keep the file store honest.
        image = conn.image.create_image(
            name=IMAGE_NAME, disk_format="raw", container_format="bare", visibility="public",
            data=b"novamove minicloud image\n", allow_duplicates=False)
    return image.id


def boot_servers(conn, count: int, hosts: list[str], flavor: str = "m1.small",
                 prefix: str = "demo", timeout: float = 120,
                 names: list[str] | None = None) -> list:
    """Boot servers round-robin over `hosts` (admin AZ host targeting) and wait ACTIVE.

    Without `names` they are called <prefix>-N, skipping names in use; with `names` exactly those
    are booted, the i-th on hosts[i % len(hosts)].
    """
    image_id = ensure_image(conn)
    flavor_id = conn.compute.find_flavor(flavor, ignore_missing=False).id
    existing = {s.name for s in conn.compute.servers(all_projects=True)}
    if names is None:
        names = []
        for i in range(count):
            name, n = f"{prefix}-{i + 1}", i + 1
            while name in existing:   # never reuse a name: names must resolve unambiguously
                n += count
                name = f"{prefix}-{n}"
            existing.add(name)
            names.append(name)
    created = []
    for i, name in enumerate(names):
        host = hosts[i % len(hosts)]
        created.append(conn.compute.create_server(
            name=name, image_id=image_id, flavor_id=flavor_id, networks="none",
            availability_zone=f"nova:{host}"))
    return [conn.compute.wait_for_server(s, status="ACTIVE", wait=timeout, interval=1)
            for s in created]
