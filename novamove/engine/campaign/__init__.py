"""Rolling maintenance campaigns: `novamove maintain` empties, services and returns many compute
hosts in turn, at most K out of service at once.

    report = run_campaign(cloud, journal, ["c1", "c2", "c3"], hook="ssh {host} reboot", max_hosts=2)

Per host (each change journaled before it is made, under the campaign's run id):
  disable (tagged `novamove:<run>: drain: maintain ...`, so undrain/recover know it)
  -> drain (novamove.engine.batch.drain.drain: honest, the host's stage fails with what is left)
  -> power off the servers tagged `novamove:maintenance=stop`
  -> hook (NOVAMOVE_HOST, NOVAMOVE_HYPERVISOR, NOVAMOVE_RUN_ID; own timeout; log file per host)
  -> gate (nova-compute up, not forced down, reporting after the hook ended; then --check)
  -> start the stopped servers -> enable (only if our tag is still there) -> move back (asked).

Scheduling: hosts that take slots free at the same moment are drained together in one drain
(runner.py `_joiners`: each judged with the others out, none sharing a server group), so the
drain caps, global / per source / per destination, hold across every host in flight; drains
do not overlap, while hooks and gates of up to K hosts overlap with the next drains. Before a host is taken out, its servers are planned against the cloud as it is now
(the other hosts out are disabled there): N+K. If they do not fit, the campaign waits for a
host in flight to come back, or refuses the host with the numbers when none is in flight.
Server groups: at most `group_budget` members of one group moving or powered off at once.
"""

from __future__ import annotations

# The family's public names, where `novamove.engine.campaign` always had them.
from novamove.engine.campaign.common import (  # noqa: F401
    CHECK_TIMEOUT, DONE, EV_BACK, EV_CAMPAIGN, EV_CHECK, EV_DISABLE, EV_DRAIN, EV_ENABLE, EV_GATE, EV_HOOK, EV_HOST,
    EV_REASON, EV_START, EV_STOP, FAILED, GATE_TIMEOUT, HOOK_TIMEOUT, INTERRUPTED, NOT_STARTED, POWER_TIMEOUT,
    REFUSED, SKIPPED, VERB, _parse, reason_text)
from novamove.engine.campaign.report import CampaignReport, HostResult, Options  # noqa: F401
from novamove.engine.campaign.runner import Campaign  # noqa: F401
from novamove.engine.campaign.status import campaign_runs, read_campaign, status  # noqa: F401
from novamove.engine.campaign.verb import gather, plan, run_campaign  # noqa: F401

__all__ = ["Campaign", "CampaignReport", "HostResult", "Options", "VERB", "plan", "read_campaign",
           "reason_text", "run_campaign", "status"]
