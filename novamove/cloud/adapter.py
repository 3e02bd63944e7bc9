"""The cloud adapter: every request novamove makes to OpenStack goes through `Cloud`.

It speaks Nova and Placement through openstacksdk: the compute proxy's verbs (migrate_server,
live_migrate_server, servers, migrations, ...) so that authentication, the service catalog,
request bodies and paging stay openstacksdk's business, while the microversion of each call
is chosen here explicitly: the behaviour novamove relies on (migrate with a host, service
UUIDs, migration UUIDs, ...) is tied to specific microversions. Each verb runs on a copy of
`conn.compute` pinned at the microversion chosen here (`_nova(mv)`), so openstacksdk never
negotiates one of its own, and never one above the ceiling (--os-compute-api-version).
A few calls stay raw REST (`_compute`): each says why.

Verbs read like the API: get_server, find_servers, list_compute_services, disable_service,
enable_service, migrate_server, live_migrate_server, list_migrations, list_server_migrations,
confirm_resize, revert_resize, abort_migration, force_complete_migration, hypervisors,
provider inventories/usages. Each returns novamove.model values; each API error becomes a
novamove.errors subclass with a one-line message.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import email.utils
import itertools
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

from novamove import errors, requestids
from novamove.cloud import convert
from novamove.cloud.doctor_reads import DoctorReads
from novamove.model import Flavor, Host, Migration, Resources, Server, ServerGroup, Service

# Microversions whose behaviour novamove depends on (Nova API reference).
MV_LIVE_HOST = "2.30"          # live migrate with host, checked by the scheduler (no force)
MV_LIVE_ASYNC = "2.34"         # live migration pre-checks after the API answered (asynchronous)
MV_BLOCK_AUTO = "2.25"         # block_migration "auto"
MV_SERVICE_UUID = "2.53"       # services/hypervisors by UUID, PUT /os-services/{id}
MV_COLD_HOST = "2.56"          # cold migrate with host
MV_MIGRATION_UUID = "2.59"     # migrations carry a uuid, paging
MV_FLAVOR_EMBED = "2.47"       # servers embed their flavor
MV_SERVER_GROUPS = "2.71"      # servers show their server groups
MV_ACTION_DETAILS = "2.84"     # instance action events carry `details`
MV_ABORT_QUEUED = "2.65"       # abort live migrations in queued/preparing too
MV_MIGRATIONS_MAX = "2.80"     # newest /os-migrations format
MV_HYPERVISOR_UPTIME = "2.88"  # the hypervisor shows its uptime (before: /os-hypervisors/{id}/uptime)
MV_PINNED_AZ = "2.96"          # servers show pinned_availability_zone (pre-flight: the zone a move keeps)
MV_IMAGE_PROPS = "2.98"        # servers embed their image's properties (pre-flight: required traits, vTPM)

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _version_tuple(version: str | tuple | None) -> tuple[int, int]:
    if version is None:
        return (2, 1)
    if isinstance(version, tuple):
        return (int(version[0]), int(version[1]))
    major, minor = str(version).split(".")
    return (int(major), int(minor))


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _response_request_id(response: Any) -> Optional[str]:
    headers = getattr(response, "headers", None) or {}
    try:
        return headers.get("x-openstack-request-id") or headers.get("x-compute-request-id")
    except Exception:   # an odd headers object: no id rather than no answer
        return None


class RequestCounter:
    """Counts HTTP requests on a keystoneauth session (for the benchmark and --debug) and keeps
    the request id Nova/Placement gave each mutating request (POST/PUT/PATCH/DELETE).

    Ids are recorded per thread (the engine calls the adapter from threads): `last_mutating`
    is the id of this thread's latest mutating request; `mark()` and `mutations_since(mark)`
    give the ids of the mutating requests made after a point (a bounded history).
    """

    HISTORY = 10000

    def __init__(self) -> None:
        self.count = 0
        self.by_method: dict[str, int] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._seq = 0
        self._tokens = itertools.count(1)
        # (seq, thread token, method, request id), mutating requests only
        self._mutations: collections.deque = collections.deque(maxlen=self.HISTORY)
        # The cloud's clock: the latest answer's `Date` header and this machine's monotonic time
        # when it arrived (fencing and gates compare Nova's timestamps with Nova's time).
        self.server_date: Optional[tuple[datetime, float]] = None

    def hook(self, session: Any) -> None:
        original = session.request

        def counted(url, method, *args, **kwargs):
            with self._lock:
                self.count += 1
                self.by_method[method] = self.by_method.get(method, 0) + 1
            try:
                response = original(url, method, *args, **kwargs)
            except Exception as exc:
                # keystoneauth raises HttpError (raise_exc=True) with the answer's request id;
                # a connection failure has none.
                self._record(method, getattr(exc, "request_id", None)
                             or _response_request_id(getattr(exc, "response", None)))
                raise
            self._record(method, _response_request_id(response))
            self._note_date(response)
            return response

        session.request = counted

    def _note_date(self, response: Any) -> None:
        try:
            raw = (getattr(response, "headers", None) or {}).get("Date")
            when = email.utils.parsedate_to_datetime(raw) if raw else None
        except Exception:   # no or an odd Date header: the cloud's time stays unknown
            return
        if when is not None:
            self.server_date = (when.astimezone(timezone.utc), time.monotonic())

    def cloud_now(self) -> Optional[datetime]:
        """The cloud's time now (UTC), from the latest answer's Date header, or None."""
        seen = self.server_date
        if seen is None:
            return None
        return seen[0] + timedelta(seconds=time.monotonic() - seen[1])

    def _record(self, method: Any, request_id: Optional[str]) -> None:
        mutating = str(method).upper() in MUTATING_METHODS
        with self._lock:
            self._seq += 1
            seq = self._seq
            if mutating:
                self._mutations.append((seq, self._thread_token(), str(method).upper(), request_id))
        self._local.last = (seq, mutating, request_id)
        if mutating:
            self._local.last_mutating = request_id
            requestids.note(request_id)      # the journal stores it with the change

    def _thread_token(self) -> int:
        """This thread's own number (thread idents are reused once a thread has ended)."""
        token = getattr(self._local, "token", None)
        if token is None:
            token = self._local.token = next(self._tokens)
        return token

    @property
    def last_mutating(self) -> Optional[str]:
        """The request id of this thread's latest mutating request (None: none yet, or it got
        no answer)."""
        return getattr(self._local, "last_mutating", None)

    def mark(self) -> int:
        with self._lock:
            return self._seq

    def mutations_since(self, mark: int, *, this_thread: bool = True) -> list[str]:
        """Request ids of the mutating requests after `mark` (this thread's only, by default),
        oldest first; requests that got no answer have no id and are left out."""
        me = self._thread_token()
        with self._lock:
            return [rid for seq, thread, _, rid in self._mutations
                    if seq > mark and rid and (not this_thread or thread == me)]

    def failed_mutation_id(self, mark: int) -> Optional[str]:
        """The request id of this thread's latest request if it came after `mark` and was a
        mutating one: the request a failing call just made."""
        seq, mutating, request_id = getattr(self._local, "last", (0, False, None))
        return request_id if seq > mark and mutating else None


