"""The cloud adapter: the only package that imports openstacksdk.

    cloud = novamove.cloud.connect("mycloud")     # clouds.yaml entry, or OS_* variables
    cloud.list_compute_services()

Authentication is openstacksdk's: clouds.yaml (`cloud`), OS_* variables, or an `auth` dict
passed by a library caller. novamove never logs or stores any of it.
"""

from __future__ import annotations

import logging
import os
from typing import Optional
from urllib.parse import urlsplit

from novamove import errors
from novamove.cloud.adapter import Cloud, is_uuid  # noqa: F401
from novamove.cloud.spec import ConnectionSpec  # noqa: F401

__all__ = ["Cloud", "ConnectionSpec", "connect", "is_uuid"]

# keystoneauth/openstacksdk warn on stderr through logging's last-resort handler (e.g. "Failed
# to discover available identity versions"); novamove reports errors itself, in one line.
# --debug (or any configured root logging) still sees them: handlers on ancestors still apply.
for _name in ("keystoneauth", "openstack"):
    logging.getLogger(_name).addHandler(logging.NullHandler())


DEFAULT_API_TIMEOUT = 60.0   # seconds per HTTP request when neither clouds.yaml nor options say


def connect(cloud=None, *, environ=None, **options) -> Cloud:
    """Open a connection through openstacksdk and wrap it in the adapter.

    `cloud` is a clouds.yaml name, a cloud config dict, or a ConnectionSpec (one holding an
    `sdk_connection` is wrapped as it is, with its compute_api_version as the ceiling);
    keyword options are ConnectionSpec fields (or their aliases: validate_certs, ca_cert,
    max_microversion...).
    OS_* variables count on top of a named cloud, as in python-openstackclient (see
    ConnectionSpec.with_environment; `environ` replaces os.environ, {} turns that off).
    Nothing is requested here except what openstacksdk needs to read its configuration; the
    first API call authenticates. Errors: AuthError for an unknown cloud or unusable config,
    UsageError for a malformed option (compute API version, timeout, interface).

    Every request is bounded: api_timeout defaults to 60 s when neither the spec nor
    clouds.yaml sets one. The compute microversion ceiling is, first found: the spec's
    compute_api_version (--os-compute-api-version, OS_COMPUTE_API_VERSION), the deprecated
    $NOVAMOVE_MAX_MICROVERSION, then compute_api_version in clouds.yaml ("latest": none).
    """
    import openstack.config
    import openstack.connection
    from openstack import exceptions as sdk

    spec = ConnectionSpec.build(cloud, **options)
    env = os.environ if environ is None else environ
    if spec.sdk_connection is not None:
        # A connection the caller (the OSC plugin) already made: only the ceiling is ours.
        return Cloud(spec.sdk_connection, max_microversion=_ceiling(spec.validated(), None, env))
    spec = spec.with_environment(environ).validated()
    kwargs: dict = {"app_name": "novamove", "app_version": _version()}
    if isinstance(spec.cloud, dict):
        kwargs.update(spec.cloud)
    elif spec.cloud:
        kwargs["cloud"] = spec.cloud
    for name in ("auth", "auth_type", "region_name", "interface", "cacert", "cert", "key",
                 "api_timeout"):
        value = getattr(spec, name)
        if value is not None:
            kwargs[name] = value
    if spec.verify is not None:
        kwargs["verify"] = spec.verify
        kwargs["insecure"] = not spec.verify     # clouds.yaml `insecure` would win otherwise
    # Fail fast on an unreachable endpoint instead of retrying for minutes.
    kwargs.setdefault("connect_retries", 0)
    try:
        region = openstack.config.get_cloud_region(**kwargs)
        if region.config.get("api_timeout") in (None, ""):
            region.config["api_timeout"] = DEFAULT_API_TIMEOUT
        conn = openstack.connection.Connection(config=region)
    except sdk.ConfigException as exc:
        raise errors.AuthError(_config_message(spec.cloud if isinstance(spec.cloud, str) else None,
                                               exc)) from exc
    except Exception as exc:  # keystoneauth option errors and friends
        raise errors.AuthError("no usable cloud credentials (use --os-cloud, $OS_CLOUD or OS_* "
                               f"variables): {str(exc).splitlines()[0]}") from exc
    remember_environment_settings(getattr(getattr(conn, "session", None), "session", None))
    return Cloud(conn, max_microversion=_ceiling(spec, region, env))


def remember_environment_settings(http) -> None:
    """Read the environment's proxy and CA-bundle settings once per endpoint, not per request.

    requests merges them into every request (Session.merge_environment_settings): two scans of
    os.environ for *_proxy variables, about half of a request's CPU in novamove's client (a
    drain polls several times a second, bench/drain_cpu.py). The answer depends only on the
    endpoint (scheme and host, for no_proxy), the call's own settings and the environment, which
    a command does not change while it runs: so the first answer per endpoint is kept."""
    merge = getattr(http, "merge_environment_settings", None)
    if merge is None or getattr(merge, "remembered", False):
        return
    known: dict = {}

    def remembered(url, proxies, stream, verify, cert):
        parts = urlsplit(url)
        try:
            key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
            hash(key)
        except TypeError:             # an unhashable setting: ask requests every time
            return merge(url, proxies, stream, verify, cert)
        if key not in known:
            known[key] = merge(url, proxies, stream, verify, cert)
        settings = dict(known[key])
        settings["proxies"] = dict(settings["proxies"] or {})
        if proxies is not None:
            # requests fills the caller's dict with the environment's proxies: so do we.
            for k, v in settings["proxies"].items():
                proxies.setdefault(k, v)
        return settings
    remembered.remembered = True
    http.merge_environment_settings = remembered


def _ceiling(spec: ConnectionSpec, region, env) -> Optional[str]:
    """The compute microversion ceiling (None: as high as the cloud goes)."""
    from novamove.cloud.spec import check_compute_api_version
    value = spec.compute_api_version
    if value is None and env.get("NOVAMOVE_MAX_MICROVERSION"):
        value = check_compute_api_version(env["NOVAMOVE_MAX_MICROVERSION"], "NOVAMOVE_MAX_MICROVERSION")
        if not _warned:
            _warned.append(True)
            logging.getLogger("novamove").warning(DEPRECATED_MAX_MICROVERSION)
    if value is None and region is not None:
        configured = None
        try:
            configured = region.get_api_version("compute")
        except Exception:
            pass
        # "2" (openstacksdk's default) means any 2.x; only 2.NN is a ceiling.
        if configured and "." in str(configured):
            value = check_compute_api_version(configured, "compute_api_version in clouds.yaml")
    return None if value in (None, "latest") else value


DEPRECATED_MAX_MICROVERSION = ("NOVAMOVE_MAX_MICROVERSION is deprecated: use --os-compute-api-version "
                               "or OS_COMPUTE_API_VERSION")
_warned: list = []


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("novamove")
    except Exception:
        return "0"


def _config_message(cloud: Optional[str], exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if cloud and "not found" in text.lower():
        return f"cloud '{cloud}' is not in clouds.yaml ({text})"
    return f"cloud configuration: {text}"
