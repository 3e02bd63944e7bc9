"""The `minicloud` session fixture: a real Nova control plane on loopback for acceptance tests.

Reuses a minicloud that is already running (and leaves it running); otherwise brings one up for
the session and takes it down at the end (NOVAMOVE_KEEP_MINICLOUD=1 keeps it).
NOVAMOVE_MINICLOUD_DIR, NOVAMOVE_MINICLOUD_BASE_PORT and NOVAMOVE_TEST_COMPUTES choose which.
A test minicloud started here reports every TEST_OPTIONS["report_interval"] s and sees a silent
service down after TEST_OPTIONS["service_down_time"] s, so a stopped compute is down in seconds,
and serves every API over HTTPS with its own CA (--tls; NOVAMOVE_TEST_TLS=0 turns that off).

After every acceptance test (once the session cloud exists) `_minicloud_state` checks the cloud:
the fake driver back to its defaults, options changed through the handle restored, stopped
components started again, every compute enabled, not forced down and up, no server or migration
in flight. A test that leaves a service disabled or forced down, or a move in flight, fails (the
cloud is put right, so the next test does not inherit it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from novamove.minicloud import Minicloud, default_state_dir
from cloudtest import REPO


# The fake driver's behaviour every test starts from.
FAKEVIRT_DEFAULTS = dict(live_migration_seconds=0.5, live_migration_hold=0, cold_migration_seconds=0,
                         live_migration_rollback=0, cold_migration_rollback=0,
                         permit_post_copy=0, post_copy_seconds=1)
# Options of a test minicloud this fixture starts: a stopped compute is seen down within ~8 s.
TEST_OPTIONS = dict(report_interval=2, service_down_time=8)
# Server statuses and migration statuses that mean "a move (or build) is still under way".
BUSY_SERVER_STATUSES = {"BUILD", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE",
                        "REBUILD", "REBOOT", "HARD_REBOOT"}
BUSY_MIGRATION_STATUSES = {"queued", "preparing", "running", "pre-migrating", "migrating",
                           "post-migrating", "accepted", "confirming", "reverting", "finished"}


@dataclass
class MiniCloudHandle:
    manager: Minicloud
    env: dict[str, str]
    computes: list[str]
    cloud: str = "minicloud"
    member_cloud: str = "minicloud-member"
    _conn: object = field(default=None, repr=False)
    _restore: dict = field(default_factory=dict, repr=False)

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

    def guests(self, host: str) -> dict[str, str]:
        """Server id -> power state of the guests HOST's fake hypervisor has (its guest book),
        whatever Nova says and whether or not its nova-compute runs."""
        return self.manager.guests(host)

    # -- faults and options ------------------------------------------------------------------
    @property
    def service_down_time(self) -> int:
        """Seconds after which Nova sees a stopped compute as down on this cloud."""
        return self.manager.options["service_down_time"]

    def stop_compute(self, host: str, kill: bool = False) -> None:
        """Stop HOST's nova-compute process (kill=True: SIGKILL, like a crash). The check after
        the test starts it again if the test did not."""
        self.manager.stop_compute(host, kill=kill)

    def start_compute(self, host: str) -> None:
        """Start HOST's nova-compute again; returns once its service reports up."""
        self.manager.start_compute(host)

    def restart_component(self, name: str) -> None:
        """Restart one component (nova-api, nova-conductor, keystone, rabbitmq, compute1...)."""
        self.manager.restart_component(name)

    def wait_service_state(self, host: str, state: str, timeout: float | None = None) -> None:
        """Until Nova reports HOST's nova-compute `state` ("up"/"down")."""
        from cloudtest import wait_until
        wait_until(lambda: self.services().get(host, (None, None))[1] == state,
                   timeout=timeout or self.service_down_time + 30, interval=0.5,
                   what=f"nova-compute on {host} to be {state}")

    def reconfigure(self, **options) -> list[str]:
        """Minicloud.reconfigure, remembering the values to restore after the test (the check
        after each test restores them if the test did not)."""
        current = self.manager.options
        for key in options:
            self._restore.setdefault(key, current[key])
        try:
            return self.manager.reconfigure(**options)
        finally:
            self._refresh()

    @contextlib.contextmanager
    def reconfigured(self, **options):
        """`with minicloud.reconfigured(max_limit=2): ...` and the old values come back."""
        current = self.manager.options
        old = {k: current[k] for k in options}
        self.reconfigure(**options)
        try:
            yield self
        finally:
            self.manager.reconfigure(**old)
            for key in old:
                self._restore.pop(key, None)
            self._refresh()

    def _refresh(self) -> None:
        self._conn = None
        self.env = self.manager.env()
        os.environ.pop("OS_CACERT", None)
        if "OS_CACERT" in self.env:
            os.environ["OS_CACERT"] = self.env["OS_CACERT"]

    # -- the state every test starts from ------------------------------------------------------
    def check_and_reset(self, settle: float = 60) -> list[str]:
        """Put the cloud back in its test-start state; returns what a test had left wrong that
        it should have cleaned up itself (services disabled or forced down, moves in flight).
        Restarting stopped components and restoring options/fakevirt are not complaints."""
        problems: list[str] = []
        self.manager.set_fakevirt(**FAKEVIRT_DEFAULTS)
        if self._restore:
            restore, self._restore = dict(self._restore), {}
            self.manager.reconfigure(**restore)
            self._refresh()
        stopped = self.manager.stopped_components()
        for name in stopped:      # the control plane first: the API tells about services
            if not name.startswith("nova-compute-"):
                self.manager.start_component(name)
        compute = self.conn().compute
        for svc in compute.services():
            if svc.binary != "nova-compute":
                continue
            if svc.status != "enabled":
                problems.append(f"nova-compute on {svc.host} left disabled "
                                f"({svc.disabled_reason or 'no reason'})")
                compute.enable_service(svc)
            if svc.is_forced_down:
                problems.append(f"nova-compute on {svc.host} left forced down")
                compute.update_service_forced_down(svc, svc.host, "nova-compute", False)
        for name in stopped:      # a forced-down compute could never report up: unset first
            if name.startswith("nova-compute-"):
                self.manager.start_component(name)
        from cloudtest import wait_until
        wait_until(lambda: all(v[1] == "up" for v in self.services().values()),
                   timeout=self.service_down_time + 60, interval=0.5,
                   what=f"every compute up: {self.services()}")
        deadline = time.monotonic() + settle
        while True:
            busy = self._in_flight()
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(1)
        if busy:
            problems.append(f"still in flight after {settle:.0f}s: {', '.join(busy)}")
        return problems

    def _in_flight(self) -> list[str]:
        compute = self.conn().compute
        servers = {s.id: s for s in compute.servers(all_projects=True)}
        out = [f"server {s.name} {s.status}/{s.task_state}" for s in servers.values()
               if s.status in BUSY_SERVER_STATUSES or s.task_state]
        for m in compute.migrations():
            if m.status in BUSY_MIGRATION_STATUSES and m.server_id in servers:
                out.append(f"migration {m.id} of {servers[m.server_id].name} {m.status}")
        return out

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


