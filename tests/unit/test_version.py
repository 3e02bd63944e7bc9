"""One source for the version: novamove/__init__.py.

pyproject.toml reads it (dynamic version), galaxy.yml and the collection's changelog must say
the same, no module's version_added may be newer than the collection, and CHANGELOG.md has a
section for it (docs/versioning.md).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import novamove

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "novamove" / "openstack"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", novamove.__version__), novamove.__version__


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"], "write the version only in novamove/__init__.py"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "novamove.__version__"


def test_galaxy_yml_has_the_same_version():
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert str(galaxy["version"]) == novamove.__version__


def test_no_module_is_added_after_the_collection_version():
    seen = {}
    for module in sorted((COLLECTION / "plugins" / "modules").glob("*.py")):
        match = re.search(r"^version_added:\s*['\"]?([\d.]+)", module.read_text(), re.M)
        assert match, f"{module.name} has no version_added"
        seen[module.stem] = match.group(1)
    late = {m: v for m, v in seen.items() if _key(v) > _key(novamove.__version__)}
    assert not late, f"version_added newer than the collection's {novamove.__version__}: {late}"


def test_changelogs_name_the_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{novamove.__version__}]" in changelog, "CHANGELOG.md has no section for this version"
    released = yaml.safe_load((COLLECTION / "changelogs" / "changelog.yaml").read_text())
    assert novamove.__version__ in {str(v) for v in released["releases"]}
