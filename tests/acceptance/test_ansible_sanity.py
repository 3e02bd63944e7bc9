"""`ansible-test sanity` on the novamove.openstack collection, as a pytest test.

Needs no cloud. ansible-test runs each sanity test in its own cached virtualenv under
~/.ansible/test/venv (the first run installs pylint, yamllint, ... with pip; later runs take
seconds). Only Python 3.11 is tested: that is the Python available here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "novamove" / "openstack"
PYTHON_VERSION = "%d.%d" % sys.version_info[:2]

# ansible-test bootstraps pip in its virtualenvs with a get-pip.py it downloads from
# ci-files.testing.ansible.com; where that host is unreachable it tells us where to put the
# script. This stand-in does the same job with the standard library's ensurepip.
GET_PIP_STANDIN = '''\
"""Stand-in for pip's get-pip.py (written by novamove's tests/acceptance/test_ansible_sanity.py):
bootstrap pip with the standard library's ensurepip, then install what ansible-test asks for."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
'''
BOOTSTRAP_MISSING = re.compile(r"The bootstrap script can be manually downloaded and saved to: (\S+)")


def ansible_test() -> str:
    exe = Path(sys.executable).with_name("ansible-test")
    if exe.exists():
        return str(exe)
    found = shutil.which("ansible-test")
    if not found:
        pytest.skip("ansible-test is not installed (pip install -e '.[test]')")
    return found


def run_sanity() -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_TEST_PREFER_PODMAN="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    return subprocess.run(
        [ansible_test(), "sanity", "--python", PYTHON_VERSION, "--local", "--color", "no"],
        cwd=COLLECTION, env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.timeout(1800)
def test_ansible_test_sanity_passes():
    proc = run_sanity()
    missing = BOOTSTRAP_MISSING.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 and missing:
        path = Path(os.path.expanduser(missing.group(1)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GET_PIP_STANDIN)
        proc = run_sanity()
    assert proc.returncode == 0, (
        "ansible-test sanity failed:\n"
        + "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                    if line.startswith(("ERROR", "FATAL"))))
