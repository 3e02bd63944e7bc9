"""Evacuate a failed compute host, and bring it back (`unfence`): fenced, planned, capped, honest.

    report = evacuate(cloud, "compute3", journal=Journal(), fenced=True, max_parallel=3)

How an evacuation runs (every change is journaled *before* it is made):
1. preconditions, each refused with one line before anything is changed:
   - fencing is proven, never inferred: `fence_cmd` (e.g. an IPMI power-off) is run and must
     exit 0, or the operator asserts `fenced=True`, or forced_down is set already; "down per
     Nova" alone is refused (a crashed nova-compute or a partition: its guests may still run,
     and evacuating them makes two copies writing to the same disks); and in every case the
     compute must have stopped reporting for `quiet_period` (`prove_quiet`);
   - stop-loss: refused when more than `max_down_percent` of the computes would be down at once
     (a network or control-plane problem, not host failures);
   - microversions: 2.29 to name the destination (novamove never sends `force`), 2.95 for
     power="stopped";
2. plan with the drain planner (capacity from placement, the failed host excluded, server
   groups, availability zone, `targets`); servers tagged `novamove:maintenance=skip` are left
   alone, servers Nova cannot evacuate (PAUSED, a task in progress, ...) or cannot place are
   reported with the reason;
3. fence (the command, if any), force the service down (Nova then accepts evacuations at once,
   instead of after service_down_time) and disable it with novamove's tag
   (`novamove:<run>: evacuate: ...`), unless someone else disabled it already;
4. evacuate each server to its planned host under the caps (global, per destination), all
   followed with one shared listing of evacuation records per poll;
5. honest outcome: a server counts as evacuated when it is on its new host, its evacuation
   record is `done` (or `completed`, once the failed host cleaned up) and its status is what
   the power policy says; anything else is a failure with Nova's reason.

Power policy: "restore" (default) evacuates at microversion 2.94 at most, where Nova rebuilds a
server in the state it had: ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF (an ERROR server comes
back ACTIVE). "stopped" uses 2.95+, where Nova leaves every evacuated server stopped on the
destination (for guests that must not start until someone checked them); it is refused on older
clouds.

A killed run stays `running` in the journal. Rerunning the same evacuation (or `novamove recover`)
adopts its leftovers: an evacuation whose record exists is followed, never posted again; one that
never reached Nova (no record, the server untouched on the failed host) is planned again.

`unfence` after the repair: nova-compute must be reporting again (it destroys the local copies of
evacuated servers when it starts), no evacuation record from the host may still be `done` or in
progress (those are duplicates not cleaned up yet: refused with the list), then forced_down is
cleared and the service enabled only if novamove's evacuate tag is on it; `move_back` brings the
evacuated servers home (live for ACTIVE ones).
"""

from __future__ import annotations

# The family's public names, where `novamove.engine.evacuate` always had them.
from novamove.engine.evacuate.common import (EVACUABLE, EVACUATED, EVACUATE_VERB, EVAC_DONE, EVAC_FAILED,
                                             EVAC_NOT_CLEANED, EV_DISABLE, EV_ENABLE, EV_EVACUATE, EV_FENCE,
                                             EV_FORCE_DOWN, EV_FORCE_UP, EV_PLAN, FAILED, FENCE_TIMEOUT,
                                             HEARTBEAT_WAIT, MOVED, PLANNED, POLL_INTERVAL, POWER_POLICIES,
                                             QUIET_PERIOD, REASON_PATIENCE, SKEW_MARGIN, SKIPPED, SKIP_TAG,
                                             UNFENCE_VERB, UNPLACED, evacuate_reason, expected_status,
                                             is_our_evacuate_reason)  # noqa: F401
from novamove.engine.evacuate.report import EvacuateReport  # noqa: F401
from novamove.engine.evacuate.kind import EvacuationRunner  # noqa: F401
from novamove.engine.evacuate.plan import (make_plan, not_evacuable)  # noqa: F401
from novamove.engine.evacuate.fencing import (check_fencing, check_stop_loss, prove_quiet,
                                              quiet_period_default, run_fence)  # noqa: F401
from novamove.engine.evacuate.flow import (_since, evacuate, recover_run, unfinished_evacuations)  # noqa: F401
from novamove.engine.evacuate.unfence import (SCHEDULABLE_WAIT, evacuated_from, not_cleaned_up, unfence,
                                              wait_heartbeat, wait_schedulable)  # noqa: F401

__all__ = ["EvacuateReport", "EvacuationRunner", "evacuate", "unfence", "recover_run", "make_plan",
           "evacuate_reason", "is_our_evacuate_reason", "SKIP_TAG", "POWER_POLICIES"]
