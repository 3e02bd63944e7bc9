"""The engine's needs of the cloud adapter (novamove.cloud.protocol.CloudAPI) against the real
adapter, the engine's own uses and the unit tests' in-memory Nova: none of them can drift."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pytest

import novamove
from fakenova import FakeNova
from novamove.cloud.adapter import Cloud
from novamove.cloud.protocol import CloudAPI

ENGINE = pathlib.Path(novamove.__file__).parent / "engine"
CLOUD = pathlib.Path(novamove.__file__).parent / "cloud"


def members():
    names = {n for n in vars(CloudAPI) if not n.startswith("_")}
    return names | set(getattr(CloudAPI, "__annotations__", {}))


def callables():
    return sorted(n for n in members() if inspect.isfunction(vars(CloudAPI).get(n)))


def params(fn):
    """(name, kind, has a default) of each parameter but self."""
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in list(sig.parameters.values())[1:]]


def engine_uses():
    """Every X of `cloud.X` / `<obj>.cloud.X` and getattr/hasattr(cloud, "X") under novamove/engine."""
    used: dict[str, str] = {}
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and _is_cloud(node.value):
                used.setdefault(node.attr, f"{path.relative_to(ENGINE)}:{node.lineno}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2 and _is_cloud(node.args[0])
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                used.setdefault(node.args[1].value, f"{path.relative_to(ENGINE)}:{node.lineno}")
    return used


def _is_cloud(node):
    return ((isinstance(node, ast.Name) and node.id == "cloud")
            or (isinstance(node, ast.Attribute) and node.attr == "cloud"))


def test_the_protocol_lists_what_the_engine_uses():
    used = engine_uses()
    assert len(used) > 20                          # the parse found the engine's calls
    missing = {name: where for name, where in used.items() if name not in members()}
    assert not missing, f"the engine uses these of the cloud adapter, not in CloudAPI: {missing}"


@pytest.mark.parametrize("name", sorted(members()))
def test_the_adapter_has_every_member(name):
    assert hasattr(Cloud, name) or name in getattr(Cloud, "__annotations__", {}) or name == "requests"


@pytest.mark.parametrize("name", callables())
def test_the_adapter_signatures_are_the_protocols(name):
    assert params(getattr(Cloud, name)) == params(getattr(CloudAPI, name))


@pytest.mark.parametrize("name", sorted(members()))
def test_the_fake_has_every_member(name):
    assert hasattr(FakeNova(), name)


@pytest.mark.parametrize("name", callables())
def test_the_fake_signatures_fit_the_protocols(name):
    """The fake may name parameters its own way only where the engine passes them by position;
    it accepts every parameter the protocol has, in order, keyword-only ones by name."""
    fake = params(getattr(FakeNova, name))
    want = params(getattr(CloudAPI, name))
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    fake_pos = [p for p in fake if p[1] in positional]
    want_pos = [p for p in want if p[1] in positional]
    assert len(fake_pos) >= len(want_pos), f"{name}: takes fewer positional parameters than {want_pos}"
    for (fname, _, fdefault), (wname, _, wdefault) in zip(fake_pos, want_pos):
        assert fdefault or not wdefault, f"{name}({wname}): optional in the adapter, required in the fake"
        if wdefault:                                  # optional ones are passed by name too
            assert fname == wname, f"{name}: parameter {fname!r} is the adapter's {wname!r}"
    assert all(p[2] for p in fake_pos[len(want_pos):]), f"{name}: the fake needs more than the adapter"
    fake_kw = {p[0] for p in fake if p[1] == inspect.Parameter.KEYWORD_ONLY or p[1] in positional}
    for wname, kind, _ in want:
        if kind == inspect.Parameter.KEYWORD_ONLY:
            assert wname in fake_kw, f"{name}: the fake lacks keyword {wname!r}"


def test_the_cloud_package_does_not_import_the_engine():
    for path in CLOUD.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("novamove.engine"), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("novamove.engine") for a in node.names), path
