"""How to reach a cloud, as one value: built once from CLI options, Ansible options or a
library caller, and turned into a connection only by `novamove.cloud.connect`.

Names follow openstacksdk / openstack.cloud (`cloud`, `auth`, `auth_type`, `region_name`,
`interface`, `verify`, `cacert`, `cert`, `key`, `api_timeout`, `compute_api_version`). None
means "let openstacksdk decide" (clouds.yaml, then OS_* variables). Holds secrets only inside
`auth` (or a dict `cloud`), so never log or journal it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Optional, Union


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

    def __repr__(self) -> str:   # never show auth secrets
        shown = {f.name: getattr(self, f.name) for f in fields(self)
                 if getattr(self, f.name) is not None and f.name != "auth"}
        if isinstance(shown.get("cloud"), dict):
            shown["cloud"] = "<dict>"
        if self.auth is not None:
            shown["auth"] = "<hidden>"
        return f"ConnectionSpec({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