class Cloud(DoctorReads):
    """One authenticated connection to one cloud region, seen through Nova and Placement."""

    def __init__(self, conn: Any, max_microversion: Optional[str] = None):
        """`conn` is an openstack.connection.Connection.

        `max_microversion` caps what novamove negotiates (e.g. "2.55" to behave as on an older
        cloud); None means "as high as the cloud allows".
        """
        self.conn = conn
        self.requests = RequestCounter()
        self._hypervisor_ids: dict[str, str] = {}     # compute host -> its hypervisor's id
        self.requests.hook(conn.session)
        self._cap = _version_tuple(max_microversion) if max_microversion else None
        self._compute_max: Optional[tuple[int, int]] = None
        self._cloud_max: Optional[tuple[int, int]] = None
        self._providers: dict[str, str] = {}
        self._pinned: dict[str, Any] = {}

    # ------------------------------------------------------------------ plumbing

    @property
    def cloud_name(self) -> Optional[str]:
        return getattr(getattr(self.conn, "config", None), "name", None)

    @property
    def identity(self) -> Optional[str]:
        """Which cloud this is, for plans made here and applied later: the compute endpoint
        (plus the region), which differs between clouds and is the same for every user of one."""
        try:
            endpoint = self.conn.compute.get_endpoint()
        except Exception:   # an identity is a safety check, not a reason to fail
            return None
        region = getattr(getattr(self.conn, "config", None), "region_name", None)
        return f"{endpoint.rstrip('/')}" + (f" ({region})" if region else "")

    @property
    def compute_max_microversion(self) -> tuple[int, int]:
        """The highest compute microversion both the cloud and novamove (cap) accept."""
        if self._compute_max is None:
            data = self._guard(lambda: self.conn.compute.get_endpoint_data(), "compute API")
            top = _version_tuple(getattr(data, "max_microversion", None) or (2, 1))
            self._cloud_max = top
            self._compute_max = min(top, self._cap) if self._cap else top
        return self._compute_max

    @property
    def microversion(self) -> str:
        major, minor = self.compute_max_microversion
        return f"{major}.{minor}"

    def supports(self, microversion: str) -> bool:
        return _version_tuple(microversion) <= self.compute_max_microversion

    def capped(self, microversion: str) -> bool:
        """Whether the cloud offers `microversion` but the user's ceiling
        (--os-compute-api-version, OS_COMPUTE_API_VERSION, clouds.yaml compute_api_version)
        keeps novamove below it: a choice to refuse, not a cloud limit to work around."""
        wanted = _version_tuple(microversion)
        self.compute_max_microversion   # reads the cloud's own maximum once
        return bool(self._cap) and wanted > self._cap and wanted <= (self._cloud_max or (2, 1))

    def _pick(self, *wanted: str) -> Optional[str]:
        """The first of `wanted` (highest first) the cloud supports; None means base 2.1."""
        for version in wanted:
            if self.supports(version):
                return version
        return None

    # ------------------------------------------------------------------ request ids

    @property
    def last_request_id(self) -> Optional[str]:
        """The cloud's request id (x-openstack-request-id) of the latest mutating request this
        thread made through the adapter: what to grep for in the cloud's logs."""
        return self.requests.last_mutating

    def request_mark(self) -> int:
        """A point in the adapter's request history, for `request_ids_since`."""
        return self.requests.mark()

    def request_ids_since(self, mark: int, *, this_thread: bool = True) -> list[str]:
        """Request ids of the mutating requests made since `mark` (by this thread unless
        `this_thread` is False), oldest first: e.g. every id of one move's steps."""
        return self.requests.mutations_since(mark, this_thread=this_thread)

    @contextlib.contextmanager
    def _request_id_on_error(self):
        """A NovamoveError raised inside gets the request id of the mutating request that just
        failed (if the cloud answered it): `.request_id` and " (request ID req-...)"."""
        mark = self.requests.mark()
        try:
            yield
        except errors.NovamoveError as exc:
            request_id = self.requests.failed_mutation_id(mark)
            if request_id and exc.request_id is None:
                exc.request_id = request_id
                exc.args = (f"{exc.args[0] if exc.args else ''} (request ID {request_id})",)
            raise

    def _nova(self, microversion: Optional[str]) -> Any:
        """openstacksdk's compute proxy pinned at `microversion` (None: the base 2.1).

        openstacksdk takes the proxy's `default_microversion` as the microversion of every call
        it makes through it (Resource._get_microversion) and as the ceiling of its own version
        checks (utils.supports_microversion), so a verb run on this copy sends exactly the
        microversion chosen here: never one the SDK negotiates itself (its resources go up to
        their own _max_microversion, e.g. 2.100 for servers), never one above the ceiling.
        A copy per microversion, so threads never change each other's.
        """
        version = microversion or "2.1"
        if not self.supports(version):   # a novamove bug: every caller picks within the cap
            raise errors.PreconditionFailed(
                f"compute API {version} is above what this cloud and novamove allow ({self.microversion})")
        proxy = self._pinned.get(version)
        if proxy is None:
            proxy = self._guard(lambda: copy.copy(self.conn.compute), "compute API")
            proxy.default_microversion = version
            self._pinned[version] = proxy
        return proxy

    def _placement_sdk(self, microversion: Optional[str], what: str, call: Callable[[Any], Any]) -> Any:
        """Run `call(proxy)` on openstacksdk's placement proxy pinned at `microversion` (None:
        the base 1.0, what novamove has always read placement at), errors mapped."""
        version = microversion or "1.0"
        key = f"placement {version}"

        def pinned():
            proxy = copy.copy(self.conn.placement)
            proxy.default_microversion = version
            return proxy
        proxy = self._pinned.get(key)
        if proxy is None:
            proxy = self._pinned[key] = self._guard(pinned, "placement API")
        return self._guard(lambda: call(proxy), what)

    def _sdk(self, microversion: Optional[str], what: str, call: Callable[[Any], Any]) -> Any:
        """Run `call(proxy)` on the compute proxy pinned at `microversion`, errors mapped."""
        proxy = self._nova(microversion)
        return self._guard(lambda: call(proxy), what)

    def _sdk_list(self, microversion: Optional[str], what: str, call: Callable[[Any], Any],
                  limit: Optional[int] = None) -> list[dict]:
        """Every item of an openstacksdk listing generator (it follows Nova's "next" links),
        as Nova's own JSON names (`_raw`); with `limit`, only the first `limit` items, without
        asking for the next page."""
        def collect(proxy):
            items = call(proxy)
            if limit is not None:
                items = itertools.islice(items, limit)
            return [_raw(item) for item in items]
        return self._sdk(microversion, what, collect)

    def _guard(self, call: Callable[[], Any], what: str) -> Any:
        """Run `call`, turning transport, auth and HTTP failures into novamove errors (with the
        request id of a failed mutating request)."""
        with self._request_id_on_error():
            return self._guard_errors(call, what)

    def _guard_errors(self, call: Callable[[], Any], what: str) -> Any:
        from keystoneauth1 import exceptions as ksa
        from openstack import exceptions as sdk

        try:
            return call()
        except ksa.SSLError as exc:
            if _untrusted_certificate(exc):
                raise errors.Untrusted(_untrusted_message(exc)) from exc
            raise errors.Unreachable(f"cannot reach the cloud API ({what}): {_connect_reason(exc)}") from exc
        except (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.UnknownConnectionError) as exc:
            raise errors.Unreachable(f"cannot reach the cloud API ({what}): {_connect_reason(exc)}") from exc
        except ksa.DiscoveryFailure as exc:
            raise errors.Unreachable(f"cannot discover the {what}: {_first_line(exc)}") from exc
        except (ksa.MissingAuthPlugin, ksa.MissingRequiredOptions, ksa.NoMatchingPlugin,
                ksa.AuthPluginException, ksa.OptionError) as exc:
            raise errors.AuthError(
                f"no usable credentials (set --os-cloud/OS_CLOUD or OS_* variables): {_first_line(exc)}"
            ) from exc
        except ksa.Unauthorized as exc:
            raise errors.AuthError(f"the cloud rejected the credentials: {_first_line(exc)}") from exc
        except (ksa.EndpointNotFound, ksa.EmptyCatalog, sdk.EndpointNotFound) as exc:
            raise errors.NoEndpoint(self._no_endpoint_message(exc, what)) from exc
        except sdk.ServiceDisabledException as exc:
            # openstacksdk defers "no endpoint for this interface/region in the catalog" until
            # the service is first used, as a ServiceDisabledException (a ConfigException).
            if "catalog" in str(exc):
                raise errors.NoEndpoint(self._no_endpoint_message(exc, what)) from exc
            raise errors.AuthError(f"cloud configuration: {_first_line(exc)}") from exc
        except ksa.HttpError as exc:
            raise _http_error(getattr(exc, "http_status", None), str(exc), what) from exc
        except sdk.HttpException as exc:
            # `details` is Nova's own message ({"badRequest": {"message": ...}}), without the URL.
            raise _http_error(exc.status_code, exc.details or str(exc), what) from exc
        except sdk.ConfigException as exc:
            raise errors.AuthError(f"cloud configuration: {_first_line(exc)}") from exc
        except sdk.SDKException as exc:
            raise errors.NovamoveError(f"{what}: {_first_line(exc)}") from exc

    def _no_endpoint_message(self, exc: BaseException, what: str) -> str:
        """'no compute endpoint for interface 'admin' in region R1 was found in the service
        catalog' (keystoneauth's EndpointNotFound, or openstacksdk's deferred form of it)."""
        config = getattr(self.conn, "config", None)
        interface = region = None
        try:
            interface = config.get_interface()
            region = config.get_region_name()
        except Exception:   # a message, not a reason to fail differently
            pass
        match = re.search(r"Service '([\w-]+)'", str(exc)) or re.search(r"(\w+) service in", str(exc))
        service = match.group(1) if match else what
        where = f" for interface '{interface}'" if interface else ""
        where += f" in region {region}" if region else ""
        detail = _first_line(exc).split("service catalog: ")[-1]
        return (f"no {service} endpoint{where} was found in the service catalog ({detail}); "
                f"choose another with --os-interface/OS_INTERFACE or --os-region-name/OS_REGION_NAME")

    def _request(self, service: str, method: str, url: str, *, microversion: Optional[str] = None,
                 json: Any = None, params: Optional[dict] = None, what: str = "",
                 ok: Iterable[int] = (200, 201, 202, 204)) -> Any:
        proxy = getattr(self.conn, service)
        what = what or f"{method} {url}"
        kwargs: dict[str, Any] = {"raise_exc": False}
        if microversion:
            kwargs["microversion"] = microversion
        if json is not None:
            kwargs["json"] = json
        if params:
            kwargs["params"] = params
        with self._request_id_on_error():
            response = self._guard(lambda: proxy.request(url, method, **kwargs), what)
            if response.status_code not in ok:
                raise _http_error(response.status_code, _nova_message(response), what)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _compute(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._request("compute", method, url, **kwargs)

    # ------------------------------------------------------------------ servers

    def _server_mv(self) -> Optional[str]:
        return self._pick(MV_IMAGE_PROPS, MV_PINNED_AZ, MV_SERVER_GROUPS, MV_FLAVOR_EMBED)

    def _server(self, body: dict) -> Server:
        flavor = None
        if not self.supports(MV_FLAVOR_EMBED) and isinstance(body.get("flavor"), dict):
            # Before 2.47 a server names its flavor by id (openstacksdk then fills the flavor's
            # other fields with defaults: zeros, not numbers to reason about).
            flavor = self.get_flavor(body["flavor"].get("id"))
        return convert.server_from_api(body, flavor)

    # Raw REST on the hot read paths (a server, the servers of a host): openstacksdk builds a
    # Resource per server, measured at 1.6 ms of CPU to build plus 1.1 ms to read back as Nova's
    # JSON; a drain reads servers several times per move, which took novamove's CPU per move
    # from 11 to 53 ms in bench/drain_scale.py (the goal is <= 20 ms). Nova's JSON is what
    # novamove.cloud.convert reads anyway.
    def get_server(self, server_id: str) -> Server:
        body = self._compute("GET", f"/servers/{server_id}", microversion=self._server_mv() or "2.1",
                             what=f"server {server_id}") or {}
        return self._server(body.get("server") or {})

    def find_servers(self, name_or_id: str) -> list[Server]:
        """Servers whose UUID or exact name is `name_or_id`, across all projects."""
        if is_uuid(name_or_id):
            try:
                return [self.get_server(name_or_id)]
            except errors.NotFound:
                pass  # a server may be *named* like a UUID
        # Nova's name filter is a regular expression: anchor and escape it, then compare exactly.
        pattern = f"^{re.escape(name_or_id)}$"
        rows = self._sdk_list(self._server_mv(), "server list",
                              lambda nova: nova.servers(details=True, all_projects=True, name=pattern))
        return [self._server(s) for s in rows if s.get("name") == name_or_id]

    def get_flavor(self, flavor_id: Optional[str]) -> Optional[Flavor]:
        if not flavor_id:
            return None
        try:
            body = self._sdk(None, f"flavor {flavor_id}", lambda nova: _raw(nova.get_flavor(flavor_id)))
        except errors.NotFound:
            return None
        return convert.flavor_from_api(body)

    def server_fault(self, server_id: str, since: Optional[str] = None) -> Optional[str]:
        """Nova's reason for the latest failed move of a server: instance action events, then fault.

        `since` (ISO time) skips actions started before this run.
        """
        mv = self._pick(MV_ACTION_DETAILS, "2.51")
        # Raw REST, not yet openstacksdk's server_actions()/get_server_action(): left as it was
        # for now (reads only; the events' `details` (2.84) and `traceback` as Nova sends them).
        body = self._compute("GET", f"/servers/{server_id}/os-instance-actions", microversion=mv,
                             what="instance actions")
        actions = [a for a in body.get("instanceActions", [])
                   if a.get("action") in ("migrate", "live-migration", "resize", "confirmResize",
                                          "revertResize", "live_migration")
                   and (since is None or (a.get("start_time") or "") >= since[:19])]
        for action in sorted(actions, key=lambda a: a.get("start_time") or "", reverse=True):
            detail = self._compute("GET", f"/servers/{server_id}/os-instance-actions/{action['request_id']}",
                                   microversion=mv, what="instance action")
            events = detail.get("instanceAction", {}).get("events", []) or []
            for event in events:
                if (event.get("result") or "").lower() == "error":
                    reason = event.get("details") or _last_line(event.get("traceback"))
                    return f"{event.get('event')}: {reason}" if reason else event.get("event")
            if action.get("message"):
                return action["message"]
        server = self.get_server(server_id)
        return server.fault

    # ------------------------------------------------------------------ services and hosts

    def list_compute_services(self) -> list[Service]:
        # Raw REST: a drain reads it before its refills (engine/batch/moves.py); through openstacksdk's
        # Resources a listing cost 3.8 ms of CPU, raw 1.5 ms (measured on the minicloud).
        # Nova does not page /os-services.
        body = self._compute("GET", "/os-services", params={"binary": "nova-compute"},
                             microversion=self._pick(MV_SERVICE_UUID) or "2.1", what="compute services") or {}
        return [convert.service_from_api(s) for s in body.get("services") or []
                if s.get("binary") == "nova-compute"]

    def _by_uuid(self, service: Service) -> bool:
        return self.supports(MV_SERVICE_UUID) and not service.id.isdigit()

    def disable_service(self, service: Service, reason: str) -> Service:
        what = f"disable service on {service.host}"
        if self._by_uuid(service):   # 2.53: PUT /os-services/{uuid}
            return convert.service_from_api(_raw(self._sdk(MV_SERVICE_UUID, what, lambda nova: nova.disable_service(
                service.id, disabled_reason=reason))))
        # Before 2.53: PUT /os-services/disable-log-reason {host, binary, disabled_reason}.
        self._sdk(None, what, lambda nova: nova.disable_service(None, host=service.host, binary=service.binary,
                                                                 disabled_reason=reason))
        return _replace_service(service, status="disabled", disabled_reason=reason)

    def enable_service(self, service: Service) -> Service:
        what = f"enable service on {service.host}"
        if self._by_uuid(service):
            return convert.service_from_api(_raw(self._sdk(MV_SERVICE_UUID, what,
                                                           lambda nova: nova.enable_service(service.id))))
        self._sdk(None, what, lambda nova: nova.enable_service(None, host=service.host, binary=service.binary))
        return _replace_service(service, status="enabled", disabled_reason=None)

    def hypervisors(self) -> list[dict]:
        """[{id, hypervisor_hostname, host (service host), state, status}], every page."""
        rows = self._sdk_list(self._pick(MV_SERVICE_UUID), "hypervisors",
                              lambda nova: nova.hypervisors(details=True))
        out = []
        for h in rows:
            out.append({
                "id": str(h.get("id")),
                "hypervisor_hostname": h.get("hypervisor_hostname"),
                "host": (h.get("service") or {}).get("host"),
                "state": h.get("state"),
                "status": h.get("status"),
            })
        return out

    def _provider_uuid(self, hypervisor_hostname: str) -> Optional[str]:
        if hypervisor_hostname not in self._providers:
            providers = self._placement_sdk(None, f"resource provider {hypervisor_hostname}", lambda placement: [
                p.id for p in placement.resource_providers(name=hypervisor_hostname)])
            if not providers:
                return None
            self._providers[hypervisor_hostname] = providers[0]
        return self._providers[hypervisor_hostname]

    def provider_inventories(self, hypervisor_hostname: str) -> dict[str, dict]:
        rp = self._provider_uuid(hypervisor_hostname)
        if rp is None:
            return {}
        rows = self._placement_sdk(None, f"inventories of {hypervisor_hostname}", lambda placement: [
            {k: v for k, v in _raw(inv).items() if v is not None}
            for inv in placement.resource_provider_inventories(rp)])
        return {row["resource_class"]: row for row in rows if row.get("resource_class")}

    def provider_usages(self, hypervisor_hostname: str) -> dict[str, float]:
        rp = self._provider_uuid(hypervisor_hostname)
        if rp is None:
            return {}
        provider = self._placement_sdk(None, f"usages of {hypervisor_hostname}",
                                       lambda placement: placement.fetch_resource_provider_usages(rp))
        return dict(provider.usages or {})

    def host_resources(self, hypervisor_hostname: str) -> tuple[Resources, Resources, Resources]:
        """(capacity, used, max_unit) of one compute node from placement."""
        inventories = self.provider_inventories(hypervisor_hostname)
        return (convert.capacity_from_inventories(inventories),
                convert.used_from_usages(self.provider_usages(hypervisor_hostname)),
                convert.max_unit_from_inventories(inventories))

    def host_usage(self, hypervisor_hostname: str) -> Resources:
        """What one compute node's consumers use, from placement: one request (its inventories,
        the capacity, change rarely; a campaign reads them whole, and the usage per stage)."""
        return convert.used_from_usages(self.provider_usages(hypervisor_hostname))

    def compute_hosts(self, with_resources: bool = True) -> list[Host]:
        """Every nova-compute service joined with its hypervisor (and placement numbers)."""
        by_host: dict[str, list[str]] = {}
        for h in self.hypervisors():
            if h["host"]:
                by_host.setdefault(h["host"], []).append(h["hypervisor_hostname"])
        hosts = []
        for service in self.list_compute_services():
            nodes = by_host.get(service.host) or [None]
            node = nodes[0]
            capacity = used = Resources()
            if with_resources and node:
                capacity, used, _ = self.host_resources(node)
            hosts.append(Host(name=service.host, service=service, hypervisor_hostname=node,
                              capacity=capacity, used=used))
        return hosts

    # ------------------------------------------------------------------ moving

    def migrate_server(self, server_id: str, host: Optional[str] = None) -> None:
        """Cold migrate; with `host` (needs 2.56) the scheduler is asked for that host only."""
        if host:
            if not self.supports(MV_COLD_HOST):
                raise errors.PreconditionFailed(
                    f"cold migration to a named host needs compute API {MV_COLD_HOST}; "
                    f"this cloud offers {self.microversion} (use --strategy isolate)")
            self._sdk(MV_COLD_HOST, "cold migration", lambda nova: nova.migrate_server(server_id, host=host))
        else:
            self._sdk(self._pick(MV_COLD_HOST), "cold migration", lambda nova: nova.migrate_server(server_id))

    def live_migrate_server(self, server_id: str, host: Optional[str] = None) -> None:
        """Live migrate; with `host` (needs 2.30) the scheduler still validates the target.

        novamove never sends `force`: bypassing the scheduler skips its checks.
        """
        if host and not self.supports(MV_LIVE_HOST):
            raise errors.PreconditionFailed(
                f"live migration to a named host without bypassing the scheduler needs compute "
                f"API {MV_LIVE_HOST}; this cloud offers {self.microversion} (use --strategy isolate)")
        # openstacksdk sends 2.30 / 2.25 / the base version by the same rule, on the pinned
        # proxy: {"host", "block_migration": "auto"} from 2.25, {"host", "block_migration": false,
        # "disk_over_commit": false} before. force=False: no `force` key, ever.
        if self.supports(MV_LIVE_ASYNC):
            # Raw, because openstacksdk pins 2.30 for live migration, where Nova runs the
            # scheduler and the pre-checks inside the API request: a stopped or slow scheduler
            # then holds the POST for the RPC timeout (and an isolate window open with it).
            # From 2.34 Nova answers first and records a failed pre-check on the migration.
            body: dict[str, Any] = {"host": host, "block_migration": "auto"}
            self._compute("POST", f"/servers/{server_id}/action", json={"os-migrateLive": body},
                          microversion=MV_LIVE_ASYNC, what="live migration")
            return
        mv = self._pick(MV_LIVE_HOST, MV_BLOCK_AUTO)
        self._sdk(mv, "live migration", lambda nova: nova.live_migrate_server(
            server_id, host=host, force=False, block_migration="auto" if mv else False,
            disk_over_commit=None if mv else False))

    def confirm_resize(self, server_id: str) -> None:
        self._sdk(None, "confirm resize", lambda nova: nova.confirm_server_resize(server_id))

    def revert_resize(self, server_id: str) -> None:
        self._sdk(None, "revert resize", lambda nova: nova.revert_server_resize(server_id))

    # ------------------------------------------------------------------ migrations

    def list_migrations(self, *, server_id: Optional[str] = None, host: Optional[str] = None,
                        status: Optional[str] = None, migration_type: Optional[str] = None,
                        limit: Optional[int] = None) -> list[Migration]:
        """/os-migrations, newest first."""
        params: dict[str, Any] = {}
        if server_id:
            params["server_id"] = server_id          # openstacksdk's name for instance_uuid
        if host:
            params["host"] = host
        if status:
            params["status"] = status
        if migration_type:
            params["migration_type"] = migration_type
        mv = self._pick(MV_MIGRATIONS_MAX, MV_MIGRATION_UUID, "2.23")
        first = None
        if limit and mv and _version_tuple(mv) >= _version_tuple(MV_MIGRATION_UUID):
            params["limit"] = limit                  # one page of the newest `limit` (2.59+)
            first = limit
        raw = self._sdk_list(mv, "migrations", lambda nova: nova.migrations(**params), limit=first)
        rows = [convert.migration_from_api(m) for m in raw]
        return sorted(rows, key=lambda m: int(m.id) if m.id.isdigit() else 0, reverse=True)

    def list_server_migrations(self, server_id: str) -> list[Migration]:
        """In-progress live migrations of a server, with memory/disk progress."""
        rows = self._sdk_list(self._pick(MV_MIGRATIONS_MAX, MV_MIGRATION_UUID, "2.23"), "server migrations",
                              lambda nova: nova.server_migrations(server_id))
        return [convert.migration_from_api(m, server_id) for m in rows]

    def abort_migration(self, server_id: str, migration_id: str) -> None:
        # ignore_missing=False: a migration that is gone is NotFound, not a silent success.
        self._sdk(self._pick(MV_ABORT_QUEUED, "2.24"), "abort migration",
                  lambda nova: nova.abort_server_migration(migration_id, server_id, ignore_missing=False))

    def force_complete_migration(self, server_id: str, migration_id: str) -> None:
        self._sdk(self._pick(MV_MIGRATIONS_MAX, "2.22"), "force-complete migration",
                  lambda nova: nova.force_complete_server_migration(migration_id, server_id))

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # closing is best effort
            pass

    # ------------------------------------------------------------------ added for drains (engine/batch/drain.py)
    # Shared listings: a drain follows many servers with a few list calls, not one loop each.

    def list_servers_on_host(self, host: str) -> list[Server]:
        """Every server (all projects) whose compute service host is `host`, all pages."""
        rows = self._compute_pages("/servers/detail", "servers", params={"all_tenants": "1", "host": host},
                                   microversion=self._server_mv() or "2.1", what=f"servers on {host}")
        return [self._server(s) for s in rows]

    def _compute_pages(self, url: str, key: str, *, params: Optional[dict] = None,
                       microversion: Optional[str] = None, what: str = "") -> list[dict]:
        """Every item of a paged Nova listing: follows the `<key>_links` "next" marker that Nova
        adds whenever a page is full, whatever `[api] max_limit` the cloud caps pages at."""
        params = dict(params or {})
        items: list[dict] = []
        seen: set[str] = set()
        while True:
            body = self._compute("GET", url, params=params, microversion=microversion, what=what) or {}
            page = body.get(key, [])
            items.extend(page)
            marker = _next_marker(body.get(f"{key}_links"))
            if not page or not marker or marker in seen:
                return items
            seen.add(marker)
            params["marker"] = marker

    def list_server_groups(self) -> list[ServerGroup]:
        """Server groups of all projects (policy as one string, members as server ids)."""
        # Raw REST: Nova pages server groups by offset, without "next" links, and
        # openstacksdk's server_groups() stops after the first page (then [api] max_limit
        # groups at most).
        out: list[ServerGroup] = []
        offset, limit = 0, 1000
        while True:
            body = self._compute("GET", "/os-server-groups",
                                 params={"all_projects": "True", "limit": limit, "offset": offset},
                                 microversion=self._pick("2.64"), what="server groups")
            page = body.get("server_groups", [])
            for g in page:
                policy = g.get("policy") or next(iter(g.get("policies") or []), "")
                out.append(ServerGroup(id=g["id"], name=g.get("name") or "", policy=policy,
                                       members=tuple(g.get("members") or ())))
            # Offset paging without links: Nova may cap a page below `limit` ([api]
            # max_limit), so only an empty page says the end.
            if not page:
                return out
            offset += len(page)

    def list_migrations_changed_since(self, since: str, host: Optional[str] = None) -> list[Migration]:
        """/os-migrations changed since `since` (ISO time, UTC), newest first; needs 2.59 for the
        filter (older clouds: everything, filtered here by updated_at/created_at)."""
        params: dict[str, Any] = {"host": host} if host else {}
        if self.supports(MV_MIGRATION_UUID):
            params["changes-since"] = since
        # Raw REST: the listing a drain makes at every poll, of every record since it began;
        # an openstacksdk Resource per record (0.3 ms of CPU each, measured) added up to tens of
        # ms per move on a big drain (bench/drain_scale.py).
        raw = self._compute_pages("/os-migrations", "migrations", params=params,
                                  microversion=self._pick(MV_MIGRATIONS_MAX, MV_MIGRATION_UUID, "2.23") or "2.1",
                                  what="migrations")
        rows = [convert.migration_from_api(m) for m in raw
                if (m.get("updated_at") or m.get("created_at") or "")[:19] >= since[:19]]
        return sorted(rows, key=lambda m: int(m.id) if m.id.isdigit() else 0, reverse=True)

    # ------------------------------------------------------------------ added for campaigns (engine/campaign/)

    def stop_server(self, server_id: str) -> None:
        """Power a server off in place (os-stop)."""
        self._sdk(None, "stop server", lambda nova: nova.stop_server(server_id))

    def start_server(self, server_id: str) -> None:
        """Power a stopped server on (os-start)."""
        self._sdk(None, "start server", lambda nova: nova.start_server(server_id))

    def aggregate_hosts(self, name: str) -> list[str]:
        """The compute hosts of host aggregate `name` (NotFound if there is no such aggregate)."""
        for agg in self._sdk_list(None, "aggregates", lambda nova: nova.aggregates()):
            if agg.get("name") == name:
                return list(agg.get("hosts") or [])
        raise errors.NotFound(f"no host aggregate named {name!r}")

    def zone_hosts(self, zone: str) -> Optional[set[str]]:
        """The compute hosts of the aggregates whose availability zone is `zone`, or None when no
        aggregate has it (the default zone): what Nova's map_az_to_placement_aggregate requires
        of a server pinned to `zone` (none: no restriction)."""
        hosts: Optional[set[str]] = None
        for agg in self._sdk_list(None, "aggregates", lambda nova: nova.aggregates()):
            if agg.get("availability_zone") == zone or (agg.get("metadata") or {}).get("availability_zone") == zone:
                hosts = (hosts or set()) | set(agg.get("hosts") or [])
        return hosts


    # ------------------------------------------------------------------ added for evacuation (engine/evacuate/)
    # Evacuate is Nova's rebuild of a server on another host after its own host failed. novamove
    # always names the destination (2.29+, checked by the scheduler) and never sends `force`.
    MV_FORCE_DOWN = "2.11"           # PUT /os-services/force-down (before 2.53's service PUT)
    MV_TAGS = "2.26"                 # server tags, ?tags= filter
    MV_EVACUATE_HOST = "2.29"        # evacuate to a host checked by the scheduler (force optional)
    MV_EVACUATE_NO_FORCE = "2.68"    # `force` removed from evacuate
    MV_EVACUATE_KEEP_STATE = "2.94"  # the last microversion that rebuilds in the previous state
    MV_EVACUATE_STOPPED = "2.95"     # evacuated servers land stopped

    def evacuate_server(self, server_id: str, host: str, *, target_state: Optional[str] = None) -> None:
        """Evacuate to `host` (compute API 2.29+, never forced).

        target_state None: pinned below 2.95, where Nova rebuilds the server in its previous
        state (ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF). "stopped": 2.95+, where Nova leaves
        every evacuated server stopped on the destination.
        """
        if target_state not in (None, "stopped"):
            raise errors.UsageError(f"unknown target state {target_state!r}")
        if target_state == "stopped":
            if not self.supports(self.MV_EVACUATE_STOPPED):
                raise errors.PreconditionFailed(
                    f"leaving evacuated servers stopped needs compute API {self.MV_EVACUATE_STOPPED}; this "
                    f"cloud offers {self.microversion} (use --power restore)")
            mv = self.MV_EVACUATE_STOPPED
        else:
            if not self.supports(self.MV_EVACUATE_HOST):
                raise errors.PreconditionFailed(
                    f"evacuation to a named host checked by the scheduler needs compute API "
                    f"{self.MV_EVACUATE_HOST}; this cloud offers {self.microversion}")
            mv = self._pick(self.MV_EVACUATE_KEEP_STATE, self.MV_EVACUATE_NO_FORCE, self.MV_EVACUATE_HOST)
        # {"evacuate": {"host": host}} at exactly `mv` (2.95 leaves the server stopped): no
        # `force`, no adminPass, no onSharedStorage.
        self._sdk(mv, "evacuation", lambda nova: nova.evacuate_server(server_id, host=host))

    def set_service_forced_down(self, service: Service, forced_down: bool) -> Service:
        """Mark a nova-compute forced down (Nova then treats it as down at once) or clear it.

        2.53+: PUT /os-services/{uuid}; 2.11-2.52: PUT /os-services/force-down.
        """
        what = f"{'force down' if forced_down else 'clear forced_down of'} service on {service.host}"
        if self._by_uuid(service):
            return convert.service_from_api(_raw(self._sdk(MV_SERVICE_UUID, what, lambda nova: nova.update_service(
                service.id, forced_down=forced_down))))
        if not self.supports(self.MV_FORCE_DOWN):
            raise errors.PreconditionFailed(
                f"forcing a service down needs compute API {self.MV_FORCE_DOWN}; this cloud offers {self.microversion}")
        # openstacksdk pins 2.11 itself for PUT /os-services/force-down {host, binary, forced_down}.
        self._sdk(self.MV_FORCE_DOWN, what, lambda nova: nova.update_service_forced_down(
            None, host=service.host, binary=service.binary, forced=forced_down))
        return _replace_service(service, forced_down=forced_down,
                                state="down" if forced_down else service.state)

    def cloud_now(self) -> Optional[datetime]:
        """The cloud's time (UTC) as its latest answer's Date header put it, or None."""
        return self.requests.cloud_now()

    def hypervisor_uptime(self, host: str) -> Optional[str]:
        """The hypervisor of compute `host`'s uptime text (libvirt: the `uptime` command's
        output), or None where the driver or a down compute gives none. Raw REST: 2.88+ shows
        it on the hypervisor, older microversions at /os-hypervisors/{id}/uptime (one RPC to
        that compute either way, so it is read for one host, never in a listing)."""
        # The hypervisor's id is listed once per host (a gate reads the uptime again and again);
        # an id that is gone (the compute registered anew) is listed again.
        known = self._hypervisor_ids.get(host)
        hyp_id = known
        if hyp_id is None:
            hyp = next((h for h in self.hypervisors() if h["host"] == host), None)
            if hyp is None:
                raise errors.NotFound(f"no hypervisor for compute host {host!r}")
            hyp_id = self._hypervisor_ids[host] = hyp["id"]
        what = f"uptime of {host}"
        # 501: the driver does not implement it (only libvirt and zVM do). 500: Nova's RPC to the
        # compute timed out (MessagingTimeout) - it is restarting, which is what a gate waits
        # for, and Nova still counts it up; no uptime now (a gate then reads again).
        no_uptime = (200, 500, 501)
        try:
            if self.supports(MV_HYPERVISOR_UPTIME):
                body = self._compute("GET", f"/os-hypervisors/{hyp_id}", microversion=MV_HYPERVISOR_UPTIME,
                                     what=what, ok=no_uptime)
            else:
                body = self._compute("GET", f"/os-hypervisors/{hyp_id}/uptime",
                                     microversion=self._pick(MV_SERVICE_UUID), what=what, ok=no_uptime)
        except errors.NotFound:
            self._hypervisor_ids.pop(host, None)
            if known is None:
                raise
            return self.hypervisor_uptime(host)
        return ((body or {}).get("hypervisor") or {}).get("uptime") or None

    def compute_service_heartbeat(self, host: str) -> Optional[str]:
        """`updated_at` of the nova-compute service on `host`: it keeps moving while the service
        reports, even when the service is forced down (the API then shows it down)."""
        for s in self._sdk_list(self._pick(MV_SERVICE_UUID), f"compute service on {host}",
                                lambda nova: nova.services(binary="nova-compute", host=host)):
            if s.get("host") == host and s.get("binary") == "nova-compute":
                return s.get("updated_at")
        return None

    def list_evacuations(self, source_host: Optional[str] = None, since: Optional[str] = None,
                         server_id: Optional[str] = None) -> list[Migration]:
        """Evacuation migration records (optionally from one source host, changed since an ISO
        time, of one server), newest first: one request, all pages."""
        params: dict[str, Any] = {"migration_type": "evacuation"}
        if source_host:
            params["source_compute"] = source_host
        if server_id:
            params["server_id"] = server_id          # openstacksdk's name for instance_uuid
        if since and self.supports(MV_MIGRATION_UUID):
            params["changes_since"] = since
        # 2.59+: a full page ([api] max_limit) comes with a "next" link; openstacksdk follows it.
        rows = self._sdk_list(self._pick(MV_MIGRATIONS_MAX, MV_MIGRATION_UUID, "2.23"), "evacuation records",
                              lambda nova: nova.migrations(**params))
        out = [convert.migration_from_api(m) for m in rows
               if m.get("migration_type", "evacuation") == "evacuation"
               and (not since or (m.get("updated_at") or m.get("created_at") or "")[:19] >= since[:19])]
        uniq = {m.id: m for m in out}
        return sorted(uniq.values(), key=lambda m: int(m.id) if m.id.isdigit() else 0, reverse=True)

    def server_ids_tagged(self, host: str, tag: str) -> set[str]:
        """Ids of the servers (all projects) on `host` that carry server tag `tag` (2.26+; an
        older cloud has no tags: empty set)."""
        if not self.supports(self.MV_TAGS):
            return set()
        rows = self._sdk_list(self.MV_TAGS, f"servers tagged {tag} on {host}",
                              lambda nova: nova.servers(details=False, all_projects=True, compute_host=host,
                                                        tags=tag))
        return {s["id"] for s in rows}

    def provider_traits(self, hypervisor_hostname: str) -> set[str]:
        """Placement traits of a compute node (COMPUTE_STATUS_DISABLED: the scheduler skips it)."""
        rp = self._provider_uuid(hypervisor_hostname)
        if rp is None:
            return set()
        found = self._placement_sdk("1.6", f"traits of {hypervisor_hostname}",
                                    lambda placement: placement.get_resource_provider_trait(rp))
        return set(found.traits or [])

    def evacuation_fault(self, server_id: str, since: Optional[str] = None) -> Optional[str]:
        """Nova's reason for the latest failed evacuation of a server: the error event of its
        `evacuate` instance action (since `since`), else the server's fault."""
        mv = self._pick(MV_ACTION_DETAILS, "2.51")
        # Raw REST, as in server_fault (not yet openstacksdk's server_actions()).
        body = self._compute("GET", f"/servers/{server_id}/os-instance-actions", microversion=mv,
                             what="instance actions")
        actions = [a for a in body.get("instanceActions", []) if a.get("action") == "evacuate"
                   and (since is None or (a.get("start_time") or "") >= since[:19])]
        for action in sorted(actions, key=lambda a: a.get("start_time") or "", reverse=True):
            detail = self._compute("GET", f"/servers/{server_id}/os-instance-actions/{action['request_id']}",
                                   microversion=mv, what="instance action")
            for event in detail.get("instanceAction", {}).get("events", []) or []:
                if (event.get("result") or "").lower() == "error":
                    reason = event.get("details") or _last_line(event.get("traceback"))
                    return f"{event.get('event')}: {reason}" if reason else event.get("event")
            if action.get("message"):
                return action["message"]
        return self.get_server(server_id).fault

    # ------------------------------------------------------------------ doctor's repairs

    def delete_consumer_allocations(self, consumer: str, generation: Optional[int], *,
                                    project_id: Optional[str], user_id: Optional[str]) -> None:
        """Remove every allocation of one consumer, only if its generation is still
        `generation` (PUT /allocations/{consumer} with no allocations, placement 1.28+): a
        concurrent change of the consumer wins, with a 409 (PreconditionFailed, "conflict")."""
        from novamove.cloud.doctor_reads import PMV_CONSUMER_GEN
        if self._placement_pick(PMV_CONSUMER_GEN) != PMV_CONSUMER_GEN:
            raise errors.PreconditionFailed(
                f"deleting allocations guarded by the consumer generation needs placement {PMV_CONSUMER_GEN}; "
                "this cloud's placement is older: `openstack resource provider allocation delete "
                f"{consumer}` deletes them unguarded")
        self._request("placement", "PUT", f"/allocations/{consumer}", microversion=PMV_CONSUMER_GEN,
                      json={"allocations": {}, "consumer_generation": generation,
                            "project_id": project_id, "user_id": user_id},
                      what=f"delete allocations of consumer {consumer}")

    def reset_server_state(self, server_id: str, state: str) -> None:
        """os-resetState: vm_state `state` (active or error) and no task state; the power state
        and the host are not touched."""
        if state not in ("active", "error"):
            raise errors.UsageError(f"os-resetState knows active and error, not {state!r}")
        self._compute("POST", f"/servers/{server_id}/action", json={"os-resetState": {"state": state}},
                      microversion="2.1", what=f"reset state of server {server_id}")


# ---------------------------------------------------------------------- helpers

def _raw(resource: Any) -> dict:
    """An openstacksdk resource as Nova's own JSON names (what novamove.cloud.convert reads)."""
    if isinstance(resource, dict) and not hasattr(resource, "to_dict"):
        return resource
    # The body as Nova sent it (the attributes openstacksdk knows): to_dict() rebuilds it at
    # about a millisecond per server.
    return dict(resource._body.attributes)


def _next_marker(links: Any) -> Optional[str]:
    """The marker of a Nova listing's "next" link, if the page was full."""
    from urllib.parse import parse_qs, urlparse
    for link in links or ():
        if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
            marker = parse_qs(urlparse(link["href"]).query).get("marker")
            if marker:
                return marker[0]
    return None


def _replace_service(service: Service, **changes: Any) -> Service:
    import dataclasses
    return dataclasses.replace(service, **changes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _connect_reason(exc: BaseException) -> str:
    """'Unable to establish connection to URL (connection refused)' without urllib3's novel."""
    text = _first_line(exc)
    head = text.split(": HTTPConnectionPool")[0].split(": HTTPSConnectionPool")[0]
    for marker, short in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                          ("Name or service not known", "unknown host"),
                          ("No route to host", "no route to host"),
                          ("Hostname mismatch", "TLS certificate does not match the host name"),
                          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted: give its CA with "
                           "--os-cacert, OS_CACERT or cacert in clouds.yaml, or use --insecure")):
        if marker in text:
            return f"{head} ({short})"
    return head


