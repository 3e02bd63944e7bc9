"""The `minicloud` session fixture: a real Nova control plane on loopback for acceptance tests.

Reuses a minicloud that is already running (and leaves it running); otherwise brings one up for
the session and takes it down at the end (NOVAMOVE_KEEP_MINICLOUD=1 keeps it).
NOVAMOVE_MINICLOUD_DIR, NOVAMOVE_MINICLOUD_BASE_PORT and NOVAMOVE_TEST_COMPUTES choose which.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from novamove.minicloud import Minicloud, default_state_dir
from cloudtest import REPO


# The fake driver's behaviour every test starts from.
FAKEVIRT_DEFAULTS = dict(live_migration_seconds=0.5, cold_migration_seconds=0,
                         live_migration_rollback=0, cold_migration_rollback=0)


@dataclass
class MiniCloudHandle:
    manager: Minicloud
    env: dict[str, str]
    computes: list[str]
    cloud: str = "minicloud"
    member_cloud: str = "minicloud-member"
    _conn: object = field(default=None, repr=False)

    # -- clients ---------------------------------------------------------------------------
    def conn(self):
        """An admin openstacksdk connection (for arranging and checking; never mocked)."""
        if self._conn is None:
            self._conn = self.manager.connection("minicloud")
        return self._conn

    def member_conn(self):
        return self.manager.connection("minicloud-member")

    def cli(self, *args: str, cloud: str | None = "minicloud", env: dict | None = None,
            timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
        """Run `novamove ARGS` as a user would, against the minicloud."""
        full_env = {**os.environ, **self.env, **(env or {})}
        if cloud is None:
            full_env.pop("OS_CLOUD", None)
        else:
            full_env["OS_CLOUD"] = cloud
        proc = subprocess.run([sys.executable, "-m", "novamove", *args], env=full_env,
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and proc.returncode != 0:
            raise AssertionError(f"novamove {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    # -- arranging -------------------------------------------------------------------------
    def boot(self, count: int = 1, host: str | None = None, flavor: str = "m1.nano",
             prefix: str | None = None, conn=None, wait: bool = True, status: str = "ACTIVE"):
        """Boot servers (admin host targeting when `host` is given); returns sdk Servers."""
        from novamove.cloud.provision import ensure_image
        c = conn or self.conn()
        image_id = ensure_image(self.conn())
        flavor_id = self.conn().compute.find_flavor(flavor, ignore_missing=False).id
        prefix = prefix or f"t-{uuid.uuid4().hex[:6]}"
        made = []
        for i in range(count):
            kwargs = dict(name=f"{prefix}-{i + 1}", image_id=image_id, flavor_id=flavor_id,
                          networks="none")
            if host:
                kwargs["availability_zone"] = f"nova:{host}"
            made.append(c.compute.create_server(**kwargs))
        if not wait:
            return made
        return [c.compute.wait_for_server(s, status=status, wait=180, interval=1) for s in made]

    def server(self, server_id: str):
        return self.conn().compute.get_server(server_id)

    def host_of(self, server_id: str) -> str:
        return self.server(server_id).compute_host

    def services(self) -> dict[str, tuple]:
        """host -> (status, state, disabled_reason, forced_down) of every nova-compute."""
        return {s.host: (s.status, s.state, s.disabled_reason, s.is_forced_down)
                for s in self.conn().compute.services() if s.binary == "nova-compute"}

    def set_fakevirt(self, **settings: float) -> None:
        self.manager.set_fakevirt(**settings)

    def delete(self, servers) -> None:
        c = self.conn()
        for s in servers:
            try:
                c.compute.delete_server(s, force=False)
            except Exception:
                pass
        for s in servers:
            try:
                c.compute.wait_for_delete(s, wait=120, interval=1)
            except Exception:
                pass


def _computes() -> int:
    return int(os.environ.get("NOVAMOVE_TEST_COMPUTES", "3"))


def _state_dir() -> tuple[Path, bool]:
    """(state dir, start it clean?): a named one as it is; else a running default minicloud;
    else a test minicloud of its own, started clean so leftovers of earlier runs on this machine
    (servers, disabled services) never decide a result."""
    named = os.environ.get("NOVAMOVE_MINICLOUD_DIR")
    if named:
        return Path(named), False
    default = default_state_dir()
    if Minicloud(default).is_running():
        return default, False
    return default.with_name("minicloud-tests"), True


@pytest.fixture(scope="session")
def minicloud(tmp_path_factory) -> MiniCloudHandle:
    state, clean = _state_dir()
    manager = Minicloud(state, log=lambda m: print(f"[minicloud] {m}", file=sys.stderr))
    started_here = False
    if not manager.is_running():
        port = os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT")
        manager.up(computes=_computes(), base_port=int(port) if port else None, clean=clean)
        started_here = True
    # Every novamove the tests start (CLI, scripts, ansible) finds this cloud, and none of them
    # reads or writes the user's own journal.
    os.environ["NOVAMOVE_MINICLOUD_DIR"] = str(state)
    os.environ.setdefault("NOVAMOVE_JOURNAL",
                          str(tmp_path_factory.mktemp("journal") / "journal.sqlite"))
    lay = manager.layout
    handle = MiniCloudHandle(manager, manager.env(),
                             [lay.compute_host(i) for i in range(1, lay.computes + 1)])
    # Every test starts from the fake driver's defaults and all computes enabled.
    manager.set_fakevirt(**FAKEVIRT_DEFAULTS)
    yield handle
    if started_here and os.environ.get("NOVAMOVE_KEEP_MINICLOUD") != "1":
        manager.down()


@pytest.fixture
def servers(minicloud):
    """Collects servers a test boots and deletes them afterwards."""
    made: list = []

    def boot(*args, **kwargs):
        out = minicloud.boot(*args, **kwargs)
        made.extend(out)
        return out

    yield boot
    minicloud.delete(made)


@pytest.fixture(autouse=True)
def _fakevirt_defaults(request):
    """Tests that slow the fake driver down get the defaults back afterwards."""
    yield
    if "minicloud" in request.fixturenames:
        request.getfixturevalue("minicloud").set_fakevirt(**FAKEVIRT_DEFAULTS)
