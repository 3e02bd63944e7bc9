"""Processes of the minicloud: started in their own process groups, tracked by PID files.

A process is only ever signalled if it carries this minicloud's marker in its environment, so a
stale PID file can never make `down` kill an unrelated process that reused the PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "NOVAMOVE_MINICLOUD"


@dataclass
class Proc:
    name: str
    pid: int


def _environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def is_ours(pid: int, state: Path) -> bool:
    return f"{MARKER}={state}".encode() in _environ_of(pid).split(b"\0")


def start(name: str, argv: list[str], env: dict[str, str], run: Path, logs: Path,
          state: Path, stdin_data: bytes | None = None) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, MARKER: str(state)}
    log = open(logs / f"{name}.out", "ab")
    proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.close()
    (run / f"{name}.pid").write_text(str(proc.pid))
    return Proc(name, proc.pid)


def running(run: Path, state: Path) -> dict[str, int]:
    """name -> pid of every recorded process that is still alive and ours."""
    out = {}
    for pidfile in sorted(run.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if is_ours(pid, state):
            out[pidfile.stem] = pid
    return out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_all(run: Path, state: Path, order: list[str], grace: float = 10.0) -> list[str]:
    """TERM every process group we started (in `order` first), then KILL what is left."""
    procs = running(run, state)
    names = [n for n in order if n in procs] + [n for n in procs if n not in order]
    for name in names:
        try:
            os.killpg(procs[name], signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(procs[n]) for n in names):
        time.sleep(0.2)
    for name in names:
        if _group_alive(procs[name]):
            try:
                os.killpg(procs[name], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    # Children that left the group (daemonized) still carry the marker: find them too.
    for pid in _marked_pids(state):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pidfile in run.glob("*.pid"):
        pidfile.unlink(missing_ok=True)
    return names


def _marked_pids(state: Path) -> list[int]:
    me = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != me and is_ours(int(p.name), state)]


def leftover(state: Path) -> list[int]:
    return _marked_pids(state)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def log_tail(logs: Path, name: str, lines: int = 20) -> str:
    for candidate in (logs / f"{name}.out", logs / f"{name}.log"):
        if candidate.exists():
            text = candidate.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
    return "(no log)"
