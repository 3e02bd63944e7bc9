"""The fake driver's guest book (runtime/novamove_guestbook.py): the guests a compute's fake
hypervisor has, kept on disk so they outlive nova-compute, and Minicloud.guests reading it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from novamove.minicloud.configs import Layout, compute_conf
from novamove.minicloud.manager import Minicloud, UnknownComponent
from novamove.minicloud.runtime import novamove_guestbook as gb

RUNNING, SHUTDOWN = 1, 4


@dataclass
class Guest:            # what FakeDriver keeps per guest (nova.virt.fake.FakeInstance)
    name: str
    state: int
    uuid: str


def _book(path) -> gb.GuestBook:
    return gb.GuestBook(path, Guest)


def _on_disk(path) -> dict:
    return {u: (g["name"], g["state"]) for u, g in gb.read_guests(path).items()}


def test_no_file_is_no_book_yet_and_nothing_is_written_by_reading(tmp_path):
    path = gb.guests_path(tmp_path / "compute1")
    book = _book(path)
    assert not book.existed and dict(book) == {}
    assert gb.read_guests(path) is None and not path.exists()
    book.save()                                     # the driver's first start writes it
    assert _book(path).existed and gb.read_guests(path) == {}


def test_every_change_is_on_disk_at_once_and_read_back_by_a_new_process(tmp_path):
    path = gb.guests_path(tmp_path)
    book = _book(path)
    book["u1"] = Guest("instance-1", RUNNING, "u1")             # spawn
    book["u2"] = Guest("instance-2", RUNNING, "u2")
    assert _on_disk(path) == {"u1": ("instance-1", RUNNING), "u2": ("instance-2", RUNNING)}
    book["u2"].state = SHUTDOWN                                # power_off changes it in place...
    assert _on_disk(path)["u2"] == ("instance-2", RUNNING)
    book.save()                                                # ...and the driver saves
    assert _on_disk(path)["u2"] == ("instance-2", SHUTDOWN)
    del book["u1"]                                             # destroy
    assert set(_on_disk(path)) == {"u2"}
    assert book.pop("u2").name == "instance-2"                 # post_live_migration (source)
    assert book.pop("gone", None) is None
    assert _on_disk(path) == {}
    book.update(u3=Guest("instance-3", RUNNING, "u3"))
    again = _book(path)                                        # nova-compute started again
    assert again.existed and again["u3"] == Guest("instance-3", RUNNING, "u3")


def test_writes_are_atomic_renames_leaving_no_temporary_files(tmp_path):
    path = gb.guests_path(tmp_path)
    book = _book(path)
    for i in range(5):
        book[f"u{i}"] = Guest(f"instance-{i}", RUNNING, f"u{i}")
    assert sorted(os.listdir(tmp_path)) == [gb.GUESTS_FILE]
    inode = path.stat().st_ino
    book.save()
    assert path.stat().st_ino != inode           # a new file renamed over the old, never rewritten


def test_an_unreadable_book_is_an_error_not_an_empty_hypervisor(tmp_path):
    path = gb.guests_path(tmp_path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a fakevirt guest book"):
        _book(path)
    path.write_text("{")
    with pytest.raises(json.JSONDecodeError):
        gb.read_guests(path)


def test_minicloud_guests_reads_a_computes_book_even_with_its_compute_stopped(tmp_path):
    cloud = Minicloud(tmp_path / "mc", log=lambda m: None)
    lay = Layout(cloud.state, 17100, 2, {})
    cloud._save_layout(lay, tmp_path / "venv")
    # the book lives in the compute's own state_path, the one its nova.conf names
    state = lay.compute_state("compute2")
    assert f"state_path = {state}\n" in compute_conf(lay, 2)
    assert cloud.guests("compute2") == {}                        # never started: no guests
    gb.write_guests(gb.guests_path(state), [("u1", "instance-1", RUNNING),
                                            ("u2", "instance-2", SHUTDOWN), ("u3", "i-3", 9)])
    assert cloud.guests("compute2") == {"u1": "running", "u2": "shutdown", "u3": "9"}
    assert cloud.guests("compute1") == {}
    with pytest.raises(UnknownComponent, match="no compute host 'compute9'"):
        cloud.guests("compute9")
