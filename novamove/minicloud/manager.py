"""The minicloud: a real Nova control plane on loopback, as ordinary processes under one folder.

Start-up runs in dependency order with independent chains in parallel:

  MariaDB ─┬─ keystone db/fernet/bootstrap ─ keystone API ─ users+catalog ─┐
  RabbitMQ │  nova api_db/cell0/cell1/db sync ────────────────────────────┼─ nova services ─ flavors,
  network  ├─ placement db sync ─ placement API                            │  image, servers
           └─ glance db sync ─ glance API ──────────────────────────────────┘
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from novamove.minicloud import configs, procs, tls, venv
from novamove.minicloud.configs import Layout
from novamove.minicloud.runtime import novamove_guestbook as guestbook

DEFAULT_BASE_PORT = 17000
RUNTIME = Path(__file__).with_name("runtime")
RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
DEBIAN_PACKAGES = ("rabbitmq-server", "mariadb-server")
# Stop order: front doors first, so nothing new arrives while the back end goes away.
STOP_ORDER = ["nova-api", "glance", "placement", "keystone", "network", "nova-scheduler",
              "nova-conductor"]
# Components other than the computes, in the order they can be started one by one.
BASE_COMPONENTS = ["mariadb", "epmd", "rabbitmq", "network", "keystone", "placement", "glance",
                   "nova-conductor", "nova-scheduler", "nova-api"]
COMPUTE_PREFIX = "nova-compute-"


# Written into every state directory `up` makes: only such a directory is ever deleted.
STATE_MARKER = ".novamove-minicloud"


class MinicloudError(RuntimeError):
    """A component failed; the message names it and carries the tail of its log."""


class UnknownComponent(MinicloudError):
    """A component or compute host name the minicloud does not have."""


def default_state_dir() -> Path:
    if os.environ.get("NOVAMOVE_MINICLOUD_DIR"):
        return Path(os.environ["NOVAMOVE_MINICLOUD_DIR"])
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "novamove" / "minicloud"


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    up: bool
    detail: str = ""


class Minicloud:
    def __init__(self, state_dir: Path | None = None, log: Callable[[str], None] = print):
        self.state = Path(state_dir or default_state_dir()).absolute()
        self.log = log
        self._settings_path = self.state / "settings.json"

    # -- settings ------------------------------------------------------------------------
    def _load_layout(self) -> Layout | None:
        if not self._settings_path.exists():
            return None
        data = json.loads(self._settings_path.read_text())
        return Layout(self.state, data["base_port"], data["computes"], data["secrets"],
                      data.get("options", {}))

    def _saved_venv(self) -> Path:
        data = json.loads(self._settings_path.read_text())
        return Path(data.get("os_venv")
                    or venv.default_path(self.saved_release() or venv.DEFAULT_RELEASE))

    def saved_release(self) -> str | None:
        """The OpenStack release this state directory was made with (None: none made yet;
        a directory older than the setting is of the default release)."""
        if not self._settings_path.exists():
            return None
        return json.loads(self._settings_path.read_text()).get("release", venv.DEFAULT_RELEASE)

    def _made_here(self) -> bool:
        """The state directory is one `up` made (its marker, or the settings of an older one)."""
        return (self.state / STATE_MARKER).exists() or self._settings_path.exists()

    def _refuse_foreign_dir(self) -> None:
        """`up --dir D` never uses, and so never deletes, a directory it did not make: D must be
        new, empty, or an earlier minicloud's."""
        if not self.state.exists() or self._made_here():
            return
        if not self.state.is_dir() or any(self.state.iterdir()):
            raise MinicloudError(f"{self.state} is not empty and was not made by `novamove minicloud up`: "
                                 "refusing to use it (nothing was changed); give --dir a new or empty directory")

    def _save_layout(self, lay: Layout, os_venv: Path, release: str | None = None) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        (self.state / STATE_MARKER).touch()
        data = {"base_port": lay.base_port, "computes": lay.computes, "secrets": lay.secrets,
                "options": lay.options, "os_venv": str(os_venv),
                "release": release or self.saved_release() or venv.DEFAULT_RELEASE}
        fd = os.open(self._settings_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)

    @property
    def layout(self) -> Layout:
        lay = self._load_layout()
        if lay is None:
            raise MinicloudError(f"no minicloud at {self.state} (run `novamove minicloud up`)")
        return lay

    def is_running(self) -> bool:
        return bool(procs.running(self.state / "run", self.state))

    # -- a shared journal --------------------------------------------------------------------
    JOURNAL_DB = "novamove_journal"

    def journal_url(self) -> str:
        """The URL of a database of its own on the minicloud's MariaDB (loopback only, its own
        user and password, kept 0600 in settings.json), for NOVAMOVE_JOURNAL: a journal shared
        by every HOME on this machine (docs/journal.md). Made on first use, the same after."""
        import secrets as _secrets
        lay = self.layout
        if not self.is_running():
            raise MinicloudError(f"the minicloud at {self.state} is not running (`novamove minicloud up`)")
        password = lay.secrets.get("journal")
        if not password:
            password = lay.secrets["journal"] = _secrets.token_hex(16)
            self._save_layout(lay, self._saved_venv())
        db, user = self.JOURNAL_DB, self.JOURNAL_DB
        sql = (f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;\n"
               f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
               f"GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'127.0.0.1';\nFLUSH PRIVILEGES;\n")
        # on stdin: the password never shows up in argv
        res = subprocess.run(["mariadb", "--no-defaults", f"--socket={lay.mysql_socket}", "-uroot"],
                             input=sql.encode(), capture_output=True)
        if res.returncode != 0:
            raise MinicloudError(f"could not create the journal database on the minicloud's MariaDB "
                                 f"(exit {res.returncode})")
        return f"mysql+pymysql://{user}:{password}@127.0.0.1:{lay.mysql_port}/{db}"

    # -- environment for clients ---------------------------------------------------------
    def env(self) -> dict[str, str]:
        lay = self.layout
        out = {"OS_CLIENT_CONFIG_FILE": str(lay.clouds_yaml), "OS_CLOUD": "minicloud"}
        if lay.tls:
            out["OS_CACERT"] = str(lay.ca_cert)
        return out

    def connection(self, cloud: str = "minicloud"):
        lay = self.layout
        if cloud == "minicloud":
            return _connect(lay, "admin", "admin")
        return _connect(lay, "member", "demo")

    @property
    def options(self) -> dict:
        """Every option of `up` (OPTION_DEFAULTS keys) with the value this minicloud uses."""
        return self.layout.all_options

    # -- up --------------------------------------------------------------------------------
    def up(self, computes: int | None = None, servers: int = 0, base_port: int | None = None,
           os_venv: Path | None = None, clean: bool = False, release: str | None = None,
           **options) -> float:
        """Start everything (or nothing, if already running). Returns seconds taken.

        An existing state directory keeps its shape (computes, ports), its options and its
        servers unless asked otherwise; `clean` starts from an empty state directory.
        `options` are configs.OPTION_DEFAULTS keys (tls, max_limit, report_interval,
        service_down_time, token_expiration); None values mean "keep". Given to a running
        minicloud, they are applied with reconfigure().
        `release` is the OpenStack release to run (venv.RELEASES; default NOVAMOVE_OS_RELEASE,
        else the state directory's, else venv.DEFAULT_RELEASE); another release than the state
        directory's starts clean (a database is never migrated down).
        """
        options = configs.check_options({k: v for k, v in options.items() if v is not None})
        saved = self.saved_release() if self._made_here() else None
        release = venv.chosen_release(release or os.environ.get("NOVAMOVE_OS_RELEASE") or saved)
        if self.is_running():
            if saved and release != saved:
                raise MinicloudError(f"the minicloud at {self.state} runs OpenStack {saved}, not "
                                     f"{release}: bring it down first (nothing was changed)")
            lay = self.layout
            self.log(f"minicloud already running at {self.state} "
                     f"({lay.computes} computes, keystone {lay.auth_url})")
            if options:
                self.reconfigure(**options)
            if servers:
                self.boot(servers)
            return 0.0
        self._refuse_foreign_dir()
        check_system_packages()
        try:
            os_venv = venv.ensure(Path(os_venv) if os_venv else venv.default_path(release),
                                  self.log, release)
        except venv.VenvMismatch as exc:
            raise MinicloudError(str(exc)) from exc
        t0 = time.monotonic()
        old = self._load_layout()
        computes = computes or (old.computes if old else 3)
        base_port = base_port or (old.base_port if old else DEFAULT_BASE_PORT)
        fresh = (clean or old is None or old.computes != computes or old.base_port != base_port
                 or (saved or release) != release)
        if fresh and self.state.exists() and self._made_here():
            shutil.rmtree(self.state)   # a different shape: start clean rather than half-reuse
            old = None
        elif fresh:
            old = None                  # a new or empty directory: used as it is, never deleted
        lay = old or Layout(self.state, base_port, computes, {
            name: secrets.token_urlsafe(18)
            for name in ("mysql", "rabbit", "admin", "member", *configs.SERVICE_USERS)})
        lay.options.update(options)
        _check_option_pair(lay)
        self._check_ports_free(lay)
        self._save_layout(lay, os_venv, release)
        starter = _Starter(lay, os_venv, self.log)
        try:
            starter.start_all()
            if servers:
                self.boot(servers)
        except BaseException as exc:
            failed = getattr(exc, "component", None)
            self.log(f"minicloud start failed{f' in {failed}' if failed else ''}: {exc}")
            if failed:
                self.log(f"--- last lines of {failed}'s log ---\n"
                         + procs.log_tail(lay.logs, failed))
            self.down(quiet=True)
            raise
        took = time.monotonic() - t0
        extra = ", ".join(f"{k}={v}" for k, v in lay.options.items()
                          if v != configs.OPTION_DEFAULTS[k])
        self.log(f"minicloud up in {took:.1f}s: OpenStack {release}, {computes} computes"
                 f"{f' ({extra})' if extra else ''}; clouds.yaml at {lay.clouds_yaml}")
        return took

    def boot(self, count: int) -> None:
        from novamove.cloud.provision import boot_servers
        servers = boot_servers(self.connection(), count, self.compute_hosts())
        for s in servers:
            self.log(f"server {s.name} ACTIVE on {s.compute_host}")

    def compute_hosts(self) -> list[str]:
        lay = self.layout
        return [lay.compute_host(i) for i in range(1, lay.computes + 1)]

    def demo_servers(self) -> dict[str, str]:
        """name -> host of the servers `boot` made (named demo-N)."""
        return {s.name: s.compute_host for s in self.connection().compute.servers(all_projects=True)
                if s.name.startswith("demo-")}

    def ensure_demo_servers(self, count: int = 3) -> dict[str, str]:
        """Make sure demo-1 .. demo-<count> exist (booting only the missing ones); name -> host."""
        from novamove.cloud.provision import boot_servers
        have = self.demo_servers()
        hosts = self.compute_hosts()
        wanted = [f"demo-{i}" for i in range(1, count + 1)]
        missing = [n for n in wanted if n not in have]
        if missing:
            # demo-i goes to compute i (round-robin), whichever of them are being booted.
            order = sorted(missing, key=wanted.index)
            spread = [hosts[wanted.index(n) % len(hosts)] for n in order]
            for s in boot_servers(self.connection(), len(order), spread, names=order):
                self.log(f"server {s.name} ACTIVE on {s.compute_host}")
            have = self.demo_servers()
        return have

    def _check_ports_free(self, lay: Layout) -> None:
        for port in range(lay.base_port, lay.base_port + 9):
            if procs.port_open(port):
                raise MinicloudError(f"port {port} on 127.0.0.1 is already in use; choose another "
                                     f"--base-port")

    # -- down / status ---------------------------------------------------------------------
    def down(self, quiet: bool = False) -> list[str]:
        run = self.state / "run"
        if not run.exists():
            if not quiet:
                self.log("minicloud is not running")
            return []
        sessions = set(procs.running(run, self.state).values())
        stopped = procs.stop_all(run, self.state, STOP_ORDER)
        time.sleep(0.2)
        left = procs.leftover(self.state, sessions)
        if left:
            raise MinicloudError(f"processes still running after down: {left}")
        if not quiet:
            self.log(f"minicloud stopped ({len(stopped)} processes)")
        return stopped

    def status(self) -> list[ComponentStatus]:
        lay = self.layout
        alive = procs.running(self.state / "run", self.state)
        checks = {
            "mariadb": lay.mysql_port, "rabbitmq": lay.rabbit_port, "network": lay.network_port,
            "keystone": lay.keystone_port, "placement": lay.placement_port,
            "glance": lay.glance_port, "nova-api": lay.nova_port,
        }
        web = {"network", "keystone", "placement", "glance", "nova-api"}
        out = [ComponentStatus(n, alive.get(n), n in alive and procs.port_open(p),
                               lay.url(p) if n in web else f"127.0.0.1:{p}")
               for n, p in checks.items()]
        out.insert(2, ComponentStatus("epmd", alive.get("epmd"),
                                      "epmd" in alive and procs.port_open(lay.epmd_port),
                                      f"127.0.0.1:{lay.epmd_port}"))
        for name in ["nova-conductor", "nova-scheduler"] + [
                f"nova-compute-{lay.compute_host(i)}" for i in range(1, lay.computes + 1)]:
            out.append(ComponentStatus(name, alive.get(name), name in alive, "process"))
        if alive.get("nova-api"):
            try:
                from novamove.cloud.provision import compute_services
                for svc in compute_services(self.connection()):
                    out.append(ComponentStatus(
                        f"service {svc.host}", None, svc.state == "up",
                        f"nova-compute {svc.status}, {svc.state}"
                        + (f" ({svc.disabled_reason})" if svc.disabled_reason else "")))
            except Exception as exc:  # status must still print the processes
                out.append(ComponentStatus("compute services", None, False, f"API error: {exc}"))
        return out

    def set_fakevirt(self, **settings: float) -> None:
        """Change the fake driver's behaviour at run time (e.g. live_migration_seconds=8)."""
        path = self.layout.fakevirt_control
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(settings)
        path.write_text(json.dumps(current))

    def set_fakevirt_providers(self, providers: dict) -> None:
        """Per-compute extra placement inventory and traits of the fake driver, e.g.
        {"compute2": {"inventory": {"PCPU": 8}, "traits": ["COMPUTE_SECURITY_TPM_2_0"]}}
        (runtime/novamove_fakevirt.py). A compute reports them at its next claim or
        update_available_resource period, or at once after restart_compute(host)."""
        self.set_fakevirt(providers=providers)

    def guests(self, host: str) -> dict[str, str]:
        """The guests HOST's fake hypervisor has, running or not, whether or not its nova-compute
        runs: server id -> power state ("running", "shutdown", ...), read from the compute's
        guest book (runtime/novamove_guestbook.py). Nova's view can differ: after an unfenced
        evacuation a guest is on two hosts until the source's nova-compute starts again."""
        self.compute_component(host)            # an unknown host is an error, not "no guests"
        book = guestbook.read_guests(guestbook.guests_path(self.layout.compute_state(host))) or {}
        return {uuid: guestbook.POWER_STATES.get(g["state"], str(g["state"]))
                for uuid, g in book.items()}

    # -- one component at a time -------------------------------------------------------------
    def components(self) -> list[str]:
        """Every component name: BASE_COMPONENTS, then nova-compute-<host> for each compute."""
        return BASE_COMPONENTS + [COMPUTE_PREFIX + h for h in self.compute_hosts()]

    def component_name(self, name: str) -> str:
        """`name` as a component name; a compute host (compute1) stands for its nova-compute."""
        known = self.components()
        if name in known:
            return name
        if COMPUTE_PREFIX + name in known:
            return COMPUTE_PREFIX + name
        raise UnknownComponent(f"no component {name!r} in the minicloud at {self.state} "
                               f"(components: {', '.join(known)})")

    def compute_component(self, host: str) -> str:
        if host not in self.compute_hosts():
            raise UnknownComponent(f"no compute host {host!r} in the minicloud at {self.state} "
                                   f"(hosts: {', '.join(self.compute_hosts())})")
        return COMPUTE_PREFIX + host

    def running_components(self) -> list[str]:
        alive = procs.running(self.state / "run", self.state)
        return [n for n in self.components() if n in alive]

    def stopped_components(self) -> list[str]:
        """Components without their process while the rest of the minicloud runs."""
        if not self.is_running():
            return []
        alive = procs.running(self.state / "run", self.state)
        return [n for n in self.components() if n not in alive]

    def stop_component(self, name: str, kill: bool = False) -> bool:
        """Stop one component's processes (TERM, then KILL after 10 s; `kill`: KILL at once, like
        a crash). Servers on a stopped compute stay as they are. False if it was not running."""
        name = self.component_name(name)
        if not self.is_running():
            raise MinicloudError(f"the minicloud at {self.state} is not running")
        stopped = procs.stop_one(self.state / "run", self.state, name, kill=kill)
        self.log(f"{name} {'killed' if kill else 'stopped'}" if stopped
                 else f"{name} was not running")
        return stopped

    def start_component(self, name: str, timeout: float = 120) -> bool:
        """Start one stopped component and wait until it serves: APIs answer; a nova service
        (conductor, scheduler, compute) has reported in afresh and is up. False if it was
        already running."""
        name = self.component_name(name)
        if name in procs.running(self.state / "run", self.state):
            return False
        if not self.is_running():
            raise MinicloudError(f"the minicloud at {self.state} is not running "
                                 f"(`novamove minicloud up` starts all of it)")
        lay = self.layout
        starter = _Starter(lay, self._saved_venv(), self.log)
        t0 = time.monotonic()
        before = self._service_reports(name)
        starter.launch(name)
        try:
            starter.ready(name, timeout)
            if before is not None:
                self._wait_service_reported(starter, name, before, t0 + timeout)
        except _ComponentFailed as exc:
            raise MinicloudError(f"{exc}\n--- last lines of {name}'s log ---\n"
                                 + procs.log_tail(lay.logs, name)) from exc
        self.log(f"{name} started in {time.monotonic() - t0:.1f}s")
        return True

    def restart_component(self, name: str, timeout: float = 120) -> None:
        name = self.component_name(name)
        self.stop_component(name)
        self.start_component(name, timeout)

    def stop_compute(self, host: str, kill: bool = False) -> bool:
        return self.stop_component(self.compute_component(host), kill=kill)

    def start_compute(self, host: str, timeout: float = 120) -> bool:
        return self.start_component(self.compute_component(host), timeout)

    def restart_compute(self, host: str, timeout: float = 120) -> None:
        self.restart_component(self.compute_component(host), timeout)

    def _service_binary_host(self, name: str) -> tuple[str, str] | None:
        if name.startswith(COMPUTE_PREFIX):
            return "nova-compute", name[len(COMPUTE_PREFIX):]
        if name in ("nova-conductor", "nova-scheduler"):
            return name, "controller"
        return None

    def _service_reports(self, name: str):
        """(updated_at, state) of the nova service record of `name` now; None when `name` is no
        nova service or the API cannot tell (then only the process is waited for)."""
        key = self._service_binary_host(name)
        if key is None or "nova-api" not in procs.running(self.state / "run", self.state):
            return None
        try:
            for svc in self.connection().compute.services():
                if (svc.binary, svc.host) == key:
                    return (svc.updated_at, svc.state)
            return ("", "new")
        except Exception:
            return None

    def _wait_service_reported(self, starter, name: str, before, deadline: float) -> None:
        binary, host = self._service_binary_host(name)
        conn = self.connection()
        last = None
        while time.monotonic() < deadline:
            if name not in procs.running(self.state / "run", self.state):
                raise _ComponentFailed(name, f"{name} exited during start-up")
            try:
                for svc in conn.compute.services():
                    if (svc.binary, svc.host) == (binary, host):
                        last = (svc.updated_at, svc.state, svc.status)
                        if svc.updated_at != before[0] and svc.state == "up":
                            return
            except Exception as exc:
                last = str(exc)
            time.sleep(0.5)
        raise _ComponentFailed(name, f"{binary} on {host} did not report in as up: {last}")

    # -- options of a running minicloud ------------------------------------------------------
    def reconfigure(self, **options) -> list[str]:
        """Change options of `up` (tls, max_limit, report_interval, service_down_time,
        token_expiration), save them, rewrite the configuration and restart only the components
        they affect (max_limit: nova-api; token_expiration: keystone; report_interval and
        service_down_time: the nova services and computes; tls: every API and nova service).
        Returns the restarted components; nothing is restarted when nothing changed or the
        minicloud is stopped (the next `up` uses the saved options)."""
        options = configs.check_options({k: v for k, v in options.items() if v is not None})
        lay = self.layout
        changed = {k: v for k, v in options.items() if lay.option(k) != v}
        if not changed:
            return []
        old = dict(lay.options)
        lay.options.update(changed)
        _check_option_pair(lay)
        os_venv = self._saved_venv()
        running = self.is_running()
        if not running:
            self._save_layout(lay, os_venv)
            self.log(f"minicloud options saved ({_fmt(changed)}); used at the next `up`")
            return []
        affected: set[str] = set()
        for key in changed:
            affected.update(configs.OPTION_AFFECTS[key])
        computes = [COMPUTE_PREFIX + h for h in self.compute_hosts()]
        if "computes" in affected:
            affected.discard("computes")
            affected.update(computes)
        order = [n for n in self.components() if n in affected]   # start order
        starter = _Starter(lay, os_venv, self.log)
        t0 = time.monotonic()
        # The nova services' last reports, to wait for fresh ones from the restarted processes.
        before = {n: self._service_reports(n) for n in order
                  if self._service_binary_host(n)}
        try:
            starter.prepare()
            self._save_layout(lay, os_venv)
            run = self.state / "run"
            stop = sorted(order, key=lambda n: (STOP_ORDER + computes).index(n)
                          if n in STOP_ORDER + computes else 99)
            front = [n for n in stop if n not in computes]
            for name in front:
                procs.stop_one(run, self.state, name)
            with ThreadPoolExecutor(max_workers=4) as pool:   # computes: TERM may take seconds
                list(pool.map(lambda n: procs.stop_one(run, self.state, n),
                              [n for n in stop if n in computes]))
            for name in order:
                starter.launch(name)
                if not self._service_binary_host(name):
                    starter.ready(name, 120)
                if name == "keystone" and "tls" in changed:
                    starter.provision_keystone()      # catalog URLs http <-> https
            deadline = time.monotonic() + 120
            for name, last in before.items():
                if last is not None:
                    self._wait_service_reported(starter, name, last, deadline)
        except BaseException:
            lay.options = old       # leave the saved options as they were before the attempt
            self._save_layout(lay, os_venv)
            raise
        self.log(f"minicloud reconfigured ({_fmt(changed)}) in {time.monotonic() - t0:.1f}s; "
                 f"restarted {', '.join(order)}")
        return order


