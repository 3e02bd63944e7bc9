"""A campaign's API requests grow with its work, not with the hosts in the cloud (issue 24):
the campaign plans on its view of the cloud (engine/campaign/view.py), and that view still
sees what someone else changed before the stage that depends on it."""

from __future__ import annotations

import pytest

from novamove.engine import campaign as camp
from novamove.engine.batch import drain as drainmod
from novamove.engine.campaign import view as campview
from novamove.engine.campaign import Options, run_campaign
from novamove.engine.journal import Journal
from novamove.engine.poll import Backoff, poll_until
from novamove.model import Flavor, Resources

from fakenova import FakeNova

BIG = Flavor("big", vcpus=2, ram=2048, disk=10)


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(camp.common, "POLL", 0.0)
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.0)
    # A listing is shared for READ_FRESH seconds: with a wall-clock limit the counts below
    # depended on the machine's speed (13 against 12 listings once, under load). Shared until a
    # write or a stage only, the counts are the campaign's own.
    monkeypatch.setattr(campview, "READ_FRESH", 3600.0)


def opts(**kw):
    return Options(**{"max_hosts": 1, "poll_interval": 0.01, "gate": "heartbeat", **kw})


def campaign_on(cloud_hosts: int, tmp_path, campaign: int = 4, per_host: int = 2):
    names = [f"h{i:03d}" for i in range(cloud_hosts)]
    f = FakeNova(hosts=names)
    for h in names[:campaign]:
        for j in range(per_host):
            f.add(f"{h}-{j}", h)
    rep = run_campaign(f, Journal(tmp_path / f"j{cloud_hosts}.sqlite"), names[:campaign], options=opts())
    assert rep.ok, rep.summary
    return f


def test_stage_requests_do_not_grow_with_the_hosts_in_the_cloud(tmp_path):
    small, large = campaign_on(12, tmp_path), campaign_on(96, tmp_path)
    # One whole read of the cloud (at the start: what the campaign's N+K plan is made from),
    # never one per stage...
    for f, n in ((small, 12), (large, 96)):
        assert f.requests.by_verb["compute_hosts"] == 1 + 1 + 3 * n, f.requests.by_verb
    # ...and the stages cost the same whatever the size of the cloud.
    stages = {verb: n for verb, n in small.requests.by_verb.items() if verb != "compute_hosts"}
    assert stages == {verb: n for verb, n in large.requests.by_verb.items() if verb != "compute_hosts"}
    # Placement is read for the hosts the stages touch (source and destinations), not all, and
    # only their usage (one request a host; the capacities are the whole read's).
    assert large.requests.by_verb["host_usage"] <= 4 * (1 + 2)
    assert "host_resources" not in large.requests.by_verb, large.requests.by_verb


def test_a_server_booted_onto_a_planned_destination_between_stages_is_planned_around(tmp_path):
    # c1 and c2 serviced; each holds two 2-vCPU servers; the hosts take 4 vCPUs. After c1's
    # stage, c1 (empty: the view's first choice for c2's servers) is filled by someone else.
    f = FakeNova(hosts=("c1", "c2", "c3", "c4"), capacity=Resources(4, 8192, 100))
    for h in ("c1", "c2"):
        for j in range(2):
            f.add(f"{h}-{j}", h, flavor=BIG)
    booted = []

    def say(line: str) -> None:
        if line.startswith("c1: done") and not booted:
            for j in range(2):
                f.add(f"other-{j}", "c1", flavor=BIG)
            booted.append(line)
    rep = run_campaign(f, Journal(tmp_path / "j.sqlite"), ["c1", "c2"], options=opts(), progress=say)
    assert booted, "the test's boot did not happen"
    assert rep.ok, rep.summary
    used: dict[str, int] = {}
    for s in f.servers.values():
        used[s.host] = used.get(s.host, 0) + s.flavor.vcpus
    assert max(used.values()) <= 4, used               # no host overfilled
    assert len(f.migrations) == 4                       # no move refused and tried again
    assert all(m["status"] in ("completed", "confirmed") for m in f.migrations)


def test_a_stage_refused_on_the_view_is_judged_again_on_a_whole_read(tmp_path):
    # After c1's stage (its servers went to c3 and c4, full then), someone fills c1 and
    # empties c3: the view (c3 full) says c2 cannot go; the cloud, read whole, says it can.
    f = FakeNova(hosts=("c1", "c2", "c3", "c4"), capacity=Resources(4, 8192, 100))
    for h in ("c1", "c2"):
        for j in range(2):
            f.add(f"{h}-{j}", h, flavor=BIG)
    f.add("c3-0", "c3", flavor=BIG)
    f.add("c4-0", "c4", flavor=BIG)
    changed = []

    def say(line: str) -> None:
        if line.startswith("c1: done") and not changed:
            for sid in [s.id for s in f.servers.values() if s.host == "c3"]:
                del f.servers[sid]
            for j in range(2):
                f.add(f"other-{j}", "c1", flavor=BIG)
            changed.append(line)
    rep = run_campaign(f, Journal(tmp_path / "j.sqlite"), ["c1", "c2"], options=opts(), progress=say)
    assert changed and rep.ok, rep.summary
    assert {s.host for s in f.servers.values() if s.id.startswith("c2-")} == {"c3"}


def test_backoff_grows_to_its_ceiling_and_resets():
    b = Backoff(1.0, 5.0)
    assert [b.next() for _ in range(6)] == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0]
    b.reset()
    assert b.next() == 1.0


def test_poll_until_backs_off_between_probes():
    slept: list[float] = []
    t = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s
    value, done = poll_until(lambda: t[0], lambda v: v >= 10, timeout=60, interval=1.0, max_interval=4.0,
                             clock=lambda: t[0], sleep=sleep)
    assert done and slept == [1.0, 1.5, 2.25, 3.375, 4.0]
    slept.clear()
    t[0] = 0.0
    poll_until(lambda: t[0], lambda v: v >= 3, timeout=60, interval=1.0, clock=lambda: t[0], sleep=sleep)
    assert slept == [1.0, 1.0, 1.0]          # no max_interval: a steady interval, as before
