"""The documents novamove prints and returns (JSON, YAML, Ansible, OSC): key names follow
openstacksdk's attribute names where one exists. Lightweight on purpose (no engine, no rich):
the engine's results and the renderer (report.py) both use it."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional


# novamove key -> openstacksdk attribute name (report.py has the other kinds of rows).
MOVE_KEYS = {"source": "source_compute", "dest": "dest_compute"}
FACT_KEYS = {"host": "compute_host"}                       # before / after of a server


def renamed(data: Mapping, keys: Mapping[str, str]) -> dict:
    return {keys.get(k, k): v for k, v in data.items()}


def _node(facts: Mapping, host: Optional[str]) -> Optional[str]:
    """The hypervisor hostname in a before/after view, if that view is on `host`."""
    if host and facts.get("host") == host:
        return facts.get("hypervisor_hostname") or None
    return None


def move_document(result) -> dict:
    """A MoveResult as JSON-ready data with openstacksdk key names: the one place that makes it
    (MoveResult.to_dict() returns this; the CLI, the Ansible modules and OSC show it).
    `source_node` / `dest_node` (hypervisor hostnames, as Nova's migration record names them)
    come from the before/after views when the engine did not set them."""
    data = dataclasses.asdict(result)
    for key in ("isolation_seconds", "elapsed_seconds"):
        if isinstance(data.get(key), float):
            data[key] = round(data[key], 2)
    before, after = data.get("before") or {}, data.get("after") or {}
    if data.get("source_node") is None and "source_node" in data:
        data["source_node"] = _node(before, data.get("source"))
    if data.get("dest_node") is None and "dest_node" in data:
        data["dest_node"] = _node(after, data.get("dest"))
    doc = renamed(data, MOVE_KEYS)
    for side in ("before", "after"):
        if isinstance(doc.get(side), dict):
            doc[side] = renamed(doc[side], FACT_KEYS)
    return doc
