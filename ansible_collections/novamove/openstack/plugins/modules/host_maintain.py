#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: host_maintain
short_description: Rolling maintenance of compute hosts in one task (novamove maintain)
version_added: 0.2.0
description:
  - Runs a whole maintenance campaign over O(hosts) (or O(zone), O(aggregate), O(all)) the way
    C(novamove maintain) does. Per host, it disables the service with a tagged reason, drains
    the host (which must end empty), runs O(hook) on the controller, waits until the host's
    nova-compute reports up after the hook (then runs O(check)), re-enables the service (and
    with O(move_back) brings the servers back). At most O(max_hosts) hosts are out of service
    at once, the N+K capacity is checked before each host, and server groups' disruption
    budget is held.
  - Servers tagged C(novamove:maintenance=live|cold|stop|skip) are handled as the tag says.
  - In check mode the campaign's plan is returned (stages, moves, capacity left, estimate).
  - Rerunning the task after an interruption continues the same campaign (O(resume) names one).
  - For a play that runs its own tasks on each compute, see C(playbooks/rolling_maintenance.yml)
    (host_drain, compute_service_wait) instead.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
  - novamove.openstack.on_stall
options:
  hosts:
    description: Compute hosts (service host names or hypervisor hostnames).
    type: list
    elements: str
    default: []
  zone:
    description: Every compute host of this availability zone.
    type: str
  aggregate:
    description: Every compute host of this host aggregate.
    type: str
  all:
    description: Every compute host of the cloud.
    type: bool
    default: false
  hook:
    description:
      - Command run on the controller for each emptied host, with C(NOVAMOVE_HOST),
        C(NOVAMOVE_HYPERVISOR) and C(NOVAMOVE_RUN_ID) set. Make it idempotent.
      - Not logged (it may carry a BMC or SSH secret); Ansible then masks its text wherever it
        appears in the task's output, so avoid a hook that is also a common word.
    type: str
  check:
    description:
      - Command run after the gate; the host returns to service only if it exits 0.
      - Not logged, as O(hook).
    type: str
  gate:
    description:
      - When a host is back after its hook. V(restart) (the default with a hook) passes only once
        the host booted, or its nova-compute was seen down and reporting again, after the hook
        began; V(heartbeat) (the default without a hook, for hooks that restart nothing) passes
        on a report newer than the hook's end. Nova's clock either way.
    type: str
    choices: [restart, heartbeat]
  max_hosts:
    description: At most this many hosts out of service at once.
    type: int
    default: 1
  max_failed_hosts:
    description: Start no new host after this many failed (a failed host stays disabled, its reason says why).
    type: int
    default: 1
  group_budget:
    description: At most this many members of one server group moving or powered off at once.
    type: int
    default: 1
  order:
    description: Host order after the empty ones.
    type: str
    choices: [fewest, name, given]
    default: fewest
  move_back:
    description: Bring each host's servers back once it is in service again.
    type: bool
    default: false
  allow_skip:
    description: Service hosts that hold servers tagged C(novamove:maintenance=skip) (those stay untouched).
    type: bool
    default: false
  allow_unmovable:
    description: Service hosts that hold servers Nova cannot move.
    type: bool
    default: false
  allow_incomplete:
    description: Do not fail when some hosts were not serviced (skip-tagged servers, disabled by someone else).
    type: bool
    default: false
  hook_timeout:
    description: Seconds a hook may run.
    type: int
    default: 3600
  gate_timeout:
    description: Seconds the gate may take to pass after the hook.
    type: int
    default: 900
  max_parallel:
    description: Drain cap, campaign-wide (hosts out together share one drain).
    type: int
    default: 4
  max_per_host:
    description: Drain cap per source and per destination host.
    type: int
    default: 2
  timeout:
    description: Give up on one move after this many seconds.
    type: int
    default: 1800
  reason:
    description: Text added to the hosts' disabled reason.
    type: str
  resume:
    description: Continue this campaign run id.
    type: str
  rerun_hook:
    description: On resume, run again a hook the stopped run did not see end.
    type: bool
    default: false
  journal:
    description:
      - Path of the novamove journal.
      - Or a database URL that several controllers share (V(mysql+pymysql://USER@HOST/DB),
        V(postgresql+psycopg://USER@HOST/DB)). A URL with its password is refused here; set
        E(NOVAMOVE_JOURNAL) in the task environment instead (an AWX credential can inject it).
    type: path
attributes:
  check_mode:
    support: full
    description: Returns the plan; changes nothing.
  diff_mode:
    support: none
    description: The per-host results say what happened.
'''

EXAMPLES = r'''
- name: Patch and reboot the computes of rack 12, two at a time
  novamove.openstack.host_maintain:
    cloud: mycloud
    aggregate: rack12
    max_hosts: 2
    hook: "ssh $NOVAMOVE_HOST 'dnf -y update && systemctl reboot'"
'''

RETURN = r'''
summary:
  description: One line (what C(novamove maintain) prints last).
  returned: always
  type: str
  sample: "maintain: 3/3 host(s) done, 12 server(s) moved"
run_id:
  description: Journal run of the campaign (C(novamove campaign status RUN)).
  returned: when not in check mode
  type: str
results:
  description: One entry per host (outcome, moved, stopped, hook_exit, gate, seconds, detail, log).
  returned: always
  type: list
  elements: dict
plan:
  description: The campaign plan (stages, moves, capacity left, estimate).
  returned: always
  type: dict
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    ON_STALL_ARGUMENT_SPEC,
    NovamoveModule,
    novamove_api,
)


class HostMaintainModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        hosts=dict(type='list', elements='str', default=[]),
        zone=dict(type='str'),
        aggregate=dict(type='str'),
        all=dict(type='bool', default=False),
        hook=dict(type='str', no_log=True),
        check=dict(type='str', no_log=True),
        gate=dict(type='str', choices=['restart', 'heartbeat']),
        max_hosts=dict(type='int', default=1),
        max_failed_hosts=dict(type='int', default=1),
        group_budget=dict(type='int', default=1),
        order=dict(type='str', choices=['fewest', 'name', 'given'], default='fewest'),
        move_back=dict(type='bool', default=False),
        allow_skip=dict(type='bool', default=False),
        allow_unmovable=dict(type='bool', default=False),
        allow_incomplete=dict(type='bool', default=False),
        hook_timeout=dict(type='int', default=3600),
        gate_timeout=dict(type='int', default=900),
        max_parallel=dict(type='int', default=4),
        max_per_host=dict(type='int', default=2),
        timeout=dict(type='int', default=1800),
        **ON_STALL_ARGUMENT_SPEC,
        reason=dict(type='str'),
        resume=dict(type='str'),
        rerun_hook=dict(type='bool', default=False),
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True,
                         mutually_exclusive=[('resume', 'hosts'), ('resume', 'zone'), ('resume', 'aggregate'),
                                             ('resume', 'all')])

    def run(self):
        p = self.params
        report = novamove_api.maintain(
            p['hosts'], zone=p['zone'], aggregate=p['aggregate'], all_hosts=p['all'], hook=p['hook'],
            check=p['check'], max_hosts=p['max_hosts'], max_failed_hosts=p['max_failed_hosts'],
            group_budget=p['group_budget'], order=p['order'], move_back=p['move_back'],
            allow_skip=p['allow_skip'], allow_unmovable=p['allow_unmovable'], hook_timeout=p['hook_timeout'],
            gate=p['gate'], gate_timeout=p['gate_timeout'], max_parallel=p['max_parallel'], max_per_host=p['max_per_host'],
            step_timeout=p['timeout'], on_stall=p['on_stall'], reason=p['reason'], resume=p['resume'], rerun_hook=p['rerun_hook'],
            dry_run=self.ansible.check_mode, journal_path=p['journal'], **dict(self.connection, **self.observing))
        data = report.to_dict()
        result = dict(changed=bool(data['changed']), summary=data['summary'], run_id=data['run_id'],
                      results=data['results'], plan=data['plan'] or {}, exit_code=data['exit_code'])
        if self.ansible.check_mode:
            result['changed'] = bool(data['plan'] and data['plan']['hosts'])
        incomplete_only = data['exit_code'] == 8 and p['allow_incomplete']
        if not data['ok'] and not incomplete_only:
            self.ansible.fail_json(msg=data['summary'], **result)
        return result


def main():
    HostMaintainModule()()


if __name__ == '__main__':
    main()