_SESSION: list[MiniCloudHandle] = []    # the session cloud, once a test asked for it


@pytest.fixture(scope="session")
def minicloud(tmp_path_factory) -> MiniCloudHandle:
    state, clean = _state_dir()
    manager = Minicloud(state, log=lambda m: print(f"[minicloud] {m}", file=sys.stderr))
    started_here = False
    if not manager.is_running():
        port = os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT")
        manager.up(computes=_computes(), base_port=int(port) if port else None, clean=clean,
                   tls=os.environ.get("NOVAMOVE_TEST_TLS", "1") != "0", **TEST_OPTIONS)
        started_here = True
    # Every novamove the tests start (CLI, scripts, ansible) finds this cloud, and none of them
    # reads or writes the user's own journal.
    os.environ["NOVAMOVE_MINICLOUD_DIR"] = str(state)
    os.environ.setdefault("NOVAMOVE_JOURNAL",
                          str(tmp_path_factory.mktemp("journal") / "journal.sqlite"))
    lay = manager.layout
    # The test minicloud's computes report every TEST_OPTIONS["report_interval"] s, not Nova's
    # default 10 s: an evacuation's quiet period (docs/evacuate.md) of three reports is enough.
    os.environ.setdefault("NOVAMOVE_QUIET_PERIOD", str(3 * float(lay.option("report_interval"))))
    handle = MiniCloudHandle(manager, manager.env(),
                             [lay.compute_host(i) for i in range(1, lay.computes + 1)])
    handle._refresh()
    # Every test starts from the fake driver's defaults, all computes enabled and up, nothing
    # in flight. Leftovers from before this session are put right with a warning only.
    for problem in handle.check_and_reset():
        print(f"[minicloud] warning: at session start: {problem} (put right)", file=sys.stderr)
    _SESSION.append(handle)
    yield handle
    _SESSION.clear()
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
def _minicloud_state(request):
    """After every acceptance test, once the session cloud exists: check_and_reset(), and fail
    the test (at teardown) for what it left wrong. Tests that never touch a cloud and run before
    one exists cost nothing."""
    yield
    if not _SESSION:
        return
    problems = _SESSION[0].check_and_reset()
    if problems:
        pytest.fail(f"{request.node.name} left the minicloud dirty (now put right): "
                    + "; ".join(problems), pytrace=False)
