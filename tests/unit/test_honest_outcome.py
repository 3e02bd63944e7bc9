"""Exit 0 / ok only when the cloud shows it: an outcome that is neither done nor failed (retry,
not started, in flight) is never success, in any verb's report (events.UNFINISHED)."""

from __future__ import annotations

import pytest

from novamove.engine import events
from novamove.engine.batch.report import BatchReport, StepResult
from novamove.engine.campaign.report import CampaignReport, HostResult
from novamove.engine.evacuate.report import EvacuateReport


def step(outcome):
    return StepResult("s1", "vm1", "c1", "c2", "live", outcome)


@pytest.mark.parametrize("outcome", [events.RETRY, events.NOT_STARTED, events.IN_FLIGHT])
def test_a_batch_with_an_unfinished_step_is_not_ok(outcome):
    for verb in ("drain", "undrain", "apply"):
        rep = BatchReport(verb, ["c1"], results=[step(events.MOVED), step(outcome)])
        assert not rep.ok and rep.exit_code != 0, (verb, outcome)


@pytest.mark.parametrize("outcome", [events.RETRY, events.NOT_STARTED, events.IN_FLIGHT])
def test_an_evacuation_or_unfence_with_an_unfinished_server_is_not_ok(outcome):
    for verb in ("evacuate", "unfence"):
        rep = EvacuateReport(verb, "c1", results=[step(events.EVACUATED), step(outcome)])
        assert not rep.ok and rep.exit_code != 0, (verb, outcome)


@pytest.mark.parametrize("outcome", [events.HOST_NOT_STARTED, events.HOST_INTERRUPTED, events.HOST_SKIPPED,
                                     events.HOST_REFUSED, events.HOST_FAILED])
def test_a_campaign_with_a_host_not_done_is_not_ok(outcome):
    rep = CampaignReport("r1", ["c1", "c2"], results=[HostResult("c1", events.HOST_DONE), HostResult("c2", outcome)])
    assert not rep.ok and rep.exit_code != 0, outcome


def test_done_is_ok():
    assert BatchReport("drain", ["c1"], results=[step(events.MOVED), step(events.GONE)]).ok
    assert EvacuateReport("evacuate", "c1", results=[step(events.EVACUATED)]).ok
    assert CampaignReport("r1", ["c1"], results=[HostResult("c1", events.HOST_DONE)]).ok
