"""What a campaign asks of the cloud per server it moves (issue 24): the bench's campaign
(bench/campaign_speed.py: 4 hosts x 6 servers, a hook, K = 1 and 2) on the fake Nova, its
requests counted as the adapter would send them; and the view's shared listings never hide a
write, a new stage or a gate's poll."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from novamove.cloud.protocol import CloudAPI
from novamove.engine import campaign as camp
from novamove.engine.batch import drain as drainmod
from novamove.engine.campaign import Options, run_campaign
from novamove.engine.campaign import view as viewmod
from novamove.engine.campaign.view import CloudView
from novamove.engine.journal import Journal

from fakenova import FakeNova

HOSTS = ("c1", "c2", "c3", "c4")
PER_HOST = 6


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(camp.common, "POLL", 0.0)
    monkeypatch.setattr(drainmod, "REPLAN_PAUSE", 0.0)


def bench_campaign(tmp_path, k: int) -> tuple[FakeNova, int]:
    f = FakeNova(hosts=HOSTS)
    for h in HOSTS:
        for j in range(PER_HOST):
            f.add(f"{h}-{j}", h)
    rep = run_campaign(f, Journal(tmp_path / f"k{k}.sqlite"), list(HOSTS),
                       options=Options(max_hosts=k, poll_interval=0.01, gate="heartbeat", hook="true"))
    assert rep.ok, rep.summary
    moved = sum(r.moved for r in rep.results)
    assert moved >= len(HOSTS) * PER_HOST
    return f, moved


@pytest.mark.parametrize("k", [1, 2])
def test_the_bench_campaign_costs_at_most_8_requests_per_moved_server(tmp_path, k):
    f, moved = bench_campaign(tmp_path, k)
    per_moved = f.requests.count / moved
    # On this fake: 9.53 (K=1) and 8.53 (K=2) before issue 24; 7.40 and 6.92 after its first
    # part; 6.53 and 6.13 after its second (the minicloud's figures: docs/benchmarks.md).
    assert per_moved <= 8.0, (round(per_moved, 2), f.requests.by_verb)
    # Each move: its request and one read of the server where it landed; the rest is per
    # stage (plan, take-out, drain, gate, return) and the shared migration listings.
    by = f.requests.by_verb
    assert by["get_server"] <= moved
    per_stage = by["list_compute_services"] / len(HOSTS)
    assert per_stage <= 7, by


def test_every_protocol_verb_is_a_read_or_a_write_of_the_view():
    verbs = {n for n, m in vars(CloudAPI).items() if not n.startswith("_") and inspect.isfunction(m)}
    assert verbs - viewmod.READS - viewmod.WRITES == set()
    assert viewmod.READS & viewmod.WRITES == set()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _view_of_one_server() -> tuple[FakeNova, Clock, CloudView]:
    """A campaign's view of the fake cloud holding one server, c1-0 on c1, on a hand clock."""
    f = FakeNova(hosts=HOSTS)
    f.add("c1-0", "c1")
    clock = Clock()
    return f, clock, CloudView(f, f.compute_hosts(with_resources=True), clock)

def test_a_listing_is_shared_only_until_a_write_a_stage_or_its_time_is_over():
    f, clock, view = _view_of_one_server()
    n0 = f.requests.by_verb.get("list_compute_services", 0)

    def listings() -> int:
        return f.requests.by_verb.get("list_compute_services", 0) - n0
    view.list_compute_services()
    view.list_compute_services()
    assert listings() == 1                       # one breath, one request
    svc = next(s for s in view.list_compute_services() if s.host == "c2")
    view.disable_service(svc, "someone's reason")
    after = {s.host: s for s in view.list_compute_services()}
    assert listings() == 2 and not after["c2"].enabled     # a write: read back from the cloud
    f.services["c3"] = dataclasses.replace(f.services["c3"], status="disabled")    # someone else
    view.begin_stage()
    assert not {s.host: s for s in view.list_compute_services()}["c3"].enabled   # a new stage reads
    assert listings() == 3
    view.list_compute_services()
    clock.t += viewmod.READ_FRESH + 0.1
    view.list_compute_services()
    assert listings() == 4                       # older than READ_FRESH: read again
    view.services_now()
    assert listings() == 5                       # a gate's poll: always read
    # Any other write drops the listings too (stop_server: the view has no method of its own).
    view.list_servers_on_host("c1")
    view.list_servers_on_host("c1")
    assert f.requests.by_verb["list_servers_on_host"] == 1
    view.stop_server("c1-0")
    assert view.list_servers_on_host("c1")[0].status == "SHUTOFF"
    assert f.requests.by_verb["list_servers_on_host"] == 2


def test_a_move_leaves_the_service_listing_shared_but_not_the_servers():
    # A move changes no service: a drain's pre-conditions share the listing the gate or the
    # lease renewal read a moment ago (never older than READ_FRESH); the servers are read again.
    f, clock, view = _view_of_one_server()
    n0 = f.requests.by_verb.get("list_compute_services", 0)
    view.list_compute_services()
    view.list_servers_on_host("c1")
    view.live_migrate_server("c1-0", "c2")
    view.list_compute_services()
    assert f.requests.by_verb["list_compute_services"] - n0 == 1
    view.list_servers_on_host("c1")
    assert f.requests.by_verb["list_servers_on_host"] == 2
    view.abort_migration("c1-0", "1")            # any other server's write (no method of its own)
    view.list_compute_services()
    assert f.requests.by_verb["list_compute_services"] - n0 == 1
    clock.t += viewmod.READ_FRESH + 0.1
    view.list_compute_services()
    assert f.requests.by_verb["list_compute_services"] - n0 == 2
