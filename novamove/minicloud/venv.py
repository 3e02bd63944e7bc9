"""The minicloud's own virtualenv for the OpenStack services (pinned, separate from novamove's).

One OpenStack release is installed per venv. RELEASES maps each release the minicloud can run to
its requirements and constraints files (a pip freeze of a known-good install: every transitive
version pinned); the default is today's release, the others are older ones novamove is tested
against (`make compat`, docs/minicloud.md "Tested Nova releases")."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

_HERE = Path(__file__).parent
DEFAULT_RELEASE = "2025.2"
# release -> (requirements, constraints). The default's files keep their historic names, so the
# venv path (the hash of the pins) of an existing install does not change.
RELEASES: dict[str, tuple[Path, Path]] = {
    "2025.2": (_HERE / "requirements.txt", _HERE / "constraints.txt"),
    "2024.1": (_HERE / "requirements-2024.1.txt", _HERE / "constraints-2024.1.txt"),
}
REQUIREMENTS, CONSTRAINTS = RELEASES[DEFAULT_RELEASE]


class UnknownRelease(ValueError):
    pass


class VenvMismatch(RuntimeError):
    """NOVAMOVE_OS_VENV names a venv built for other pins than the release asked for."""


def chosen_release(release: str | None = None) -> str:
    """The release asked for (argument, else NOVAMOVE_OS_RELEASE, else the default), checked."""
    release = release or os.environ.get("NOVAMOVE_OS_RELEASE") or DEFAULT_RELEASE
    if release not in RELEASES:
        raise UnknownRelease(f"unknown OpenStack release {release!r} for the minicloud "
                             f"(known: {', '.join(sorted(RELEASES))})")
    return release


def pins(release: str = DEFAULT_RELEASE) -> bytes:
    """What decides the venv's content (and so its path): requirements and constraints."""
    requirements, constraints = RELEASES[release]
    return requirements.read_bytes() + b"\n# constraints\n" + constraints.read_bytes()


def default_path(release: str = DEFAULT_RELEASE) -> Path:
    """One venv per set of pins, shared by every minicloud state directory on the machine;
    NOVAMOVE_OS_VENV names one explicitly (then it must hold the release asked for)."""
    if os.environ.get("NOVAMOVE_OS_VENV"):
        return Path(os.environ["NOVAMOVE_OS_VENV"])
    digest = hashlib.sha256(pins(release)).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "novamove" / f"os-venv-{digest}"


def is_ready(venv: Path) -> bool:
    return (venv / ".novamove-ready").exists()


def _check_pins(venv: Path, release: str) -> None:
    """A ready venv holds the pins it was built from: never run one release's services while
    claiming another (a venv given by NOVAMOVE_OS_VENV can be any)."""
    if (venv / ".novamove-ready").read_bytes() != pins(release):
        raise VenvMismatch(f"the OpenStack venv {venv} was not built from the pins of release "
                           f"{release} (novamove/minicloud/{RELEASES[release][1].name}): "
                           "point NOVAMOVE_OS_VENV at another directory, or unset it")


def ensure(venv: Path, log=print, release: str = DEFAULT_RELEASE) -> Path:
    """Create the venv and install the release's pinned services once; later calls cost nothing.
    Concurrent callers (parallel test sessions) wait for one another on a lock file."""
    if is_ready(venv):
        _check_pins(venv, release)
        return venv
    import fcntl
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready(venv):
            _check_pins(venv, release)
            return venv
        return _build(venv, log, release)


def _build(venv: Path, log, release: str) -> Path:
    requirements, constraints = RELEASES[release]
    log(f"installing OpenStack {release} services into {venv} (once; a minute or two)")
    python = sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "-U", "pip"], check=True)
    subprocess.run(pip + ["install", "-r", str(requirements), "-c", str(constraints)], check=True)
    (venv / ".novamove-ready").write_bytes(pins(release))
    return venv
