"""What a move returns: a plain result object the CLI, the Ansible module and scripts share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from novamove.errors import EXIT_FAILED, EXIT_OK
from novamove.model import Server


def server_facts(server: Optional[Server]) -> dict:
    """The before/after view of a server in reports: where it is and what it looks like."""
    if server is None:
        return {}
    return {
        "host": server.host,
        "hypervisor_hostname": server.hypervisor_hostname,
        "status": server.status,
        "power_state": server.power,
        "flavor": server.flavor.name if server.flavor else None,
    }


def summary_line(name: str, source: Optional[str], dest: Optional[str], status: Optional[str]) -> str:
    return f"{name} was migrated from {source} to {dest} and has a status of {status}"


@dataclass
class MoveResult:
    ok: bool
    changed: bool
    summary: str
    server_id: str = ""
    server_name: str = ""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    source: Optional[str] = None        # service host (source_compute in documents)
    dest: Optional[str] = None          # service host (dest_compute in documents)
    source_node: Optional[str] = None   # hypervisor hostnames, as Nova's migration record names
    dest_node: Optional[str] = None     # them (from before/after when not set)
    mode: Optional[str] = None          # live | cold
    strategy: Optional[str] = None      # native | isolate
    run_id: Optional[str] = None
    migration_id: Optional[str] = None
    migration_status: Optional[str] = None
    error: Optional[str] = None         # one line, None when ok
    exit_code: int = EXIT_OK
    check_mode: bool = False
    microversion: Optional[str] = None
    api_requests: int = 0               # HTTP requests this call made (auth included)
    isolation_seconds: float = 0.0      # how long other computes were disabled (isolate)
    disabled_services: list = field(default_factory=list)
    elapsed_seconds: float = 0.0
    # Nova's x-openstack-request-id of each mutating call (migrate, confirm, abort...), in order.
    request_ids: list[str] = field(default_factory=list)
    # A live move that stalled: what was done about it ("force-completed", "force-completed
    # (post-copy)", "aborted", "fell back to cold", "left running"); None without a stall.
    stall: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """The result with openstacksdk key names (source_compute, dest_compute, source_node,
        dest_node; before/after compute_host): the document the CLI, Ansible and OSC show."""
        from novamove.documents import move_document
        return move_document(self)

    @classmethod
    def failure(cls, error: str, exit_code: int = EXIT_FAILED, **kwargs: Any) -> "MoveResult":
        return cls(ok=False, changed=kwargs.pop("changed", True), summary=kwargs.pop("summary", error),
                   error=error, exit_code=exit_code, **kwargs)


@dataclass(frozen=True)
class Snapshot:
    """One observation while waiting, handed to the `progress` callback (display-free)."""
    phase: str                          # scheduling | migrating | confirming | aborting | done
    elapsed: float
    server_status: Optional[str] = None
    task_state: Optional[str] = None
    host: Optional[str] = None
    migration_id: Optional[str] = None
    migration_status: Optional[str] = None
    dest: Optional[str] = None
    memory_total_bytes: Optional[int] = None
    memory_remaining_bytes: Optional[int] = None
    disk_total_bytes: Optional[int] = None
    disk_remaining_bytes: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
