"""The minicloud's own virtualenv for the OpenStack services (pinned, separate from novamove's)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def default_path() -> Path:
    """One venv per set of pins, shared by every minicloud state directory on the machine."""
    if os.environ.get("NOVAMOVE_OS_VENV"):
        return Path(os.environ["NOVAMOVE_OS_VENV"])
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "novamove" / f"os-venv-{digest}"


def is_ready(venv: Path) -> bool:
    return (venv / ".novamove-ready").exists()


def ensure(venv: Path, log=print) -> Path:
    """Create the venv and install the pinned services once; later calls cost nothing."""
    if is_ready(venv):
        return venv
    log(f"installing OpenStack services into {venv} (once; about a minute)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "-U", "pip"], check=True)
    subprocess.run(pip + ["install", "-r", str(REQUIREMENTS)], check=True)
    (venv / ".novamove-ready").write_text(REQUIREMENTS.read_text())
    return venv
