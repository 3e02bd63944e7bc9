"""`recover` and a run that is alive elsewhere (issue 19): whatever its verb, it says who holds
the run and when the lease ends, touches nothing, and advises nothing that would race it (no
rerun of a drain, no `maintain --resume`); once the lease has run out, the usual advice."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from novamove.engine import recover as recovery
from novamove.engine.journal import Journal, leases

from fakenova import FakeNova

# What recover advises for a dead run of each verb: none of it may be said of a live one.
RACING = ("again to continue", "--resume", "would continue", "would ", "re-enabled", "continues it")


def _held_elsewhere(journal: Journal, run_id: str, lease_in: float) -> None:
    """The run was started by alice on machine "b2" and its lease ends in `lease_in` s."""
    journal._write("UPDATE runs SET process=?, machine=?, user_name=?, holder=?, lease_until=? WHERE id=?",
                   ("test-b2:4242:1", "b2", "alice", "their-token", time.time() + lease_in, run_id))
    journal._held.discard(run_id)


@pytest.mark.parametrize("verb,dry_run", [("drain", False), ("maintain", False), ("undrain", False),
                                          ("evacuate", True), ("rebalance", False), ("migrate", True)])
def test_a_run_alive_on_another_machine_is_named_with_its_lease_and_nothing_races_it(tmp_path, monkeypatch,
                                                                                      verb, dry_run):
    monkeypatch.setenv(leases.MACHINE_ENV, "b1")
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", verb, source="compute1", server_name="vm1" if verb == "migrate" else None)
    _held_elsewhere(j, "r1", lease_in=40)
    before = j.get_run("r1")
    (row,) = recovery.recover(FakeNova(), j, dry_run=dry_run)
    summary = row["summary"]
    ends = time.strftime("%H:%M:%S", time.gmtime(before["lease_until"]))
    assert "still running on alice@b2 (pid" in summary and "lease ends in" in summary and ends in summary
    assert not [w for w in RACING if w in summary], summary
    after = j.get_run("r1")
    assert (after["status"], after["lease_until"]) == ("running", before["lease_until"]), "not touched"


def test_the_same_run_with_its_lease_run_out_gets_the_usual_advice(tmp_path, monkeypatch):
    monkeypatch.setenv(leases.MACHINE_ENV, "b1")
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", "drain", source="compute1")
    _held_elsewhere(j, "r1", lease_in=-1)
    (row,) = recovery.recover(FakeNova(), j)
    assert "`novamove drain compute1` again to continue it" in row["summary"]


def test_a_campaign_alive_in_another_process_here_is_not_resumed(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", "maintain", source="compute1,compute2")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        j._write("UPDATE runs SET pid=?, process=?, holder=? WHERE id=?",
                 (other.pid, leases.process_token(other.pid), "their-token", "r1"))
        j._held.discard("r1")
        (row,) = recovery.recover(FakeNova(), j)
        assert row["summary"] == f"maintain still running (pid {other.pid}); not touched"
    finally:
        other.kill()
        other.wait()
    (row,) = recovery.recover(FakeNova(), j)
    assert "`novamove maintain --resume r1` continues it" in row["summary"]


def test_campaign_stop_never_signals_a_pid_of_another_machine(tmp_path, monkeypatch):
    from novamove import api, errors
    monkeypatch.setenv(leases.MACHINE_ENV, "b1")
    j = Journal(tmp_path / "j.sqlite")
    j.start_run("r1", "maintain", source="compute1")
    _held_elsewhere(j, "r1", lease_in=40)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        j._write("UPDATE runs SET pid=? WHERE id=?", (bystander.pid, "r1"))   # b2's pid, also in use here
        with pytest.raises(errors.PreconditionFailed, match="runs on alice@b2 .* not on this machine"):
            api.campaign_stop("r1", journal_path=tmp_path / "j.sqlite")
        assert bystander.poll() is None, "a process of this machine was signalled"
    finally:
        bystander.kill()
        bystander.wait()
