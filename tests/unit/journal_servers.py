"""Database servers for the journal tests: a MariaDB and a PostgreSQL on loopback, private to
one pytest run, started the first time a test asks for one and shared by every xdist worker
(a lock file and a count of the workers using them; the last worker out stops them).

MariaDB runs as root, like the minicloud's. PostgreSQL's initdb refuses root: as root, the
cluster belongs to the `postgres` user (Debian's package creates it) and its directory lives
outside pytest's 0700 temporary directories; as another user, it runs as that user.
Every test gets a database of its own (`new_database`), owned by a user with a password, so
the journal connects the way an operator's novamove would: TCP to 127.0.0.1 with a password.
"""

from __future__ import annotations

import fcntl
import glob
import itertools
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import sqlalchemy as sa

BACKENDS = ("sqlite", "mariadb", "postgresql")
USER = "nmjournal"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else (shutil.which(name) or name)


class Servers:
    """The servers of one pytest run, described by state.json in `root` (shared by workers)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file = root / "journal-servers.json"
        self.counter = itertools.count()
        self.worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        with open(self.root / "journal-servers.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
            yield state
            self.state_file.write_text(json.dumps(state))

    def enter(self) -> None:
        with self._locked() as state:
            state["users"] = state.get("users", 0) + 1

    def leave(self) -> None:
        with self._locked() as state:
            state["users"] = max(0, state.get("users", 1) - 1)
            if state["users"] == 0:
                for backend in ("mariadb", "postgresql"):
                    if backend in state:
                        _stop(backend, state.pop(backend))

    def server(self, backend: str) -> dict:
        with self._locked() as state:
            info = state.get(backend)
            if info is None or not _running(info):
                info = state[backend] = _start(backend, self.root)
            return info

    def new_database(self, backend: str) -> str:
        """A fresh, empty database on `backend`'s server; its URL, with the password inline."""
        info = self.server(backend)
        name = f"nmj_{self.worker}_{os.getpid()}_{next(self.counter)}"
        admin = sa.create_engine(info["admin_url"], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as c:
            if backend == "mariadb":
                c.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            else:
                c.exec_driver_sql(f"CREATE DATABASE {name} OWNER {USER}")
        admin.dispose()
        return url(info, name)

    def foreign_database(self, backend: str) -> str:
        """A database of another application (a table of its own, no journal)."""
        db = self.new_database(backend)
        engine = sa.create_engine(db, poolclass=sa.pool.NullPool)
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE instances (id INTEGER PRIMARY KEY, name VARCHAR(40))")
        engine.dispose()
        return db


def url(info: dict, database: str, password: Optional[str] = None) -> str:
    driver = "mysql+pymysql" if info["backend"] == "mariadb" else "postgresql+psycopg"
    return f"{driver}://{USER}:{password or info['password']}@127.0.0.1:{info['port']}/{database}"


class _PortTaken(RuntimeError):
    """The server exited before it listened: its free port was taken meanwhile (another
    session's servers, the faults targets' PostgreSQL, anything on this machine)."""


def _start(backend: str, root: Path) -> dict:
    # Ports are picked free, not fixed, and data directories are this run's own (pytest's
    # numbered temporary directory; /tmp/nmj-pg-PID-RANDOM): several sessions' test runs, and
    # `make faults-shared-journal` / `make faults-random` beside them, never share a server.
    for attempt in range(3):
        started: list = []
        try:
            return (_start_mariadb if backend == "mariadb" else _start_postgresql)(root, started)
        except BaseException as exc:
            for proc in started:           # not left running by a set-up that failed half-way
                _stop(backend, {"pid": proc.pid})
            if not isinstance(exc, _PortTaken) or attempt == 2:
                raise
    raise AssertionError("not reached")


def _running(info: dict) -> bool:
    try:
        os.kill(info["pid"], 0)
    except (ProcessLookupError, KeyError):
        return False
    return True


def _wait_listening(port: int, sock: Path, what: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until `proc` listens: its own unix socket `sock` is there and 127.0.0.1:`port` answers.
    A server that exits first lost its free port to another process (whatever answers on that
    port then is not ours: hence the socket, which only ours makes, once it has bound the port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _PortTaken(f"{what} exited ({proc.returncode}) before it listened on 127.0.0.1:{port}")
        if sock.exists():
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _start_mariadb(root: Path, started: list) -> dict:
    data, run = root / "mariadb" / "data", root / "mariadb" / "run"
    shutil.rmtree(root / "mariadb", ignore_errors=True)
    data.mkdir(parents=True)
    run.mkdir(parents=True)
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port, sock = _free_port(), run / "mysqld.sock"
    log = open(root / "mariadb" / "mariadbd.log", "ab")
    proc = subprocess.Popen(
        [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}",
         f"--socket={sock}", f"--port={port}", "--bind-address=127.0.0.1", "--user=root",
         f"--pid-file={run / 'mysqld.pid'}", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
         "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--skip-name-resolve",
         "--max-connections=300", "--performance-schema=OFF"],
        stdout=log, stderr=log, start_new_session=True)
    started.append(proc)
    _wait_listening(port, sock, "mariadbd", proc)
    password = secrets.token_hex(12)
    admin_url = f"mysql+pymysql://root@localhost/?unix_socket={sock}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{password}'")
        c.exec_driver_sql(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'")
    engine.dispose()
    return {"backend": "mariadb", "pid": proc.pid, "port": port, "password": password, "admin_url": admin_url}


def _start_postgresql(root: Path, started: list) -> dict:
    as_root = os.geteuid() == 0
    # A directory the cluster's owner can reach (pytest's are 0700 root): short, for the socket.
    data = Path(f"/tmp/nmj-pg-{os.getpid()}-{secrets.token_hex(3)}")
    data.mkdir(mode=0o700)
    prefix: list[str] = []
    if as_root:
        owner = pwd.getpwnam("postgres")
        os.chown(data, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(12)
    pwfile = data / "pw"
    subprocess.run(prefix + ["sh", "-c", f"umask 077; echo {password} > {pwfile}"], check=True)
    subprocess.run(prefix + [_pg_bin("initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth-local=trust",
                             "--auth-host=scram-sha-256", "--pwfile", str(pwfile), "-E", "UTF8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = _free_port()
    proc = subprocess.Popen(
        prefix + [_pg_bin("postgres"), "-D", str(data / "db"), "-p", str(port), "-k", str(data),
                  "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
                  "-c", "shared_buffers=16MB"],
        stdout=open(root / "postgresql.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    started.append(proc)
    _wait_listening(port, data / f".s.PGSQL.{port}", "postgres", proc)
    admin_url = f"postgresql+psycopg://postgres@/postgres?host={data}&port={port}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    for _ in range(50):
        try:
            with engine.connect() as c:
                c.exec_driver_sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{password}'")
            break
        except sa.exc.OperationalError:       # listening, not yet accepting (recovery)
            time.sleep(0.1)
    engine.dispose()
    return {"backend": "postgresql", "pid": proc.pid, "port": port, "password": password,
            "admin_url": admin_url, "dir": str(data)}


def _stop(backend: str, info: dict) -> None:
    import signal
    try:
        # postgres started through runuser: the session (runuser and postgres) is ours to end
        os.killpg(info["pid"], signal.SIGTERM if backend == "mariadb" else signal.SIGQUIT)   # a throwaway cluster: immediate shutdown
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 20
    while _running(info) and time.monotonic() < deadline:
        try:
            os.waitpid(info["pid"], os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if info.get("dir"):
        shutil.rmtree(info["dir"], ignore_errors=True)
