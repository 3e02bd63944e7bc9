"""Who holds a run, and whether it still lives.

Every run holds a lease in the journal, renewed while its process lives (a thread of the
Journal, every third of LEASE_SECONDS). A run is known dead when its holder's machine is this
machine (same boot id) and its process is gone, or when its lease has expired: from another
machine the lease is all one can see. Leases are judged in epoch seconds of each machine's
clock: keep the machines on NTP (a lease is a minute; skew of seconds does not matter).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Optional

# How long a run's lease holds without renewal. NOVAMOVE_JOURNAL_LEASE shortens it (tests).
LEASE_SECONDS = float(os.environ.get("NOVAMOVE_JOURNAL_LEASE") or 60.0)

# TEST ONLY: make this process look like it runs on another machine (another boot id and name),
# so a test can "recover on machine B" on one host (docs/testing.md). Never set it in production:
# two machines claiming one identity would take each other's live runs for dead.
MACHINE_ENV = "NOVAMOVE_TEST_MACHINE"


def lease_seconds() -> float:
    return float(os.environ.get("NOVAMOVE_JOURNAL_LEASE") or LEASE_SECONDS)


def boot_id() -> Optional[str]:
    fake = os.environ.get(MACHINE_ENV)
    if fake:
        return f"test-{fake}"
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def machine_name() -> str:
    return os.environ.get(MACHINE_ENV) or socket.gethostname()


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


_SECRET_OPTION = re.compile(r"pass|secret|token|credential|(^|-)key$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def command_line(argv: Optional[list[str]] = None) -> str:
    """This process's command line, secrets masked: the value of an option whose name says
    password/secret/token/key, and the password of any URL in it."""
    argv = list(sys.argv if argv is None else argv)
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if arg.startswith("-") and _SECRET_OPTION.search(name.lstrip("-")) and not name.endswith("-file"):
            if eq:
                out.append(f"{name}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(_URL_PASSWORD.sub(r"\1***@", arg))
    return " ".join([os.path.basename(out[0])] + out[1:] if out else [])[:1000]


_HOLDER = {"pid": None, "token": None}


def holder_token() -> str:
    """This process's fencing token: written as a run's holder; a write as holder checks it."""
    if _HOLDER["pid"] != os.getpid():
        _HOLDER.update(pid=os.getpid(), token=uuid.uuid4().hex)
    return str(_HOLDER["token"])


def process_token(pid: int) -> Optional[str]:
    """What tells this process apart from any other that gets the same pid later (after a
    reboot, or once pids wrap): the boot id and the process's start time. None off Linux."""
    boot = boot_id()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]         # field 22: starttime
    except (OSError, IndexError):
        return None
    return f"{boot}:{pid}:{start}" if boot else None


def on_this_machine(run: dict) -> bool:
    """Same boot id and same host name: containers on one host share its boot id but not their
    pids (nor, normally, their host names), so a pid is only checked where it means something.
    Another boot id is another machine, or this one rebooted: the lease decides either way."""
    recorded = run.get("process")
    if not recorded:
        return True                   # written by a novamove before process tokens: local
    return recorded.rsplit(":", 2)[0] == boot_id() and holder_machine(run) in (None, machine_name())


def holder_machine(run: dict) -> Optional[str]:
    """The host name of the run's holder: who took it over last, else who started it."""
    return run.get("taken_over_machine") or run.get("machine")


def taken_over_by(at: str) -> dict:
    """The columns a take-over (`--resume`) writes: this process's user, machine and command
    line, and when. The run's user_name, machine and command stay who started it."""
    return dict(taken_over_user=user_name(), taken_over_machine=machine_name(), taken_over_command=command_line(),
                taken_over_at=at)


def lease_left(run: dict, now: Optional[float] = None) -> float:
    """Seconds the run's lease still holds (0 when expired or never taken)."""
    until = run.get("lease_until")
    return max(0.0, float(until) - (time.time() if now is None else now)) if until else 0.0


def run_alive(run: dict) -> bool:
    """Whether the process that ran `run` still runs. Here: its pid and start time (a reused pid
    after a reboot would keep a dead run "running" forever). On another machine (or before this
    machine's reboot): its lease."""
    if not on_this_machine(run):
        return lease_left(run) > 0
    pid = run.get("pid")
    if not pid_alive(pid):
        return False
    recorded = run.get("process")
    return recorded is None or process_token(pid) in (None, recorded)


def pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A process that exited but nobody reaped (a hook whose novamove was killed, reparented to
    # an init that does not reap, as in many containers) is a zombie: over, not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def holder_text(run: dict) -> str:
    """"alice@bastion2 (pid 4242)": who holds a run, for messages."""
    user = run.get("taken_over_user") if run.get("taken_over_machine") else run.get("user_name")
    who = f"{user or '?'}@{holder_machine(run)}" if holder_machine(run) else "a process"
    return f"{who} (pid {run.get('pid')})"


def still_running(run: dict) -> str:
    """Why recover leaves a live run alone, and until when: "still running (pid 42)" here;
    from another machine, who holds it and how long its lease has left."""
    if on_this_machine(run):
        return f"still running (pid {run.get('pid')})"
    ends = time.strftime("%H:%M:%S UTC", time.gmtime(float(run.get("lease_until") or time.time())))
    return (f"still running on {holder_text(run)}: its lease ends in {lease_left(run):.0f} s, at {ends} "
            "(recover again after that if it neither finishes nor renews it)")


def alive_elsewhere(run: dict) -> bool:
    """Whether `run` is running under another process that still lives (here: its process; on
    another machine: its current lease): nothing may be done to it, nor advised that races it."""
    if run.get("status") != "running":
        return False
    if on_this_machine(run) and run.get("pid") == os.getpid():
        return False                  # this very process (a run recovering itself)
    return run_alive(run)


class _Renewer:
    """One daemon thread per process renewing the leases of the runs every Journal holds, every
    third of a lease. A process that is stopped (SIGSTOP, a frozen VM) renews nothing: its lease
    runs out and another machine may take the run over; its next renewal (or write) then finds
    the fence. Journals are held weakly: a journal nobody uses any more is not kept alive."""

    def __init__(self) -> None:
        self.journals: "weakref.WeakSet" = weakref.WeakSet()
        self.lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None

    def add(self, journal: object) -> None:
        with self.lock:
            self.journals.add(journal)
            if self.thread is None or not self.thread.is_alive() or self.thread.ident is None:
                self.thread = threading.Thread(target=self._loop, name="novamove-lease", daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(lease_seconds() / 3)
            with self.lock:     # a copy taken while no add() changes the set (that killed this thread)
                journals = list(self.journals)
            for journal in journals:
                try:
                    journal.renew_leases()        # type: ignore[attr-defined]
                except BaseException:  # noqa: BLE001 -- a failed renewal is tried again; the lease says the rest
                    pass


RENEWER = _Renewer()
os.register_at_fork(after_in_child=lambda: RENEWER.__init__())   # threads do not survive a fork
