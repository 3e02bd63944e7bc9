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

__all__ = ["Cloud", "connect", "is_uuid"]

# keystoneauth/openstacksdk warn on stderr through logging's last-resort handler (e.g. "Failed
# to discover available identity versions"); novamove reports errors itself, in one line.
# --debug (or any configured root logging) still sees them: handlers on ancestors still apply.
for _name in ("keystoneauth", "openstack"):
    logging.getLogger(_name).addHandler(logging.NullHandler())


def connect(cloud: str | None = None, auth: dict | None = None, region_name: str | None = None,
            interface: str | None = None, validate_certs: bool | None = None,
            max_microversion: Optional[str] = None) -> Cloud:
    """Open a connection through openstacksdk and wrap it in the adapter.

    Nothing is requested here except what openstacksdk needs to read its configuration; the
    first API call authenticates. Errors: AuthError for an unknown cloud or unusable config.
    `max_microversion` (or $NOVAMOVE_MAX_MICROVERSION) caps the compute microversion, to act
    like an older cloud.
    """
    import openstack
    from openstack import exceptions as sdk

    kwargs: dict = {}
    if cloud:
        kwargs["cloud"] = cloud
    if auth:
        kwargs["auth"] = auth
    if region_name:
        kwargs["region_name"] = region_name
    if interface:
        kwargs["interface"] = interface
    if validate_certs is not None:
        kwargs["verify"] = validate_certs
    # Fail fast on an unreachable endpoint instead of retrying for minutes.
    kwargs.setdefault("connect_retries", 0)
    try:
        conn = openstack.connect(**kwargs)
    except sdk.ConfigException as exc:
        raise errors.AuthError(_config_message(cloud, exc)) from exc
    except Exception as exc:  # keystoneauth option errors and friends
        raise errors.AuthError("no usable cloud credentials (use --os-cloud, $OS_CLOUD or OS_* "
                               f"variables): {str(exc).splitlines()[0]}") from exc
    cap = max_microversion or os.environ.get("NOVAMOVE_MAX_MICROVERSION") or None
    return Cloud(conn, max_microversion=cap)


def _config_message(cloud: Optional[str], exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if cloud and "not found" in text.lower():
        return f"cloud '{cloud}' is not in clouds.yaml ({text})"
    return f"cloud configuration: {text}"
