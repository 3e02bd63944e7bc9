"""The campaign gate's pure parts: reading `uptime`, and the verdicts (engine/campaign/gate.py)."""

from datetime import datetime, timedelta

import pytest

from novamove.engine.campaign import gate as g

T0 = datetime(2026, 12, 2, 12, 0, 0)


@pytest.mark.parametrize("text, bounds", [
    (" 10:01:02 up 2 days,  3:04,  1 user,  load average: 0.1, 0.2, 0.3\n", (2 * 86400 + 3 * 3600 + 4 * 60, None)),
    (" 10:01:02 up 5 min,  0 users,  load average: 0.00, 0.00, 0.00\n", (300, 360)),
    (" 10:01:02 up 0 min,  2 users,  load average: 0.00, 0.00, 0.00\n", (0, 60)),
    (" 10:01:02 up  1:00,  1 user,  load average: 0.00, 0.00, 0.00\n", (3600, 3660)),
    (" 10:01:02 up 1 day, 12 min,  1 user,  load average: 0.00, 0.00, 0.00\n", (86400 + 720, 86400 + 780)),
    ("", None), (None, None), ("garbage", None),
])
def test_uptime_bounds(text, bounds):
    got = g.uptime_bounds(text)
    if bounds is None:
        assert got is None
    elif bounds[1] is None:
        assert got == (float(bounds[0]), float(bounds[0] + 60))
    else:
        assert got == (float(bounds[0]), float(bounds[1]))


def state(kind=g.RESTART):
    return g.GateState(kind, hook_started=T0, hook_ended=T0 + timedelta(seconds=2))


def test_a_heartbeat_from_the_old_process_is_not_a_restart():
    s = state()
    facts = g.GateFacts(True, T0 + timedelta(seconds=10), T0 + timedelta(seconds=12),
                        " 12:00:12 up 93 days, 18:25,  1 user,  load average: 0.20, 0.12, 0.18\n")
    assert g.judge(s, facts)[0] is False
    assert g.judge(state(g.HEARTBEAT), facts)[0] is True


def test_a_boot_after_the_hook_began_passes_once_its_minutes_prove_it():
    s = state()
    # Booted at T0 + 20 s; at T0 + 70 s `uptime` says "0 min": the boot could be as early as T0 + 10 s.
    now = T0 + timedelta(seconds=70)
    passed, why = g.judge(s, g.GateFacts(True, now, now, " up 0 min,  0 users,"))
    assert passed and why.startswith("restarted: booted after")
    # At T0 + 50 s, "0 min" allows a boot at T0 - 10 s: not proven yet.
    early = T0 + timedelta(seconds=50)
    assert g.judge(s, g.GateFacts(True, early, early, " up 0 min,  0 users,"))[0] is False


def test_without_uptime_a_restart_is_the_compute_seen_down_then_reporting():
    s = state()
    assert g.judge(s, g.GateFacts(True, T0 + timedelta(seconds=5), T0 + timedelta(seconds=5)))[0] is False
    assert g.judge(s, g.GateFacts(False, T0 + timedelta(seconds=5), T0 + timedelta(seconds=30)))[0] is False
    assert s.seen_down_at == T0 + timedelta(seconds=30)
    # A report from before it was seen down is the old process's.
    assert g.judge(s, g.GateFacts(True, T0 + timedelta(seconds=29), T0 + timedelta(seconds=40)))[0] is False
    assert g.judge(s, g.GateFacts(True, T0 + timedelta(seconds=41), T0 + timedelta(seconds=42)))[0] is True


def test_no_report_since_the_hook_ended_never_passes():
    for kind in g.GATES:
        assert g.judge(state(kind), g.GateFacts(True, T0, T0 + timedelta(seconds=5), " up 0 min,  0 users,"))[0] is False


def test_an_uptime_that_allows_a_restart_is_read_again_when_it_can_prove_it():
    s = state()
    # Booted at T0 + 20 s. At T0 + 30 s "0 min" allows that boot but proves nothing before
    # T0 + 60 s (the earliest boot it allows, now - 60 s, is before the hook began until then).
    now = T0 + timedelta(seconds=30)
    facts = g.GateFacts(True, now, now, " up 0 min,  0 users,")
    assert g.judge(s, facts)[0] is False
    at = g.next_read_at(s, facts)
    assert at == T0 + timedelta(seconds=60 + g.UPTIME_MARGIN)
    # The read then (uptime 41.5 s: still "0 min") proves it.
    assert g.judge(s, g.GateFacts(True, at, at, " up 0 min,  0 users,"))[0] is True
    # An uptime from before the hook (no restart yet), no uptime, a heartbeat gate: as usual.
    assert g.next_read_at(s, g.GateFacts(True, now, now, " up 5 min,  0 users,")) is None
    assert g.next_read_at(s, g.GateFacts(True, now, now)) is None
    assert g.next_read_at(state(g.HEARTBEAT), facts) is None
