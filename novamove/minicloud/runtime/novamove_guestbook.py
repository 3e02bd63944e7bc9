"""The fake hypervisor's guests on disk: one JSON file per compute, in its own state directory.

A real hypervisor's guests outlive nova-compute: a crashed or stopped compute service leaves
them running, which is exactly why evacuating a host that is merely "down per Nova" can start a
guest twice. The fake driver keeps its guests in a `GuestBook` (a dict that writes itself to
`<state_path>/fakevirt-guests.json` on every change) and reads it back when its nova-compute
starts, so a killed compute's guests still "run", and Nova's own start-up cleanup of evacuated
instances (init_host -> _destroy_evacuated_instances) has something to clean.

Standard library only: it runs inside the minicloud's OpenStack venv (imported by
novamove_fakevirt from the services' PYTHONPATH) and inside novamove (the minicloud manager reads
a compute's guests through `read_guests`).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

GUESTS_FILE = "fakevirt-guests.json"
FORMAT = 1

# nova.compute.power_state values, so novamove can name them without importing Nova.
POWER_STATES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed",
                7: "suspended"}


def guests_path(state_dir: str | os.PathLike) -> Path:
    """Where the compute whose state_path is `state_dir` keeps its guests."""
    return Path(state_dir) / GUESTS_FILE


def read_guests(path: str | os.PathLike) -> dict[str, dict[str, Any]] | None:
    """uuid -> {"name": ..., "state": power state number}; None when there is no file yet (a
    compute that never started with a guest book). A torn file cannot happen (writes are atomic
    renames); an unreadable one is an error, never "no guests"."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("guests"), dict):
        raise ValueError(f"{path}: not a fakevirt guest book")
    return {uuid: {"name": str(g["name"]), "state": int(g["state"])}
            for uuid, g in data["guests"].items()}


def write_guests(path: str | os.PathLike, guests: Iterable[tuple[str, str, int]]) -> None:
    """Replace the book with `guests` ((uuid, name, power state) each) atomically: a reader, or
    a compute SIGKILLed mid-write, sees the old book or the new one, never half of one."""
    path = Path(path)
    body = {"format": FORMAT,
            "guests": {uuid: {"name": name, "state": state} for uuid, name, state in guests}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        json.dump(body, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class GuestBook(dict):
    """The driver's `instances` dict (uuid -> guest with .name and .state) that saves itself.

    Adding or removing a guest writes the file at once; a guest's power state is changed in
    place by the driver (FakeDriver's power_on/power_off set `.state`), so the driver calls
    `save()` after those."""

    def __init__(self, path: str | os.PathLike, make_guest: Callable[[str, int, str], Any]):
        super().__init__()
        self.path = Path(path)
        self._lock = threading.Lock()
        loaded = read_guests(self.path)
        self.existed = loaded is not None
        for uuid, g in (loaded or {}).items():
            dict.__setitem__(self, uuid, make_guest(g["name"], g["state"], uuid))

    def save(self) -> None:
        with self._lock:
            write_guests(self.path, [(u, g.name, int(g.state)) for u, g in list(self.items())])

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.save()

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self.save()

    def pop(self, key, *default):
        had = key in self
        out = super().pop(key, *default)
        if had:
            self.save()
        return out

    def popitem(self):
        out = super().popitem()
        self.save()
        return out

    def clear(self) -> None:
        super().clear()
        self.save()

    def update(self, *args, **kwargs) -> None:
        super().update(*args, **kwargs)
        self.save()

    def setdefault(self, key, default=None):
        had = key in self
        out = super().setdefault(key, default)
        if not had:
            self.save()
        return out
