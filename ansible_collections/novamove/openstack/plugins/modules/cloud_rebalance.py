#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cloud_rebalance
short_description: Spread load over compute hosts, or pack it to empty hosts, from Placement alone
version_added: 0.2.0
description:
  - Plans moves from Placement's inventories (with reserved and allocation ratios), usages,
    server groups, availability zones and per-server intent tags, then runs them under the
    concurrency caps, each step checked again as it starts, journaled. This is the same code as
    C(novamove rebalance).
  - With O(goal=spread), lowers the most loaded hosts (the largest of their vCPU, RAM and disk
    shares) toward the others, by the fewest moves; with O(goal=pack), empties as many hosts as
    possible and lists them in RV(emptied).
  - The task succeeds only when every move landed and the hosts, read back from Placement, are
    within the plan's figures (RV(read_back) against RV(predicted)).
  - In check mode the plan and its before/after figures are returned; nothing in the cloud changes.
  - A second run after a successful one plans nothing (O(min_gain)) and reports RV(ignore:changed=false).
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
  - novamove.openstack.on_stall
options:
  goal:
    description:
      - V(spread) or V(pack).
    type: str
    choices: [spread, pack]
    default: spread
  hosts:
    description:
      - The compute hosts in scope (default the O(zone)'s, the O(aggregate)'s, or every compute).
    type: list
    elements: str
    default: []
  zone:
    description:
      - The hosts of this availability zone (hosts named in O(hosts) must be in it).
    type: str
  aggregate:
    description:
      - The hosts of this host aggregate (not with O(hosts) or O(zone)).
    type: str
  max_moves:
    description:
      - At most this many moves (at least 1; default no limit).
    type: int
  min_gain:
    description:
      - With O(goal=spread), refuse moves that lower the most loaded host by fewer percentage points.
    type: float
    default: 2.0
  disable_emptied:
    description:
      - With O(goal=pack), leave each emptied host disabled with a tagged reason
        (C(novamove undrain HOST) or M(novamove.openstack.host_drain) with V(undrained) gives it back).
        A host someone else disabled keeps their reason.
    type: bool
    default: false
  reason:
    description:
      - Text added to the emptied hosts' disabled reason.
    type: str
  max_parallel:
    description:
      - At most this many moves in flight in all.
    type: int
    default: 4
  max_per_host:
    description:
      - At most this many moves in flight from one source host and into one destination host.
    type: int
    default: 2
  timeout:
    description:
      - Give up on one move after this many seconds.
    type: int
    default: 1800
  journal:
    description:
      - Path of the novamove journal (default C(~/.local/state/novamove/journal.sqlite)).
    type: path
attributes:
  check_mode:
    support: full
    description: Computes the plan and its figures; changes nothing.
  diff_mode:
    support: none
    description: The per-server results say what moved.
'''

EXAMPLES = r'''
- name: See what spreading zone az1 would do
  novamove.openstack.cloud_rebalance:
    cloud: mycloud
    zone: az1
  check_mode: true

- name: Empty as many hosts of rack1 as possible and leave them disabled for power-down
  novamove.openstack.cloud_rebalance:
    cloud: mycloud
    goal: pack
    aggregate: rack1
    disable_emptied: true
    reason: power saving
'''

RETURN = r'''
summary:
  description: One line saying what happened (what C(novamove rebalance) prints last).
  returned: always
  type: str
  sample: "rebalance: spread over 3 hosts: 3 moves, max usage 19.35% -> 9.68% ...; 3 moved"
run_id:
  description: Journal run of the rebalance (C(novamove history) shows it).
  returned: when not in check mode
  type: str
  sample: ab12cd34ef56
before:
  description: The hosts in scope before (C(max_usage) percent, C(spread) points, C(hosts_empty), C(servers)).
  returned: always
  type: dict
  sample: {"max_usage": 19.35, "spread": 9.12, "hosts_empty": 2, "servers": 5}
predicted:
  description: The same figures as the plan predicts them.
  returned: always
  type: dict
  sample: {"max_usage": 9.68, "spread": 1.52, "hosts_empty": 0, "servers": 5}
read_back:
  description: The same figures read back from Placement after the moves (null in check mode).
  returned: always
  type: dict
  sample: {"max_usage": 9.68, "spread": 1.52, "hosts_empty": 0, "servers": 5}
emptied:
  description: With O(goal=pack), the hosts the plan empties.
  returned: always
  type: list
  elements: str
  sample: [compute3]
disabled:
  description: The emptied hosts left disabled (O(disable_emptied)).
  returned: always
  type: list
  elements: str
  sample: []
ram_bytes_to_copy:
  description: RAM the plan's live moves copy, in bytes.
  returned: always
  type: int
  sample: 1610612736
results:
  description: One entry per move (the rows of C(novamove rebalance -f json)); planned ones in check mode.
  returned: always
  type: list
  elements: dict
  sample: []
plan:
  description: The plan, as C(novamove rebalance --dry-run -f json) shows it.
  returned: always
  type: dict
  sample: {}
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    ON_STALL_ARGUMENT_SPEC,
    NovamoveModule,
    novamove_api,
    novamove_report,
)


class CloudRebalanceModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        goal=dict(type='str', choices=['spread', 'pack'], default='spread'),
        hosts=dict(type='list', elements='str', default=[]),
        zone=dict(type='str'),
        aggregate=dict(type='str'),
        max_moves=dict(type='int'),
        min_gain=dict(type='float', default=2.0),
        disable_emptied=dict(type='bool', default=False),
        reason=dict(type='str'),
        max_parallel=dict(type='int', default=4),
        max_per_host=dict(type='int', default=2),
        timeout=dict(type='int', default=1800),
        **ON_STALL_ARGUMENT_SPEC,
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        options = novamove_api.rebalance_options(
            goal=p['goal'], hosts=tuple(p['hosts']), zone=p['zone'], aggregate=p['aggregate'],
            max_moves=p['max_moves'], min_gain=p['min_gain'], disable_emptied=p['disable_emptied'],
            reason=p['reason'], max_parallel=p['max_parallel'], max_per_host=p['max_per_host'])
        report = novamove_api.rebalance(options, journal_path=p['journal'], step_timeout=p['timeout'], on_stall=p['on_stall'],
                                        dry_run=self.ansible.check_mode, **dict(self.connection, **self.observing))
        data = novamove_report.batch_document(report)
        result = dict(changed=bool(report.changed), summary=data['summary'], run_id=data['run_id'],
                      before=data['before'], predicted=data['predicted'], read_back=data['read_back'],
                      emptied=data['emptied'], disabled=data['disabled'],
                      ram_bytes_to_copy=data['ram_bytes_to_copy'], results=data['results'],
                      plan=data['plan'] or {})
        if self.ansible.check_mode:
            result['changed'] = bool(report.plan.moves)
        if not report.ok:
            self.ansible.fail_json(msg=data['summary'], exit_code=report.exit_code, **result)
        return result


def main():
    CloudRebalanceModule()()


if __name__ == '__main__':
    main()
