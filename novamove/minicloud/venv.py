"""The minicloud's own virtualenv for the OpenStack services (pinned, separate from novamove's)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
# pip freeze of a known-good install of REQUIREMENTS: every transitive version pinned.
CONSTRAINTS = Path(__file__).with_name("constraints.txt")


def pins() -> bytes:
    """What decides the venv's content (and so its path): requirements and constraints."""
    return REQUIREMENTS.read_bytes() + b"\n# constraints\n" + CONSTRAINTS.read_bytes()


def default_path() -> Path:
    """One venv per set of pins, shared by every minicloud state directory on the machine."""
    if os.environ.get("NOVAMOVE_OS_VENV"):
        return Path(os.environ["NOVAMOVE_OS_VENV"])
    digest = hashlib.sha256(pins()).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "novamove" / f"os-venv-{digest}"


def is_ready(venv: Path) -> bool:
    return (venv / ".novamove-ready").exists()


def ensure(venv: Path, log=print) -> Path:
    """Create the venv and install the pinned services once; later calls cost nothing.
    Concurrent callers (parallel test sessions) wait for one another on a lock file."""
    if is_ready(venv):
        return venv
    import fcntl
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready(venv):
            return venv
        return _build(venv, log)


def _build(venv: Path, log) -> Path:
    log(f"installing OpenStack services into {venv} (once; about a minute)")
    python = sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "-U", "pip"], check=True)
    subprocess.run(pip + ["install", "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)], check=True)
    (venv / ".novamove-ready").write_bytes(pins())
    return venv
