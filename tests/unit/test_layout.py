"""The package's layout is its architecture: these rules keep it so.

- only novamove.cloud (and the minicloud's test helper) imports openstacksdk;
- nothing under novamove.engine, novamove.cloud, planner, rebalance or model imports a front (api, cli,
  report, osc) or the Ansible collection;
- the engine's shared pieces import no family; a family imports no family above it
  (single < batch < campaign, evacuate; campaign and evacuate never each other); only
  `recover`, which finishes any family's run, knows them all;
- no engine file is over 500 lines.
Imports inside functions count too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "novamove"
FRONTS = ("novamove.api", "novamove.cli", "novamove.report", "novamove.osc", "ansible_collections")
FAMILIES = {"single": 0, "batch": 1, "campaign": 2, "evacuate": 2}
MAX_LINES = 500


def modules(under: str):
    for path in sorted((ROOT / under).rglob("*.py")) if under else [ROOT / "planner.py", ROOT / "model.py", *sorted(ROOT.glob("rebalance*.py"))]:
        name = "novamove." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def imports_of(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def family(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "engine" and parts[2] in FAMILIES:
        return parts[2]
    return None


def test_only_the_cloud_adapter_imports_openstacksdk():
    offenders = []
    for under in ("engine", "cli", "osc", ""):
        for name, path in modules(under):
            if any(i == "openstack" or i.startswith("openstack.") for i in imports_of(path)):
                offenders.append(name)
    for name in ("novamove.api", "novamove.report"):
        path = ROOT / (name.split(".")[1] + ".py")
        if any(i == "openstack" or i.startswith("openstack.") for i in imports_of(path)):
            offenders.append(name)
    assert not offenders


@pytest.mark.parametrize("under", ["engine", "cloud", ""])
def test_no_import_runs_up_to_a_front(under):
    offenders = [(name, i) for name, path in modules(under) for i in imports_of(path)
                 if i.startswith(FRONTS)]
    assert not offenders


def test_shared_pieces_import_no_family_and_families_only_those_below():
    offenders = []
    for name, path in modules("engine"):
        mine = family(name)
        for i in imports_of(path):
            theirs = family(i)
            if theirs is None or theirs == mine or name == "novamove.engine.recover":
                continue
            if mine is None:
                offenders.append((name, i, "a shared piece imports a family"))
            elif FAMILIES[theirs] >= FAMILIES[mine]:
                offenders.append((name, i, f"{mine} imports {theirs}"))
    assert not offenders


def test_no_engine_file_is_over_500_lines():
    long = {name: n for name, path in modules("engine")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_the_cloud_imports_no_engine():
    offenders = [(name, i) for name, path in modules("cloud") for i in imports_of(path)
                 if i.startswith("novamove.engine")]
    assert not offenders


def test_runs_are_started_and_finished_only_by_the_run_frame():
    """A run's life is the run frame's (engine/frame.py): no verb starts or finishes a run by
    hand, so none can forget either (journal.py defines them)."""
    allowed = {ROOT / "engine" / "frame.py", ROOT / "engine" / "journal.py"}
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("start_run", "finish_run"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
    assert not offenders, offenders
