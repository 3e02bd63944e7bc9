"""The OSC plugin module (entry point group `openstack.cli.extension`, name `novamove`).

OSC imports this on every `openstack` run, so it imports nothing heavy. It contributes the
`openstack.novamove.v1` command group and `client_manager.novamove`: the connection spec the
commands hand to novamove.api, made from the connection OSC already authenticated (its session,
region, interface, cacert/insecure and client certificate), never from a second read of
clouds.yaml.
"""

from __future__ import annotations

API_NAME = "novamove"
API_VERSION_OPTION = "os_novamove_api_version"
API_VERSIONS = ("1",)
DEFAULT_API_VERSION = "1"


def compute_api_ceiling(version) -> "str | None":
    """The compute API version the user chose (`--os-compute-api-version`,
    $OS_COMPUTE_API_VERSION or `compute_api_version` in clouds.yaml) as novamove's microversion
    ceiling, as in openstacksdk. A bare major version ("2") or "latest" is no ceiling: novamove
    then negotiates as high as the cloud allows."""
    text = str(version or "").strip()
    if not text or text.lower() == "latest" or "." not in text:
        return None
    return text


def make_client(instance):
    """`client_manager.novamove`: a novamove.api.ConnectionSpec wrapping OSC's SDK connection."""
    from novamove.api import ConnectionSpec

    instance.setup_auth()
    conn = instance.sdk_connection
    _identify(conn)
    # The version the user chose, not OSC's fallback: OSC's own `_api_version["compute"]` is
    # "2.1" when nothing was chosen, which as a ceiling would forbid every host-targeted move.
    config = getattr(getattr(instance, "_cli_options", None), "config", None) or {}
    return ConnectionSpec(sdk_connection=conn,
                          compute_api_version=compute_api_ceiling(config.get("compute_api_version")))


def _identify(conn) -> None:
    """Add novamove/VERSION to the User-Agent of OSC's session, so cloud API logs can tell
    novamove's requests apart (the SDK connections novamove makes itself say so too)."""
    session = getattr(conn, "session", None)
    agents = getattr(session, "additional_user_agent", None)
    if not isinstance(agents, list):
        return
    try:
        from importlib.metadata import version
        mine = ("novamove", version("novamove"))
    except Exception:
        mine = ("novamove", "0")
    if mine not in agents:
        agents.append(mine)


def build_option_parser(parser):
    """The option every OSC plugin contributes: its API version (there is only v1)."""
    import os

    parser.add_argument(
        "--os-novamove-api-version",
        metavar="<novamove-api-version>",
        default=os.environ.get("OS_NOVAMOVE_API_VERSION"),
        help="novamove plugin API version, default=%s (Env: OS_NOVAMOVE_API_VERSION)"
             % DEFAULT_API_VERSION,
    )
    return parser
