"""A drain's lease (engine/batch/claim.py): set and judged in Nova's clock, and a run whose
renewals fail starts no new move until it holds the lease again."""

from __future__ import annotations

from datetime import timedelta

from novamove import errors
from novamove.engine import tags
from novamove.engine.batch.claim import _Lease
from novamove.engine.journal import Journal
from novamove.planner import DrainPlan
from fakenova import FakeNova


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def leased(tmp_path, skew=timedelta(0)):
    nova = FakeNova()
    nova.skew = skew
    journal = Journal(tmp_path / "j.sqlite")
    plan = DrainPlan(kind="drain", source="c1", sources=("c1",))
    svc = nova.services["c1"]
    nova.disable_service(svc, tags.drain_reason("run1", None, tags.lease_from_now(now=nova.cloud_now())))
    clock, said = Clock(), []
    return nova, _Lease(nova, journal, "run1", plan, said.append, clock), clock, said


def test_the_lease_is_written_in_novas_clock(tmp_path):
    nova, lease, clock, _ = leased(tmp_path, skew=timedelta(hours=3))   # this machine 3 h behind
    clock.t = 100.0
    assert lease() and lease.holds()
    until = tags.lease_of(nova.services["c1"].disabled_reason)
    assert abs((until - nova.cloud_now()).total_seconds() - tags.LEASE_SECONDS) < 5


def test_failed_renewals_stop_new_moves_until_the_lease_is_held_again(tmp_path, monkeypatch):
    nova, lease, clock, said = leased(tmp_path)
    real = nova.disable_service

    def unreachable(*a, **kw):
        raise errors.Unreachable("the cloud API is unavailable (503)")
    monkeypatch.setattr(nova, "disable_service", unreachable)
    clock.t = 41.0
    assert lease() is True                      # not lost to anyone: the run goes on...
    assert lease.failing and any("renewal failed" in s for s in said)
    # ...and once two thirds of the lease went by without a renewal, no new move starts.
    nova.skew = timedelta(seconds=tags.LEASE_SECONDS * 2 / 3 + 1)
    assert not lease.holds()
    monkeypatch.setattr(nova, "disable_service", real)
    clock.t += tags.LEASE_SECONDS / 12
    lease()                                     # renewed (sooner, after a failure)
    assert lease.holds() and not lease.failing
    assert any("starting moves again" in s for s in said)
