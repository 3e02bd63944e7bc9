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

from novamove import errors
from novamove.cloud.adapter import Cloud, is_uuid  # noqa: F401
from novamove.cloud.spec import ConnectionSpec  # noqa: F401

__all__ = ["Cloud", "ConnectionSpec", "connect", "is_uuid"]

# keystoneauth/openstacksdk warn on stderr through logging's last-resort handler (e.g. "Failed
# to discover available identity versions"); novamove reports errors itself, in one line.
# --debug (or any configured root logging) still sees them: handlers on ancestors still apply.
for _name in ("keystoneauth", "openstack"):
    logging.getLogger(_name).addHandler(logging.NullHandler())


def connect(cloud=None, **options) -> Cloud:
    """Open a connection through openstacksdk and wrap it in the adapter.

    `cloud` is a clouds.yaml name, a cloud config dict, or a ConnectionSpec; keyword options
    are ConnectionSpec fields (or their aliases: validate_certs, ca_cert, max_microversion...).
    Nothing is requested here except what openstacksdk needs to read its configuration; the
    first API call authenticates. Errors: AuthError for an unknown cloud or unusable config.
    The compute microversion ceiling comes from the spec, else $NOVAMOVE_MAX_MICROVERSION.
    """
    import openstack
    from openstack import exceptions as sdk

    spec = ConnectionSpec.build(cloud, **options)
    cap = spec.compute_api_version or os.environ.get("NOVAMOVE_MAX_MICROVERSION") or None
    if spec.sdk_connection is not None:
        return Cloud(spec.sdk_connection, max_microversion=cap)
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
    # Fail fast on an unreachable endpoint instead of retrying for minutes.
    kwargs.setdefault("connect_retries", 0)
    try:
        conn = openstack.connect(**kwargs)
    except sdk.ConfigException as exc:
        raise errors.AuthError(_config_message(spec.cloud if isinstance(spec.cloud, str) else None,
                                               exc)) from exc
    except Exception as exc:  # keystoneauth option errors and friends
        raise errors.AuthError("no usable cloud credentials (use --os-cloud, $OS_CLOUD or OS_* "
                               f"variables): {str(exc).splitlines()[0]}") from exc
    return Cloud(conn, max_microversion=cap)


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
