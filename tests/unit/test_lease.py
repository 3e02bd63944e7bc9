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
    clock.t = tags.RENEW_AFTER + 1
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


def test_a_lease_is_renewed_once_half_spent_not_before(tmp_path):
    nova, lease, clock, _ = leased(tmp_path)
    writes = lambda: nova.requests.by_verb.get("disable_service", 0)     # noqa: E731
    before = writes()
    clock.t = tags.LEASE_SECONDS / 3 + 1          # a third spent (the old cadence): not yet
    assert lease() and writes() == before
    clock.t = tags.RENEW_AFTER + 1
    assert lease() and writes() == before + 1


def test_a_drain_for_a_campaign_works_under_its_lease_without_a_tag_of_its_own(tmp_path):
    from novamove.engine.batch import drain as drains
    nova = FakeNova(hosts=("c1", "c2", "c3"))
    for j in range(2):
        nova.add(f"c1-{j}", "c1")
    journal = Journal(tmp_path / "j.sqlite")
    held = tags.drain_reason("camp1", "maintain: draining", tags.lease_from_now(now=nova.cloud_now()))
    nova.disable_service(nova.services["c1"], held)
    n0 = nova.requests.by_verb.get("disable_service", 0)
    rep = drains.drain(nova, "c1", journal=journal, on_behalf_of="camp1", poll_interval=0.01,
                       hand_back=lambda: tags.drain_reason("camp1", "maintain: draining",
                                                           tags.lease_from_now(now=nova.cloud_now())))
    assert rep.ok and rep.count(drains.MOVED) == 2
    # The campaign's tag, read back, is the drain's hold: no write of its own, no hand-back.
    assert nova.requests.by_verb.get("disable_service", 0) == n0
    assert tags.reason_run_id(nova.services["c1"].disabled_reason) == "camp1"
    kinds = [e.kind for e in journal.events(rep.run_id)]
    assert "drain.disable" in kinds and "drain.lease" not in kinds
    # Not under that run's tag (a person's reason, another run's, expired): the drain's own.
    nova.enable_service(nova.services["c1"])
    nova.add("c1-9", "c1")
    rep = drains.drain(nova, "c1", journal=journal, on_behalf_of="camp1", poll_interval=0.01,
                       hand_back=lambda: tags.drain_reason("camp1", "maintain: draining"))
    assert rep.ok and nova.requests.by_verb["disable_service"] == n0 + 2     # its claim, the hand-back


def test_a_drain_for_a_campaign_renews_the_campaigns_lease_in_its_words(tmp_path):
    nova = FakeNova()
    journal = Journal(tmp_path / "j.sqlite")
    plan = DrainPlan(kind="drain", source="c1", sources=("c1",))
    nova.disable_service(nova.services["c1"], tags.drain_reason("camp1", "maintain: x",
                                                                tags.lease_from_now(now=nova.cloud_now())))
    clock = Clock()
    lease = _Lease(nova, journal, "drain1", plan, print, clock, held_for="camp1",
                   hand_back=lambda: tags.drain_reason("camp1", "maintain: renewed",
                                                       tags.lease_from_now(now=nova.cloud_now())))
    lease.held.add("c1")
    clock.t = tags.RENEW_AFTER + 1
    assert lease() and lease.lost_to is None          # the campaign's tag is no other run's
    reason = nova.services["c1"].disabled_reason
    assert tags.reason_run_id(reason) == "camp1" and "renewed" in reason and tags.lease_of(reason)