def _untrusted_certificate(exc: BaseException) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


def _untrusted_message(exc: BaseException) -> str:
    """One line: whose certificate was not trusted, why, and the fix."""
    text = _first_line(exc)
    url = re.search(r"https://[^\s:/]+(?::\d+)?", text)
    why = re.search(r"certificate verify failed: ([^(']+)", text)
    return (f"the TLS certificate of {url.group(0) if url else 'the cloud API'} is not trusted"
            + (f" ({why.group(1).strip()})" if why else "")
            + ": give its CA with --os-cacert, OS_CACERT or cacert in clouds.yaml (library: "
              "cacert=PATH), or turn verification off with --insecure / insecure: true")


def _last_line(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _nova_message(response: Any) -> str:
    """The message of a Nova/Placement error body ({"badRequest": {"message": ...}} etc.)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:300]
    if isinstance(body, dict):
        if "errors" in body and body["errors"]:  # placement
            return body["errors"][0].get("detail") or body["errors"][0].get("title") or ""
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return value["message"]
    return str(body)[:300]


def _http_error(status: Optional[int], message: str, what: str) -> errors.NovamoveError:
    message = " ".join(str(message).split())
    text = f"{what}: {message}" if message else what
    if status == 404:
        return errors.NotFound(text)
    if status == 403:
        return errors.Forbidden(f"{what}: forbidden (403) - this needs an admin role on the cloud"
                                + (f" ({message})" if message else ""))
    if status == 401:
        return errors.AuthError(f"{what}: the cloud rejected the credentials (401)")
    if status == 409:
        return errors.PreconditionFailed(f"{what}: conflict (409): {message}")
    if status in (400, 422):
        return errors.PreconditionFailed(f"{what}: refused by the cloud ({status}): {message}")
    if status in (502, 503, 504):
        return errors.Unreachable(f"{what}: the cloud API is unavailable ({status})")
    return errors.NovamoveError(f"{what}: HTTP {status}: {message}")
