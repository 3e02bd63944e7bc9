"""The collection's execution-environment.yml (ansible-builder schema 3, for AWX / Ansible
Automation Platform): `ansible-builder create` turns it into a build context whose Containerfile
installs novamove with both journal drivers. Building the image itself needs podman or docker,
which these machines do not have (docs/ansible.md says so); the context is what is checked here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "novamove" / "openstack"
NOVAMOVE = "novamove[mysql,postgresql]"


def _builder(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ansible_builder", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_shipped_definition_is_schema_3_and_installs_novamove_with_both_drivers():
    ee = yaml.safe_load((COLLECTION / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert NOVAMOVE in ee["dependencies"]["python"]
    assert {"name": "novamove.openstack", "version": ">=0.2.0"} in ee["dependencies"]["galaxy"]["collections"]
    # what an image that installs the collection (introspection) adds: the same requirement
    meta = yaml.safe_load((COLLECTION / "meta" / "execution-environment.yml").read_text())
    lines = (COLLECTION / meta["dependencies"]["python"]).read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == [NOVAMOVE]


def test_ansible_builder_create_writes_the_build_context(tmp_path):
    done = _builder("create", "-f", str(COLLECTION / "execution-environment.yml"), "-c", "context",
                    "--output-filename", "Containerfile", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/python-311:latest"' in containerfile
    assert "ansible-core>=2.16" in containerfile
    # the collections from requirements.yml, then the Python requirements with the collections' own
    assert "COPY _build /build" in containerfile and "collection install" in containerfile
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "introspect --user-pip=requirements.txt" in containerfile
    assert (context / "_build" / "requirements.txt").read_text().split() == [NOVAMOVE]
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "novamove.openstack", "version": ">=0.2.0"}]
    # The context's own introspection (run inside the image once the collection is installed)
    # finds novamove in this collection's meta/execution-environment.yml.
    found = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"),
                            "introspect", str(REPO)], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    python = yaml.safe_load(found.stdout)["python"]
    assert [r.split("#")[0].strip() for r in python] == [NOVAMOVE]
