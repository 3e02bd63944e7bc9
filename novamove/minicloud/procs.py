"""Processes of the minicloud: started in their own sessions, tracked by PID files.

A PID file records the process's start time too, and a process is only ever signalled if both
match, so a stale PID file can never make `down` kill an unrelated process that reused the PID.
(An environment marker alone is not enough: setproctitle, used by oslo.service, overwrites the
memory that /proc/PID/environ shows.)
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


def has_marker(pid: int, state: Path) -> bool:
    return f"{MARKER}={state}".encode() in _environ_of(pid).split(b"\0")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces; everything after the last ")" is space-separated.
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None      # field 22 of /proc/PID/stat


def session_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None  # field 6


def start(name: str, argv: list[str], env: dict[str, str], run: Path, logs: Path,
          state: Path, stdin_data: bytes | None = None) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, MARKER: str(state)}
    log = open(logs / f"{name}.out", "ab")
    proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.close()
    (run / f"{name}.pid").write_text(f"{proc.pid} {start_time(proc.pid)}")
    return Proc(name, proc.pid)


def running(run: Path, state: Path) -> dict[str, int]:
    """name -> pid of every recorded process that is still alive and ours."""
    out = {}
    for pidfile in sorted(run.glob("*.pid")):
        try:
            pid_text, started = pidfile.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if start_time(pid) == started and _stat(pid)[0] != "Z":
            out[pidfile.stem] = pid
    return out


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the group. A group leader that this
    process started and that has exited stays a zombie until reaped: reap it here."""
    try:
        os.waitpid(pgid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            fields = _stat(int(p.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


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
    # Children that left the group but not the session, or carry the marker: end them too.
    for pid in leftover(state, set(procs.values())):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pidfile in run.glob("*.pid"):
        pidfile.unlink(missing_ok=True)
    return names


def stop_one(run: Path, state: Path, name: str, grace: float = 10.0, kill: bool = False) -> bool:
    """TERM (or, with `kill`, KILL at once, like a crash) one component's process group and wait
    for all of it to end; KILL what is left after `grace`. False if it was not running."""
    pid = running(run, state).get(name)
    if pid is None:
        (run / f"{name}.pid").unlink(missing_ok=True)
        return False
    session = session_of(pid)
    try:
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
    if _group_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    # Children that left its process group but not its session (it was started in its own).
    deadline = time.monotonic() + 5
    while True:
        left = [p for p in leftover(state, {session} if session else set())
                if session_of(p) == session]
        if not left or time.monotonic() > deadline:
            break
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.1)
    (run / f"{name}.pid").unlink(missing_ok=True)
    return True


def leftover(state: Path, sessions: set[int]) -> list[int]:
    """Live processes in one of our sessions or carrying our marker (zombies excluded)."""
    me = os.getpid()
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == me:
            continue
        pid = int(p.name)
        fields = _stat(pid)
        if not fields or fields[0] == "Z":
            continue
        if int(fields[3]) in sessions or has_marker(pid, state):
            out.append(pid)
    return out


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