def _fmt(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


def check_system_packages() -> None:
    missing = [p for p, binary in (("mariadb-server", "mariadbd"),
                                   ("rabbitmq-server", RABBIT_SERVER))
               if not (shutil.which(binary) or Path(binary).exists()
                       or Path("/usr/sbin", binary).exists())]
    if missing:
        raise MinicloudError(f"missing Debian packages: {' '.join(missing)} "
                             f"(run `make system-deps`, or apt-get install {' '.join(missing)})")


class _ComponentFailed(MinicloudError):
    def __init__(self, component: str, message: str):
        super().__init__(message)
        self.component = component


class _Starter:
    """Starting components: all of them in the order of the module docstring (start_all), or
    one at a time (launch + ready) for restarts and reconfiguration."""

    def __init__(self, lay: Layout, os_venv: Path, log: Callable[[str], None]):
        self.lay = lay
        self.venv = os_venv
        self.log = log
        self.t0 = time.monotonic()
        self.bin = os_venv / "bin"
        self.python = str(self.bin / "python")
        self._lock = threading.Lock()

    # helpers
    def _env(self, **extra: str) -> dict[str, str]:
        env = {"PYTHONPATH": str(self.lay.pylib), "NOVAMOVE_FAKEVIRT_CONTROL":
               str(self.lay.fakevirt_control), **extra}
        if self.lay.tls:
            # Every OpenStack client in the services (keystoneauth sessions, i.e. requests)
            # trusts the minicloud's CA, besides the cafile options in each config file.
            env["REQUESTS_CA_BUNDLE"] = str(self.lay.ca_cert)
            env["OS_CACERT"] = str(self.lay.ca_cert)
        return env

    def _start(self, name: str, argv: list[str], **env: str) -> None:
        procs.start(name, argv, self._env(**env), self.lay.run, self.lay.logs, self.lay.state)

    def _run(self, name: str, argv: list[str], stdin: str | None = None, **env: str) -> None:
        """A one-shot set-up command; its output goes to the component's log."""
        self.lay.logs.mkdir(parents=True, exist_ok=True)
        with open(self.lay.logs / f"{name}.out", "ab") as logf:
            logf.write(f"$ {' '.join(argv)}\n".encode())
            logf.flush()
            res = subprocess.run(argv, input=stdin.encode() if stdin else None,
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 env={**os.environ, **self._env(**env),
                                      procs.MARKER: str(self.lay.state)})
        if res.returncode != 0:
            raise _ComponentFailed(name, f"`{' '.join(argv[:3])} ...` exited {res.returncode}")

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if name not in procs.running(self.lay.run, self.lay.state):
                raise _ComponentFailed(name, f"{name} exited during start-up")
            time.sleep(0.2)
        raise _ComponentFailed(name, f"{name} not ready after {timeout:.0f}s")

    def _wait_http(self, name: str, port: int, path: str = "/", timeout: float = 90) -> None:
        self._wait(name, lambda: http_answers(self.lay, port, path), timeout)

    def _step(self, msg: str) -> None:
        with self._lock:
            self.log(f"[{time.monotonic() - self.t0:5.1f}s] {msg}")

    # the plan
    def prepare(self) -> None:
        """Directories, runtime files, TLS material and config files (before any start)."""
        lay = self.lay
        for d in (lay.etc, lay.logs, lay.run, lay.pylib, lay.state / "keystone",
                  lay.state / "glance", lay.state / "nova"):
            d.mkdir(parents=True, exist_ok=True)
        for f in RUNTIME.glob("*.py"):
            shutil.copy(f, lay.pylib / f.name)
        # Nova loads compute_driver as "nova.virt.<compute_driver>", so our driver has to live in
        # that package of the minicloud's own venv.
        for virt in self.venv.glob("lib/python3*/site-packages/nova/virt"):
            shutil.copy(RUNTIME / "novamove_fakevirt.py", virt / "novamove_fakevirt.py")
        if lay.tls and tls.ensure(lay.ca_cert, lay.ca_key, lay.server_cert, lay.server_key):
            self._step(f"TLS: CA and server certificate created in {lay.tls_dir}")
        self._write_configs()

    def start_all(self) -> None:
        lay = self.lay
        self.prepare()
        self.launch("mariadb")
        self.launch("epmd")
        self.launch("rabbitmq")
        self.launch("network")
        self.ready("mariadb")
        self._run("mariadb", ["mariadb", "--no-defaults", f"--socket={lay.mysql_socket}", "-uroot"],
                  stdin=configs.mysql_setup_sql(lay))
        self._step("mariadb ready")

        with ThreadPoolExecutor(max_workers=4) as pool:
            keystone = pool.submit(self._keystone_chain)
            nova = pool.submit(self._nova_chain)
            placement = pool.submit(self._placement_chain)
            glance = pool.submit(self._glance_chain)
            for fut in (keystone, nova, placement, glance):
                fut.result()
        self.ready("rabbitmq")
        self._step("rabbitmq ready")
        for name in ("nova-conductor", "nova-scheduler", "nova-api", *self.computes()):
            self.launch(name)
        self._step(f"{lay.computes} nova-compute processes started")
        for name in ("nova-api", "placement", "glance", "network"):
            self.ready(name)
        self._step("APIs answering")
        from novamove.cloud import provision
        conn = _connect(lay, "admin", "admin")
        hosts = [lay.compute_host(i) for i in range(1, lay.computes + 1)]
        provision.wait_for_computes(conn, hosts, 120, tick=self._check_alive)
        provision.ensure_flavors(conn)
        provision.ensure_image(conn)
        self._step(f"{len(hosts)} computes up and discovered; flavors and image ready")

    def computes(self) -> list[str]:
        return [COMPUTE_PREFIX + self.lay.compute_host(i) for i in range(1, self.lay.computes + 1)]

    def launch(self, name: str) -> None:
        """Start one component's process (no waiting)."""
        lay = self.lay
        tls_env = ({"NOVAMOVE_TLS_CERT": str(lay.server_cert),
                    "NOVAMOVE_TLS_KEY": str(lay.server_key)} if lay.tls else {})
        # Each WSGI app by today's module, then by the factory that 2024.1 has instead.
        wsgi = {"keystone": ("keystone.wsgi.api:application,"
                             "keystone.server.wsgi:initialize_public_application",
                             lay.keystone_port, "OS_KEYSTONE_CONFIG_DIR", "keystone"),
                "placement": ("placement.wsgi.api:application,placement.wsgi:init_application",
                              lay.placement_port, "OS_PLACEMENT_CONFIG_DIR", "placement"),
                "glance": ("glance.wsgi.api:application,glance.common.wsgi_app:init_app",
                           lay.glance_port, "OS_GLANCE_CONFIG_DIR", "glance"),
                "nova-api": ("nova.wsgi.osapi_compute:application,"
                             "nova.api.openstack.compute.wsgi:init_application",
                             lay.nova_port, "OS_NOVA_CONFIG_DIR", "nova")}
        conf = ["--config-file", str(lay.etc / "nova" / "nova.conf")]
        if name == "mariadb":
            self._start_mariadb()
        elif name in ("epmd", "rabbitmq"):
            self._start_rabbitmq(name)
        elif name == "network":
            self._start("network", [self.python, str(lay.pylib / "novamove_network.py"),
                                    str(lay.network_port)], **tls_env)
        elif name in wsgi:
            app, port, env_name, sub = wsgi[name]
            # Nova 2024.1's API monkey-patches eventlet on import, after our threaded server's
            # modules were loaded: a request waiting on Keystone then never wakes up. Nova's own
            # switch for threaded WSGI servers turns that off (today's API does not patch).
            unpatched = {"OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"} if name == "nova-api" else {}
            self._start(name, [self.python, str(lay.pylib / "novamove_wsgi.py"), app, str(port)],
                        **{env_name: str(lay.etc / sub)}, **tls_env, **unpatched)
        elif name in ("nova-conductor", "nova-scheduler"):
            self._start(name, [str(self.bin / name)] + conf)
        elif name in self.computes():
            i = self.computes().index(name) + 1
            self._start(name, [str(self.bin / "nova-compute")] + conf
                        + ["--config-file", str(lay.etc / "nova" / f"compute{i}.conf")])
        else:
            raise UnknownComponent(f"unknown minicloud component {name!r}")

    def ready(self, name: str, timeout: float = 90) -> None:
        """Wait until a launched component serves (ports, HTTP; processes for nova services)."""
        lay = self.lay
        http = {"keystone": (lay.keystone_port, "/v3"), "placement": (lay.placement_port, "/"),
                "glance": (lay.glance_port, "/"), "nova-api": (lay.nova_port, "/"),
                "network": (lay.network_port, "/")}
        if name == "mariadb":
            self._wait(name, self._mysql_ok, timeout)
        elif name == "rabbitmq":
            self._wait(name, lambda: procs.port_open(lay.rabbit_port), timeout)
        elif name == "epmd":
            self._wait(name, lambda: procs.port_open(lay.epmd_port), timeout)
        elif name in http:
            self._wait_http(name, *http[name], timeout=timeout)
        else:
            self._wait(name, lambda: True, timeout)

    def fix_catalog(self, conn) -> None:
        """Point every catalog endpoint at this layout's URLs (http <-> https after --tls)."""
        want = {"identity": self.lay.url(self.lay.keystone_port, "/v3"),
                "compute": self.lay.url(self.lay.nova_port, "/v2.1"),
                "placement": self.lay.url(self.lay.placement_port),
                "image": self.lay.url(self.lay.glance_port),
                "network": self.lay.url(self.lay.network_port)}
        types = {s.id: s.type for s in conn.identity.services()}
        for ep in conn.identity.endpoints():
            url = want.get(types.get(ep.service_id))
            if url and ep.url != url:
                conn.identity.update_endpoint(ep, url=url)

    def _check_alive(self) -> None:
        alive = procs.running(self.lay.run, self.lay.state)
        for name in ("nova-api", "nova-conductor", "nova-scheduler", "placement", "keystone",
                     *self.computes()):
            if name not in alive:
                raise _ComponentFailed(name, f"{name} exited")

    def _write_configs(self) -> None:
        lay, etc = self.lay, self.lay.etc
        share = self.venv / "etc"
        for sub in ("keystone", "placement", "glance", "nova"):
            (etc / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(share / "nova" / "api-paste.ini", etc / "nova" / "api-paste.ini")
        shutil.copy(share / "glance" / "glance-api-paste.ini", etc / "glance" / "glance-api-paste.ini")
        files = {
            etc / "keystone" / "keystone.conf": configs.keystone_conf(lay),
            etc / "placement" / "placement.conf": configs.placement_conf(lay),
            etc / "glance" / "glance-api.conf":
                configs.glance_conf(lay, etc / "glance" / "glance-api-paste.ini"),
            etc / "nova" / "nova.conf": configs.nova_conf(lay, etc / "nova" / "api-paste.ini"),
            lay.clouds_yaml: configs.clouds_yaml(lay),
        }
        for i in range(1, lay.computes + 1):
            files[etc / "nova" / f"compute{i}.conf"] = configs.compute_conf(lay, i)
            (lay.state / lay.compute_host(i)).mkdir(exist_ok=True)
        for path, text in files.items():   # they hold passwords: owner-only
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    # MariaDB
    def _mysql_ok(self) -> bool:
        return subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.lay.mysql_socket}", "-uroot", "-e",
             "select 1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def _start_mariadb(self) -> None:
        lay = self.lay
        data = lay.state / "mysql"
        # Its own temporary directory, not /tmp: an install beside other miniclouds and test
        # databases once failed on a temporary table file gone from /tmp ("Could not remove
        # temporary table ... error: 2").
        tmp = lay.state / "mysql-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        if not (data / "mysql").exists():   # a new state directory
            data.mkdir(parents=True, exist_ok=True)
            try:
                self._run("mariadb", ["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                                      "--user=root", "--auth-root-authentication-method=socket",
                                      "--skip-test-db", f"--tmpdir={tmp}"])
            except _ComponentFailed:
                # A half-made data directory would pass for an installed one at the next `up`.
                shutil.rmtree(data, ignore_errors=True)
                raise
        self._start("mariadb", [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
            f"--datadir={data}", f"--tmpdir={tmp}", f"--socket={lay.mysql_socket}", f"--port={lay.mysql_port}",
            "--bind-address=127.0.0.1", "--user=root", f"--pid-file={lay.run / 'mysqld.pidfile'}",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M",
            "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--skip-name-resolve",
            "--max-connections=500", "--performance-schema=OFF"])

    # RabbitMQ
    def _start_rabbitmq(self, which: str) -> None:
        lay = self.lay
        r = lay.state / "rabbitmq"
        r.mkdir(exist_ok=True)
        (r / "enabled_plugins").write_text("[].\n")
        # Loopback only: an explicit address for AMQP ("listeners.tcp.default = PORT" would bind
        # every interface), the distribution listener pinned to 127.0.0.1 below, and epmd
        # started by us with -address 127.0.0.1.
        conf = (f"listeners.tcp.1 = 127.0.0.1:{lay.rabbit_port}\n"
                f"default_user = novamove\ndefault_pass = {lay.secrets['rabbit']}\n"
                "loopback_users = none\n")
        fd = os.open(r / "rabbitmq.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(conf)
        env = {
            "HOME": str(r),   # Erlang cookie lives here; rabbitmqctl would need the same HOME
            "ERL_EPMD_PORT": str(lay.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": f"novamove{lay.base_port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(lay.rabbit_port),
            "RABBITMQ_DIST_PORT": str(lay.rabbit_dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONFIG_FILE": str(r / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(r / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(r / "mnesia"),
            "RABBITMQ_LOG_BASE": str(lay.logs),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(lay.run / "rabbitmq.pidfile"),
            "RABBITMQ_CONF_ENV_FILE": str(r / "rabbitmq-env.conf"),
        }
        (r / "rabbitmq-env.conf").write_text("")
        if which == "epmd":
            # epmd as our own foreground process, so it ends with the minicloud.
            self._start("epmd", ["epmd", "-port", str(lay.epmd_port), "-address", "127.0.0.1"],
                        **env)
        else:
            self._start("rabbitmq", [RABBIT_SERVER], **env)

    # Keystone
    def _keystone_chain(self) -> None:
        lay = self.lay
        self._run("keystone", [self.python, str(lay.pylib / "novamove_keystone_setup.py"),
                               str(lay.etc / "keystone" / "keystone.conf"),
                               lay.url(lay.keystone_port, "/v3"), configs.REGION],
                  OS_BOOTSTRAP_PASSWORD=lay.secrets["admin"])   # env, never argv
        self._step("keystone database and bootstrap ready")
        self.launch("keystone")
        self.ready("keystone", 60)
        self.provision_keystone()
        self._step("keystone ready: users and catalog provisioned")

    def provision_keystone(self) -> None:
        lay = self.lay
        from novamove.cloud import provision
        # The identity endpoint straight from the layout, not from the catalog: after a switch
        # of --tls the catalog still has the old scheme until fix_catalog() below.
        conn = _connect(lay, "admin", "admin", identity_endpoint_override=lay.auth_url)
        provision.provision_identity(
            conn, configs.REGION,
            endpoints={
                "compute": ("nova", lay.url(lay.nova_port, "/v2.1")),
                "placement": ("placement", lay.url(lay.placement_port)),
                "image": ("glance", lay.url(lay.glance_port)),
                "network": ("neutron", lay.url(lay.network_port)),
            },
            service_passwords={u: lay.secrets[u] for u in configs.SERVICE_USERS},
            member_password=lay.secrets["member"])
        self.fix_catalog(conn)

    # Nova control plane
    def _nova_chain(self) -> None:
        lay = self.lay
        self._run("nova-manage", [self.python, str(lay.pylib / "novamove_nova_setup.py"),
                                  str(lay.etc / "nova" / "nova.conf")])
        self._step("nova databases ready")

    # Placement and Glance
    def _placement_chain(self) -> None:
        lay = self.lay
        self._run("placement", [str(self.bin / "placement-manage"), "--config-file",
                                str(lay.etc / "placement" / "placement.conf"), "db", "sync"])
        self._step("placement database ready")
        self.launch("placement")

    def _glance_chain(self) -> None:
        lay = self.lay
        for sub in ("images", "staging", "tasks", "lock"):
            (lay.state / "glance" / sub).mkdir(parents=True, exist_ok=True)
        self._run("glance", [str(self.bin / "glance-manage"), "--config-file",
                             str(lay.etc / "glance" / "glance-api.conf"), "db_sync"])
        self._step("glance database ready")
        self.launch("glance")


def http_answers(lay: Layout, port: int, path: str = "/") -> bool:
    """Whether the API on `port` answers (any status below 500), over https with our CA."""
    import ssl
    ctx = ssl.create_default_context(cafile=str(lay.ca_cert)) if lay.tls else None
    try:
        with urllib.request.urlopen(lay.url(port, path), timeout=2, context=ctx):
            return True
    except urllib.error.HTTPError as e:   # 300/401 still means "answering"
        return e.code < 500
    except OSError:
        return False


def _connect(lay: Layout, user: str, project: str, **kwargs):
    """An openstacksdk connection as `user` (admin or member), trusting the minicloud's CA."""
    import openstack
    if lay.tls:
        kwargs["cacert"] = str(lay.ca_cert)
    return openstack.connect(
        auth_url=lay.auth_url, username=user, password=lay.secrets[user], project_name=project,
        user_domain_name="Default", project_domain_name="Default", region_name=configs.REGION,
        identity_api_version="3", load_yaml_config=False, load_envvars=False, **kwargs)


def _check_option_pair(lay: Layout) -> None:
    ri, sdt = lay.option("report_interval"), lay.option("service_down_time")
    if sdt <= ri:
        raise MinicloudError(f"service_down_time ({sdt}) must be longer than report_interval "
                             f"({ri}), or every service is routinely seen down")
