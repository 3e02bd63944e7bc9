#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: host_drain
short_description: Drain a compute host for maintenance, or put it back in service
version_added: 0.1.0
description:
  - With O(state=drained), disables the nova-compute service of O(host) with a tagged reason,
    plans a destination for every server on it (capacity, server groups, availability zone,
    disabled and down hosts excluded) and moves them, live for C(ACTIVE) and C(PAUSED)
    servers, cold and confirmed for C(SHUTOFF) ones, holding the concurrency caps. Servers
    that cannot be moved (C(ERROR), C(SHELVED_OFFLOADED), ...) are reported as skipped.
    This is the same code as C(novamove drain).
  - With O(state=undrained), re-enables the service only if a novamove drain disabled it and,
    with O(move_back=true), brings back the servers the drains moved away.
  - Idempotent. Draining an empty, drained host reports RV(ignore:changed=false).
  - In check mode the plan is computed and returned; nothing in the cloud changes.
  - Rerunning the task after an interrupted drain continues it.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
  - novamove.openstack.on_stall
options:
  host:
    description:
      - Compute host to drain or undrain, as the service host name or the hypervisor hostname.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - V(drained) empties the host; V(undrained) puts it back in service.
    type: str
    choices: [drained, undrained]
    default: drained
  targets:
    description:
      - Only move servers to these compute hosts (default any eligible host).
    type: list
    elements: str
    default: []
    aliases: [to]
  mode:
    description:
      - V(auto) moves C(ACTIVE)/C(PAUSED) servers live and C(SHUTOFF) ones cold.
    type: str
    choices: [auto, live, cold]
    default: auto
  order:
    description:
      - Order in which the moves start.
    type: str
    choices: [largest, smallest, name, id]
    default: largest
  reason:
    description:
      - Text added to the disabled reason of the host.
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
  allow_unmovable:
    description:
      - With O(state=drained), succeed even if servers that Nova cannot move (C(ERROR),
        C(SHELVED_OFFLOADED), ...) stay on the host; they are listed in RV(left).
      - By default the task fails when the host, read back after the drain, still holds a server.
    type: bool
    default: false
  move_back:
    description:
      - With O(state=undrained), also move back the servers that the drains of O(host) moved away.
    type: bool
    default: false
  timeout:
    description:
      - Give up on one move after this many seconds.
    type: int
    default: 1800
  journal:
    description:
      - Path of the novamove journal (default C(~/.local/state/novamove/journal.sqlite)).
      - Or a database URL that several controllers share (V(mysql+pymysql://USER@HOST/DB),
        V(postgresql+psycopg://USER@HOST/DB)). A URL with its password is refused here; set
        E(NOVAMOVE_JOURNAL) in the task environment instead (an AWX credential can inject it).
    type: path
attributes:
  check_mode:
    support: full
    description: Computes the plan; changes nothing.
  diff_mode:
    support: none
    description: The per-server results say what moved.
'''

EXAMPLES = r'''
- name: Empty compute1 before a kernel update, two moves at a time
  novamove.openstack.host_drain:
    cloud: mycloud
    host: compute1
    reason: kernel update
    max_parallel: 2

- name: Put compute1 back in service and bring its servers home
  novamove.openstack.host_drain:
    cloud: mycloud
    host: compute1
    state: undrained
    move_back: true
'''

RETURN = r'''
summary:
  description: One line saying what happened (what C(novamove drain) prints last).
  returned: always
  type: str
  sample: "drain compute1: 6 moved, 1 skipped"
service:
  description: What happened to the compute service.
  returned: always
  type: str
  sample: "compute1 disabled (novamove:ab12cd34ef56: drain: kernel update)"
run_id:
  description: Journal run of the drain (C(novamove history) shows it).
  returned: when not in check mode
  type: str
  sample: ab12cd34ef56
results:
  description:
    - One entry per server of the host (the rows of C(novamove drain -f json)).
    - Changed after 0.1.0, keys follow openstacksdk names; C(source) is now C(source_compute),
      C(dest) C(dest_compute), C(host) C(compute_host).
  returned: always
  type: list
  elements: dict
  contains:
    server_id:
      description: Server UUID.
      type: str
    server_name:
      description: Server name.
      type: str
    source_compute:
      description: Host the server was on.
      type: str
    dest_compute:
      description: Planned destination (null when skipped).
      type: str
    mode:
      description: V(live) or V(cold).
      type: str
    result:
      description: V(moved), V(skipped), V(failed), V(aborted), V(not-started), V(in-flight), V(gone) or V(planned) (check mode).
      type: str
    detail:
      description: Why, in one line.
      type: str
    migration_id:
      description: ID of the Nova migration record of the move.
      type: str
    compute_host:
      description: Where the server was last seen.
      type: str
    seconds:
      description: How long the move took.
      type: float
    stall:
      description:
        - When the live move stalled, what was done about it - V(force-completed),
          V(force-completed (post-copy)), V(aborted, retried elsewhere), V(aborted),
          V(fell back to cold) or V(left running); null without a stall.
      type: str
  sample:
    - server_id: 5f0c6f1e-2c0a-4a53-9a55-0d6d3a5b6f00
      server_name: web-1
      source_compute: compute1
      dest_compute: compute2
      mode: live
      result: moved
      detail: live migration completed
      migration_id: "42"
      compute_host: compute2
      seconds: 21.4
left:
  description:
    - Servers still on the host when the drain ended (read back from the cloud).
    - Changed after 0.1.0, C(name) is now C(server_name) and C(host) C(compute_host).
  returned: always
  type: list
  elements: dict
  sample:
    - server_id: 5f0c6f1e-2c0a-4a53-9a55-0d6d3a5b6f01
      server_name: broken-1
      compute_host: compute1
      status: ERROR
      reason: "status ERROR: Nova cannot migrate it"
      accepted: true
plan:
  description:
    - The plan, as C(novamove plan drain -f json) shows it (its C(checks), caps and options).
    - Its C(steps) are rows like RV(results) (C(step), C(server_id), C(server_name), C(status),
      C(mode), C(source_compute), C(dest_compute), C(vcpus), C(memory_mb), C(disk_gb), C(groups),
      C(skip_reason)), not the plan file's format.
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


class HostDrainModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        host=dict(type='str', required=True, aliases=['name']),
        state=dict(type='str', choices=['drained', 'undrained'], default='drained'),
        targets=dict(type='list', elements='str', default=[], aliases=['to']),
        mode=dict(type='str', choices=['auto', 'live', 'cold'], default='auto'),
        order=dict(type='str', choices=['largest', 'smallest', 'name', 'id'], default='largest'),
        reason=dict(type='str'),
        max_parallel=dict(type='int', default=4),
        max_per_host=dict(type='int', default=2),
        allow_unmovable=dict(type='bool', default=False),
        move_back=dict(type='bool', default=False),
        timeout=dict(type='int', default=1800),
        **ON_STALL_ARGUMENT_SPEC,
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        common = dict(journal_path=p['journal'], max_parallel=p['max_parallel'],
                      max_per_host=p['max_per_host'], step_timeout=p['timeout'], on_stall=p['on_stall'],
                      dry_run=self.ansible.check_mode, **dict(self.connection, **self.observing))
        if p['state'] == 'drained':
            report = novamove_api.drain(p['host'], targets=p['targets'], mode=p['mode'],
                                        order=p['order'], reason=p['reason'],
                                        allow_unmovable=p['allow_unmovable'], **common)
        else:
            report = novamove_api.undrain(p['host'], move_back=p['move_back'], **common)
        data = novamove_report.batch_document(report)
        result = dict(changed=bool(report.changed), summary=data['summary'], service=data['service'],
                      run_id=data['run_id'], results=data['results'], left=data.get('left') or [],
                      plan=data['plan'] or {})
        if self.ansible.check_mode:
            plan = report.plan
            result['changed'] = bool(plan and plan.moves) or 'would ' in (report.service or '')
        if not report.ok:
            self.ansible.fail_json(msg=data['summary'], exit_code=report.exit_code, **result)
        return result


def main():
    HostDrainModule()()


if __name__ == '__main__':
    main()
