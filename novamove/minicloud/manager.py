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

from novamove.minicloud import configs, procs, venv
from novamove.minicloud.configs import Layout

DEFAULT_BASE_PORT = 17000
RUNTIME = Path(__file__).with_name("runtime")
RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
DEBIAN_PACKAGES = ("rabbitmq-server", "mariadb-server")
# Stop order: front doors first, so nothing new arrives while the back end goes away.
STOP_ORDER = ["nova-api", "glance", "placement", "keystone", "network", "nova-scheduler",
              "nova-conductor"]


class MinicloudError(RuntimeError):
    """A component failed; the message names it and carries the tail of its log."""


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
        return Layout(self.state, data["base_port"], data["computes"], data["secrets"])

    def _save_layout(self, lay: Layout, os_venv: Path) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        data = {"base_port": lay.base_port, "computes": lay.computes, "secrets": lay.secrets,
                "os_venv": str(os_venv)}
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

    # -- environment for clients ---------------------------------------------------------
    def env(self) -> dict[str, str]:
        lay = self.layout
        return {"OS_CLIENT_CONFIG_FILE": str(lay.clouds_yaml), "OS_CLOUD": "minicloud"}

    def connection(self, cloud: str = "minicloud"):
        from novamove.cloud.provision import admin_connection
        lay = self.layout
        if cloud == "minicloud":
            return admin_connection(lay.auth_url, lay.secrets["admin"], configs.REGION)
        return admin_connection(lay.auth_url, lay.secrets["member"], configs.REGION,
                                user="member", project="demo")

    # -- up --------------------------------------------------------------------------------
    def up(self, computes: int | None = None, servers: int = 0, base_port: int | None = None,
           os_venv: Path | None = None, clean: bool = False) -> float:
        """Start everything (or nothing, if already running). Returns seconds taken.

        An existing state directory keeps its shape (computes, ports) and its servers unless
        asked otherwise; `clean` starts from an empty state directory.
        """
        if self.is_running():
            lay = self.layout
            self.log(f"minicloud already running at {self.state} "
                     f"({lay.computes} computes, keystone {lay.auth_url})")
            if servers:
                self.boot(servers)
            return 0.0
        check_system_packages()
        os_venv = venv.ensure(Path(os_venv) if os_venv else venv.default_path(), self.log)
        t0 = time.monotonic()
        old = self._load_layout()
        computes = computes or (old.computes if old else 3)
        base_port = base_port or (old.base_port if old else DEFAULT_BASE_PORT)
        fresh = clean or old is None or old.computes != computes or old.base_port != base_port
        if fresh and self.state.exists():
            shutil.rmtree(self.state)   # a different shape: start clean rather than half-reuse
            old = None
        lay = old or Layout(self.state, base_port, computes, {
            name: secrets.token_urlsafe(18)
            for name in ("mysql", "rabbit", "admin", "member", *configs.SERVICE_USERS)})
        self._check_ports_free(lay)
        self._save_layout(lay, os_venv)
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
        self.log(f"minicloud up in {took:.1f}s: {computes} computes; "
                 f"clouds.yaml at {lay.clouds_yaml}")
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
        out = [ComponentStatus(n, alive.get(n), n in alive and procs.port_open(p), f"127.0.0.1:{p}")
               for n, p in checks.items()]
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
    """One start-up of every component, with the ordering described in the module docstring."""

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
        return {"PYTHONPATH": str(self.lay.pylib), "NOVAMOVE_FAKEVIRT_CONTROL":
                str(self.lay.fakevirt_control), **extra}

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
        def ok() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                    return True
            except urllib.error.HTTPError as e:   # 300/401 still means "answering"
                return e.code < 500
            except OSError:
                return False
        self._wait(name, ok, timeout)

    def _step(self, msg: str) -> None:
        with self._lock:
            self.log(f"[{time.monotonic() - self.t0:5.1f}s] {msg}")

    # the plan
    def start_all(self) -> None:
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
        self._write_configs()

        self._start_mariadb()
        self._start_rabbitmq()
        self._start("network", [self.python, str(lay.pylib / "novamove_network.py"),
                                str(lay.network_port)])
        self._wait("mariadb", lambda: self._mysql_ok(), 60)
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
        self._wait("rabbitmq", lambda: procs.port_open(lay.rabbit_port), 60)
        self._step("rabbitmq ready")
        self._start_nova()
        self._wait_http("nova-api", lay.nova_port, "/", 90)
        self._wait_http("placement", lay.placement_port, "/", 60)
        self._wait_http("glance", lay.glance_port, "/", 60)
        self._step("APIs answering")
        from novamove.cloud import provision
        conn = provision.admin_connection(lay.auth_url, lay.secrets["admin"], configs.REGION)
        hosts = [lay.compute_host(i) for i in range(1, lay.computes + 1)]
        provision.wait_for_computes(conn, hosts, 120, tick=self._check_alive)
        provision.ensure_flavors(conn)
        provision.ensure_image(conn)
        self._step(f"{len(hosts)} computes up and discovered; flavors and image ready")

    def _check_alive(self) -> None:
        alive = procs.running(self.lay.run, self.lay.state)
        for name in ("nova-api", "nova-conductor", "nova-scheduler", "placement", "keystone",
                     *[f"nova-compute-{self.lay.compute_host(i)}"
                       for i in range(1, self.lay.computes + 1)]):
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
        if not (data / "mysql").exists():   # a new state directory
            data.mkdir(parents=True, exist_ok=True)
            self._run("mariadb", ["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                                  "--user=root", "--auth-root-authentication-method=socket",
                                  "--skip-test-db"])
        self._start("mariadb", [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
            f"--datadir={data}", f"--socket={lay.mysql_socket}", f"--port={lay.mysql_port}",
            "--bind-address=127.0.0.1", "--user=root", f"--pid-file={lay.run / 'mysqld.pidfile'}",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M",
            "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--skip-name-resolve",
            "--max-connections=500", "--performance-schema=OFF"])

    # RabbitMQ
    def _start_rabbitmq(self) -> None:
        lay = self.lay
        r = lay.state / "rabbitmq"
        r.mkdir(exist_ok=True)
        (r / "enabled_plugins").write_text("[].\n")
        conf = (f"listeners.tcp.default = {lay.rabbit_port}\n"
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
            "RABBITMQ_CONFIG_FILE": str(r / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(r / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(r / "mnesia"),
            "RABBITMQ_LOG_BASE": str(lay.logs),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(lay.run / "rabbitmq.pidfile"),
            "RABBITMQ_CONF_ENV_FILE": str(r / "rabbitmq-env.conf"),
        }
        (r / "rabbitmq-env.conf").write_text("")
        # epmd as our own foreground process, so it ends with the minicloud.
        self._start("epmd", ["epmd", "-port", str(lay.epmd_port), "-address", "127.0.0.1"],
                    **env)
        self._start("rabbitmq", [RABBIT_SERVER], **env)

    # Keystone
    def _keystone_chain(self) -> None:
        lay = self.lay
        self._run("keystone", [self.python, str(lay.pylib / "novamove_keystone_setup.py"),
                               str(lay.etc / "keystone" / "keystone.conf"),
                               lay.url(lay.keystone_port, "/v3"), configs.REGION],
                  OS_BOOTSTRAP_PASSWORD=lay.secrets["admin"])   # env, never argv
        self._step("keystone database and bootstrap ready")
        self._start("keystone", [self.python, str(lay.pylib / "novamove_wsgi.py"),
                                 "keystone.wsgi.api:application", str(lay.keystone_port)],
                    OS_KEYSTONE_CONFIG_DIR=str(lay.etc / "keystone"))
        self._wait_http("keystone", lay.keystone_port, "/v3", 60)
        from novamove.cloud import provision
        conn = provision.admin_connection(lay.auth_url, lay.secrets["admin"], configs.REGION)
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
        self._step("keystone ready: users and catalog provisioned")

    # Nova control plane
    def _nova_chain(self) -> None:
        lay = self.lay
        self._run("nova-manage", [self.python, str(lay.pylib / "novamove_nova_setup.py"),
                                  str(lay.etc / "nova" / "nova.conf")])
        self._step("nova databases ready")

    def _start_nova(self) -> None:
        """Conductor, scheduler, API and computes: they authenticate at start, so after keystone."""
        lay = self.lay
        conf = ["--config-file", str(lay.etc / "nova" / "nova.conf")]
        self._start("nova-conductor", [str(self.bin / "nova-conductor")] + conf)
        self._start("nova-scheduler", [str(self.bin / "nova-scheduler")] + conf)
        self._start("nova-api", [self.python, str(lay.pylib / "novamove_wsgi.py"),
                                 "nova.wsgi.osapi_compute:application", str(lay.nova_port)],
                    OS_NOVA_CONFIG_DIR=str(lay.etc / "nova"))
        for i in range(1, lay.computes + 1):
            host = lay.compute_host(i)
            self._start(f"nova-compute-{host}", [
                str(self.bin / "nova-compute"),
                "--config-file", str(lay.etc / "nova" / "nova.conf"),
                "--config-file", str(lay.etc / "nova" / f"compute{i}.conf")])
        self._step(f"{lay.computes} nova-compute processes started")

    # Placement and Glance
    def _placement_chain(self) -> None:
        lay = self.lay
        self._run("placement", [str(self.bin / "placement-manage"), "--config-file",
                                str(lay.etc / "placement" / "placement.conf"), "db", "sync"])
        self._step("placement database ready")
        self._start("placement", [self.python, str(lay.pylib / "novamove_wsgi.py"),
                                  "placement.wsgi.api:application", str(lay.placement_port)],
                    OS_PLACEMENT_CONFIG_DIR=str(lay.etc / "placement"))

    def _glance_chain(self) -> None:
        lay = self.lay
        for sub in ("images", "staging", "tasks", "lock"):
            (lay.state / "glance" / sub).mkdir(parents=True, exist_ok=True)
        self._run("glance", [str(self.bin / "glance-manage"), "--config-file",
                             str(lay.etc / "glance" / "glance-api.conf"), "db_sync"])
        self._step("glance database ready")
        self._start("glance", [self.python, str(lay.pylib / "novamove_wsgi.py"),
                               "glance.wsgi.api:application", str(lay.glance_port)],
                    OS_GLANCE_CONFIG_DIR=str(lay.etc / "glance"))

