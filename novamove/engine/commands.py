"""The operator's own commands that novamove runs: maintenance hooks, checks and fence commands.

They run with novamove's environment *minus* its secrets: a hook that needs the cloud still has
OS_CLOUD and OS_CLIENT_CONFIG_FILE (clouds.yaml, readable by the operator alone), but not the
password, token or application-credential secret novamove itself may have been given, so a
hook's log, a `ps e` or a careless `env` in a script shows none of them.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

# Variables that carry a credential (openstacksdk/keystoneauth and the old nova client's).
SECRET_VARS = frozenset({
    "OS_PASSWORD", "OS_TOKEN", "OS_AUTH_TOKEN", "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_CLIENT_SECRET", "OS_ACCESS_SECRET", "OS_TOTP", "OS_PASSCODE", "NOVA_PASSWORD",
    "OS_SECRET_KEY", "OS_ACCESS_TOKEN",
})


# A journal database URL with its password inline (user:password@): not handed to a hook (a
# URL without one, and NOVAMOVE_JOURNAL_PASSWORD_FILE, are).
_URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^@\s]*@")


def is_secret_var(name: str, value: str = "") -> bool:
    up = name.upper()
    if up == "NOVAMOVE_JOURNAL":
        return bool(_URL_WITH_PASSWORD.search(value))
    return up in SECRET_VARS or (up.startswith("OS_") and any(
        word in up for word in ("PASSWORD", "SECRET", "TOKEN", "PASSCODE")))


def command_env(extra: Mapping[str, str], base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The environment of an operator command: `base` (default os.environ) without the
    secret-bearing OS_* variables (nor a journal URL with its password), plus `extra`
    (NOVAMOVE_HOST and friends)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not is_secret_var(k, v)}
    env.update(extra)
    return env


def run_in_group(cmd: str, env: Mapping[str, str], timeout: float, stdout=None,
                 stderr=None) -> Optional[int]:
    """Run `cmd` (shell) in a process group of its own; on timeout the whole group is killed
    (TERM, then KILL), not only the shell, so a `sleep` or `ssh` under it cannot outlive it.
    Returns the exit code, or None when it timed out."""
    import signal
    import subprocess
    proc = subprocess.Popen(cmd, shell=True, env=dict(env), stdout=stdout, stderr=stderr,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        return None


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_PLACEHOLDER = re.compile(r"\{(host|hypervisor|run_id|server)\}")


def validate_command(cmd: Optional[str], option: str) -> None:
    """Refuse, before anything changes, an operator command that cannot run as meant: empty, a
    `{host}`-style placeholder (novamove substitutes nothing: the command reads
    "$NOVAMOVE_HOST"), a syntax error `sh -n` finds, or a first word that is a path to a file
    that does not exist or is not executable. Raises UsageError (exit 2), one line."""
    import shlex
    import subprocess
    from novamove import errors
    if cmd is None:
        return
    if not isinstance(cmd, str) or not cmd.strip():
        raise errors.UsageError(f"{option} must be a command line, not {cmd!r}")
    match = _PLACEHOLDER.search(cmd)
    if match:
        var = {"host": "NOVAMOVE_HOST", "hypervisor": "NOVAMOVE_HYPERVISOR", "run_id": "NOVAMOVE_RUN_ID",
               "server": "NOVAMOVE_HOST"}[match.group(1)]
        raise errors.UsageError(f"{option}: novamove does not substitute {match.group(0)}; use \"${var}\" "
                                "(set in the command's environment)")
    check = subprocess.run(["sh", "-n", "-c", cmd], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check.returncode != 0:
        why = next((ln for ln in reversed(check.stderr.splitlines()) if ln.strip()), "syntax error")
        raise errors.UsageError(f"{option}: sh rejects the command: {why.strip()[:200]}")
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        words = []
    first = words[0] if words else ""
    if "/" in first and "=" not in first:
        path = os.path.expanduser(first)
        if not os.path.exists(path):
            raise errors.UsageError(f"{option}: {first} does not exist")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise errors.UsageError(f"{option}: {first} is not an executable file")
