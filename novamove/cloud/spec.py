"""How to reach a cloud, as one value: built once from CLI options, Ansible options or a
library caller, and turned into a connection only by `novamove.cloud.connect`.

Names follow openstacksdk / openstack.cloud (`cloud`, `auth`, `auth_type`, `region_name`,
`interface`, `verify`, `cacert`, `cert`, `key`, `api_timeout`, `compute_api_version`). None
means "let openstacksdk decide" (clouds.yaml, then OS_* variables). Holds secrets only inside
`auth` (or a dict `cloud`), so never log or journal it.

OS_* variables on top of a named cloud, as python-openstackclient does: `with_environment()`
fills every field the caller left None from its OS_* variable (OS_CLOUD, OS_REGION_NAME,
OS_INTERFACE, OS_CACERT, OS_CERT, OS_KEY, OS_INSECURE, OS_API_TIMEOUT, OS_COMPUTE_API_VERSION),
so `OS_INTERFACE=internal` counts even when the cloud comes from clouds.yaml. Explicit values
(CLI options, Ansible options, keyword arguments) win over the variables; the variables win
over clouds.yaml. `novamove.cloud.connect` applies it (except to a whole cloud dict).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Optional, Union

# 2.NN or "latest" (no ceiling): what --os-compute-api-version / OS_COMPUTE_API_VERSION accept.
COMPUTE_API_VERSION_RE = re.compile(r"^2\.(0|[1-9][0-9]{0,2})$")

# field -> the OS_* variable python-openstackclient reads for it
ENVIRONMENT = {
    "cloud": "OS_CLOUD",
    "region_name": "OS_REGION_NAME",
    "interface": "OS_INTERFACE",
    "cacert": "OS_CACERT",
    "cert": "OS_CERT",
    "key": "OS_KEY",
    "api_timeout": "OS_API_TIMEOUT",
    "compute_api_version": "OS_COMPUTE_API_VERSION",
}
INTERFACES = ("public", "internal", "admin")
_TRUE = ("1", "true", "yes", "on")


def check_compute_api_version(value: Optional[str], where: str = "compute API version") -> Optional[str]:
    """`value` normalised ("2.60", "latest" or None; a bare "2" is "latest"); anything else is
    a one-line UsageError."""
    from novamove.errors import UsageError
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() == "latest" or text == "2":
        return "latest"          # "2" (openrc files, openstacksdk's default): any 2.x
    if not COMPUTE_API_VERSION_RE.match(text):
        raise UsageError(f"{where} {value!r} is not 2.NN (e.g. 2.79) or 'latest'")
    return text


def check_api_timeout(value: Any, where: str = "api_timeout") -> Optional[float]:
    from novamove.errors import UsageError
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where} {value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UsageError(f"{where} must be more than 0 seconds (got {value!r})")
    return seconds


@dataclass(frozen=True)
class ConnectionSpec:
    cloud: Union[str, dict, None] = None     # clouds.yaml name, or a whole cloud config dict
    auth: Optional[dict] = None
    auth_type: Optional[str] = None
    region_name: Optional[str] = None
    interface: Optional[str] = None
    verify: Optional[bool] = None            # validate_certs / --insecure
    cacert: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    api_timeout: Optional[float] = None
    compute_api_version: Optional[str] = None   # a ceiling for the negotiated microversion
    # An already authenticated openstack.connection.Connection to reuse as it is (the OSC
    # plugin passes `client_manager.sdk_connection`); the options above other than
    # compute_api_version are then ignored: that connection already made those choices.
    sdk_connection: Any = None

    # Names library callers and Ansible already use for the same things.
    ALIASES = {"validate_certs": "verify", "ca_cert": "cacert", "client_cert": "cert",
               "client_key": "key", "max_microversion": "compute_api_version"}

    @classmethod
    def build(cls, cloud: Any = None, **options: Any) -> "ConnectionSpec":
        """A spec from a cloud name / dict / spec plus keyword options (aliases accepted);
        options that are None do not override what `cloud` already says."""
        base = cloud if isinstance(cloud, ConnectionSpec) else cls(cloud=cloud)
        known = {f.name for f in fields(cls)}
        changes = {}
        for name, value in options.items():
            name = cls.ALIASES.get(name, name)
            if name not in known:
                raise TypeError(f"unknown connection option {name!r}")
            if value is not None:
                changes[name] = value
        return replace(base, **changes) if changes else base

    def with_environment(self, environ: Optional[Mapping[str, str]] = None) -> "ConnectionSpec":
        """This spec with every None field filled from its OS_* variable (see the module
        docstring). A whole cloud dict, or an SDK connection to reuse, is taken as complete:
        nothing is added to it."""
        import os
        env = os.environ if environ is None else environ
        if isinstance(self.cloud, dict) or self.sdk_connection is not None:
            return self
        changes: dict[str, Any] = {}
        for name, var in ENVIRONMENT.items():
            value = env.get(var)
            if getattr(self, name) is None and value not in (None, ""):
                changes[name] = value
        if self.verify is None and str(env.get("OS_INSECURE", "")).strip().lower() in _TRUE:
            changes["verify"] = False
        if "api_timeout" in changes:
            changes["api_timeout"] = check_api_timeout(changes["api_timeout"], "OS_API_TIMEOUT")
        if "compute_api_version" in changes:
            changes["compute_api_version"] = check_compute_api_version(
                changes["compute_api_version"], "OS_COMPUTE_API_VERSION")
        return replace(self, **changes) if changes else self

    def validated(self) -> "ConnectionSpec":
        """The same spec with compute_api_version / api_timeout / interface checked (one-line
        UsageError when malformed)."""
        from novamove.errors import UsageError
        if self.interface is not None and self.interface not in INTERFACES:
            raise UsageError(f"interface {self.interface!r} is not one of {', '.join(INTERFACES)}")
        return replace(self, compute_api_version=check_compute_api_version(self.compute_api_version),
                       api_timeout=check_api_timeout(self.api_timeout))

    # For front ends that check an option before building a spec (the CLI's callbacks).
    check_compute_api_version = staticmethod(check_compute_api_version)
    check_api_timeout = staticmethod(check_api_timeout)

    def __repr__(self) -> str:   # never show auth secrets
        shown = {f.name: getattr(self, f.name) for f in fields(self)
                 if getattr(self, f.name) is not None and f.name != "auth"}
        if isinstance(shown.get("cloud"), dict):
            shown["cloud"] = "<dict>"
        if self.auth is not None:
            shown["auth"] = "<hidden>"
        if self.sdk_connection is not None:
            shown["sdk_connection"] = "<connection>"
        return f"ConnectionSpec({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
