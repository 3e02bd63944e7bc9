"""`migrate SERVER` without a target: Nova's scheduler chooses (issue 20, part 1).

Everything a named move promises holds: the pre-checks, the honest wait, the host read back
(another host than the source), the confirmation of a cold move, the journal and `back`.
"""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.engine.journal import Journal
from novamove.engine.single import mover, operations

from fakenova import FakeNova

WRITES = {"disable_service", "enable_service", "migrate_server", "live_migrate_server"}


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def nova_with(status="ACTIVE"):
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    nova.tick_on_get = True                       # the single-move watcher reads the server
    nova.add("vm1", "c1", status=status)
    return nova


@pytest.mark.parametrize("status,mode", [("ACTIVE", "live"), ("SHUTOFF", "cold")])
def test_the_scheduler_chooses_and_the_move_is_judged_on_the_host_read_back(journal, status, mode):
    nova = nova_with(status)
    result = mover.move(nova, journal, "vm1", None, poll_interval=0)
    assert result.ok, result.error
    assert (result.mode, result.strategy, result.source) == (mode, "scheduler", "c1")
    landed = nova.servers["vm1"]
    assert landed.host != "c1" and result.dest == landed.host and result.after["host"] == landed.host
    assert landed.status == status and not landed.task_state          # a cold move is confirmed
    assert "disable_service" not in nova.calls                         # nothing else touched
    run = journal.runs()[0]
    assert (run["status"], run["strategy"], run["dest"]) == ("ok", "scheduler", landed.host)


def test_back_returns_a_scheduled_move_to_its_source(journal):
    nova = nova_with()
    first = mover.move(nova, journal, "vm1", None, poll_interval=0)
    found, source = operations.previous_host(nova, journal, "vm1")
    assert (found.id, source) == ("vm1", "c1")
    back = mover.move(nova, journal, "vm1", source, verb="back", poll_interval=0)
    assert first.ok and back.ok and nova.servers["vm1"].host == "c1"


def test_dry_run_lists_the_hosts_that_pass_the_pre_checks(journal):
    nova = nova_with()
    nova.services["c3"] = nova.services["c3"].__class__(**{**nova.services["c3"].__dict__, "status": "disabled"})
    result = mover.move(nova, journal, "vm1", None, check_mode=True)
    assert result.ok and result.check_mode
    assert "the scheduler chooses among: c2 (live, scheduler)" in result.summary
    assert not WRITES & set(nova.calls) and journal.runs() == []


def test_no_host_passing_the_pre_checks_is_refused_before_any_write(journal):
    nova = nova_with()
    for host in ("c2", "c3"):
        nova.down(host)
    with pytest.raises(errors.NoCapacity, match="no other compute can take vm-vm1: target c2 is down"):
        mover.move(nova, journal, "vm1", None)
    assert not WRITES & set(nova.calls)


def test_isolate_without_a_target_is_a_one_line_usage_error(journal):
    nova = nova_with()
    with pytest.raises(errors.UsageError, match="--strategy isolate needs a target") as caught:
        mover.move(nova, journal, "vm1", None, strategy="isolate")
    assert "\n" not in str(caught.value) and nova.calls == []


def test_a_scheduled_move_that_fails_says_so_with_novas_reason(journal):
    nova = nova_with()
    nova.fail_servers.add("vm1")
    result = mover.move(nova, journal, "vm1", None, poll_interval=0)
    assert not result.ok and result.exit_code == errors.EXIT_FAILED
    assert "NoValidHost" in result.error and nova.servers["vm1"].host == "c1"


def test_the_schedulers_refusal_is_a_failed_move_with_nothing_left_behind(journal, monkeypatch):
    nova = nova_with()

    def no_valid_host(server):
        raise errors.PreconditionFailed("live migration: No valid host was found (400)")
    monkeypatch.setattr(nova, "_schedule", no_valid_host)
    with pytest.raises(errors.MoveFailed, match="Nova refused the live migration of vm-vm1 to a host of "
                                                "the scheduler's choice: No valid host"):
        mover.move(nova, journal, "vm1", None, poll_interval=0)
    assert nova.servers["vm1"].host == "c1" and journal.runs()[0]["status"] == "failed"
