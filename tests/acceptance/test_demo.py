"""README's first command ends in scripts/demo.sh: it must really move a server."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from cloudtest import REPO

pytestmark = pytest.mark.acceptance


def test_demo_moves_demo_1_to_another_host(minicloud):
    env = {**os.environ, "NOVAMOVE_MINICLOUD_DIR": str(minicloud.manager.state)}
    out = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    m = re.search(r"demo-1 was migrated from (\S+) to (\S+) and has a status of ACTIVE", out.stdout)
    assert m and m.group(1) != m.group(2), out.stdout
    assert minicloud.manager.demo_servers()["demo-1"] == m.group(2)
