"""`--strategy auto` and the compute API version: isolate only for the cloud's own limit.

A user's ceiling (--os-compute-api-version, OS_COMPUTE_API_VERSION, clouds.yaml
compute_api_version) below what a targeted move needs is refused in one line naming
`--strategy isolate`: isolate disables every other compute, which a version option must never
quietly cause (issue 21).
"""

from __future__ import annotations

import pytest

from novamove import errors
from novamove.cloud.adapter import Cloud
from novamove.engine.journal import Journal
from novamove.engine.single import mover

from fakenova import FakeNova

WRITES = {"disable_service", "enable_service", "migrate_server", "live_migrate_server"}


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def nova_with(status, *, cloud_max=(2, 96), cap=None):
    nova = FakeNova(hosts=("c1", "c2", "c3"), microversion=cloud_max)
    nova.cap = cap
    nova.add("vm1", "c1", status=status)
    return nova


@pytest.mark.parametrize("status,cloud_max", [("SHUTOFF", (2, 55)), ("ACTIVE", (2, 29))])
def test_auto_still_isolates_when_the_cloud_lacks_the_microversion(journal, status, cloud_max):
    nova = nova_with(status, cloud_max=cloud_max)
    plan = mover.prepare(nova, "vm1", "c3")
    assert plan.strategy == "isolate"
    result = mover.move(nova, journal, "vm1", "c3", check_mode=True)
    assert result.ok and result.strategy == "isolate", result.error


@pytest.mark.parametrize("status,cap,needed", [("SHUTOFF", (2, 55), "2.56"), ("ACTIVE", (2, 29), "2.30")])
def test_a_users_cap_that_would_need_isolate_is_refused_before_any_write(journal, status, cap, needed):
    nova = nova_with(status, cap=cap)
    with pytest.raises(errors.PreconditionFailed) as caught:
        mover.move(nova, journal, "vm1", "c3", poll_interval=0)
    message = str(caught.value)
    assert "\n" not in message and "--strategy isolate" in message and needed in message
    assert caught.value.exit_code == errors.EXIT_PRECONDITION
    assert not WRITES & set(nova.calls), nova.calls
    assert all(s.enabled for s in nova.services.values())
    assert journal.runs() == []


def test_a_users_cap_with_isolate_asked_for_isolates():
    nova = nova_with("SHUTOFF", cap=(2, 55))
    assert mover.prepare(nova, "vm1", "c3", strategy="isolate").strategy == "isolate"


def test_a_cap_the_move_does_not_need_changes_nothing():
    nova = nova_with("ACTIVE", cap=(2, 55))          # live needs only 2.30
    assert mover.prepare(nova, "vm1", "c3").strategy == "native"


class _Endpoint:
    def __init__(self, top):
        self.max_microversion = top


class _Compute:
    def __init__(self, top):
        self.top = top

    def get_endpoint_data(self):
        return _Endpoint(self.top)


class _Conn:
    def __init__(self, top):
        self.compute = _Compute(top)
        self.session = type("S", (), {"request": lambda *a, **k: None})()


@pytest.mark.parametrize("top,cap,capped", [("2.96", "2.55", True), ("2.53", "2.55", False),
                                            ("2.53", None, False), ("2.96", None, False),
                                            ("2.96", "2.56", False)])
def test_the_adapter_tells_the_users_cap_from_the_clouds_limit(top, cap, capped):
    cloud = Cloud(_Conn(top), max_microversion=cap)
    assert cloud.capped("2.56") is capped
