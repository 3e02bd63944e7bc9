#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: host_evacuate
short_description: Evacuate the servers of a failed compute host, or put the repaired host back
version_added: 0.1.0
description:
  - With O(state=evacuated), rebuilds every server of the failed compute O(host) on other
    hosts (Nova's evacuate), each to a planned destination (capacity, server groups,
    availability zone, disabled and down hosts excluded), holding the concurrency caps.
    This is the same code as C(novamove evacuate).
  - The host must be fenced, by O(fence_cmd) (which must exit 0), by the operator's word
    (O(fenced=true)), or by a forced_down already set; "down per Nova" alone is not fenced (its
    guests may still run). In every case its nova-compute must also have stopped reporting for
    the quiet period (25 s, or E(NOVAMOVE_QUIET_PERIOD)). An unfenced or still reporting host is
    refused, and so is an evacuation while more than O(max_down_percent) of the computes are
    down (stop-loss). The host is then forced down and disabled with novamove's tagged reason.
  - Servers tagged C(novamove:maintenance=skip) are left alone. Servers Nova cannot evacuate or
    that fit nowhere are reported and fail the task (they are still down).
  - With O(state=unfenced), checks that the host's nova-compute reports again and cleaned up the
    evacuated servers, clears forced_down, enables the service only if a novamove evacuation
    disabled it and, with O(move_back=true), brings the evacuated servers back.
  - In check mode the plan is computed and returned; nothing in the cloud changes.
  - Rerunning the task after an interrupted evacuation continues it; nothing is evacuated twice.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
options:
  host:
    description:
      - The failed compute host, as the service host name or the hypervisor hostname.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - V(evacuated) evacuates the host; V(unfenced) puts it back in service after the repair.
    type: str
    choices: [evacuated, unfenced]
    default: evacuated
  targets:
    description:
      - Only evacuate to these compute hosts (default any eligible host).
    type: list
    elements: str
    default: []
    aliases: [to]
  fence_cmd:
    description:
      - Shell command that fences O(host) (for example an IPMI power-off); it must exit 0.
        E(NOVAMOVE_HOST) and E(NOVAMOVE_HYPERVISOR) are set for it. Mutually exclusive with
        O(fenced).
      - Not logged (an IPMI password may be in it); Ansible then masks its text wherever it
        appears in the task's output.
    type: str
  fenced:
    description:
      - Assert that O(host) is fenced (powered off) already.
    type: bool
    default: false
  power:
    description:
      - V(restore) brings each server back in the state it had (C(ACTIVE) or C(SHUTOFF));
        V(stopped) leaves every evacuated server stopped (needs compute API 2.95).
    type: str
    choices: [restore, stopped]
    default: restore
  max_down_percent:
    description:
      - Stop-loss. Refuse when more than this percentage of the computes would be down at once.
    type: float
    default: 50
  reason:
    description:
      - Text added to the disabled reason of the host.
    type: str
  max_parallel:
    description:
      - At most this many evacuations (or moves back) in flight in all.
    type: int
    default: 4
  max_per_host:
    description:
      - At most this many in flight into one destination host.
    type: int
    default: 2
  move_back:
    description:
      - With O(state=unfenced), also move the evacuated servers back to O(host).
    type: bool
    default: false
  wait:
    description:
      - With O(state=unfenced), seconds to wait for the nova-compute of O(host) to report.
    type: int
    default: 90
  timeout:
    description:
      - Give up following one server after this many seconds.
    type: int
    default: 1800
  on_stall:
    description:
      - With O(state=unfenced) and O(move_back=true), what to do with a live move back that stops converging (its remaining memory does not
        drop over E(NOVAMOVE_STALL_WINDOW) seconds, default 30, or grows again).
      - V(force-complete) pauses the guest for the last copy (or switches to post-copy where the
        cloud permits it), V(abort) aborts it (a drain retries once on another host), V(cold)
        aborts it and moves the server cold, V(leave) only reports it.
      - Servers tagged C(novamove:maintenance=live) are never moved cold; C(=live-strict) are never
        force-completed (aborted, they stay and are reported).
    type: str
    choices: [force-complete, abort, cold, leave]
    default: force-complete
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
    description: Checks the preconditions and computes the plan; changes nothing.
  diff_mode:
    support: none
    description: The per-server results say what was evacuated where.
'''

EXAMPLES = r'''
- name: compute3 died; power it off over IPMI and rebuild its servers elsewhere
  novamove.openstack.host_evacuate:
    cloud: mycloud
    host: compute3
    fence_cmd: ipmitool -H compute3-bmc -U admin -E chassis power off
    max_parallel: 3

- name: compute3 is repaired and its nova-compute runs again; bring it and its servers back
  novamove.openstack.host_evacuate:
    cloud: mycloud
    host: compute3
    state: unfenced
    move_back: true
'''

RETURN = r'''
summary:
  description: One line saying what happened (what C(novamove evacuate) prints last).
  returned: always
  type: str
  sample: "evacuate compute3: 6 evacuated, 1 skipped"
fence:
  description: How the host is known not to run its guests any more.
  returned: always
  type: str
  sample: "fence command exited 0"
service:
  description: What happened to the nova-compute service of the host.
  returned: always
  type: str
  sample: "compute3 forced down; compute3 disabled (novamove:ab12cd34ef56: evacuate: host failed)"
run_id:
  description: Journal run (C(novamove history) shows it).
  returned: when not in check mode
  type: str
  sample: ab12cd34ef56
results:
  description:
    - One entry per server of the host (the rows of C(novamove evacuate -f json)).
    - Changed after 0.1.0, keys follow openstacksdk names; C(source) is now
      C(source_compute), C(dest) C(dest_compute), C(host) C(compute_host).
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
      description: The failed host (for moves back, where the server was).
      type: str
    dest_compute:
      description: Planned destination (null when not evacuated).
      type: str
    result:
      description: V(evacuated), V(moved), V(skipped), V(not-evacuated), V(failed), V(not-started), V(in-flight) or V(planned) (check mode).
      type: str
    detail:
      description: Why, in one line.
      type: str
    compute_host:
      description: Where the server was last seen.
      type: str
  sample:
    - server_id: 5f0c6f1e-2c0a-4a53-9a55-0d6d3a5b6f00
      server_name: web-1
      source_compute: compute3
      dest_compute: compute1
      result: evacuated
      detail: evacuation done, ACTIVE
plan:
  description:
    - The plan of the evacuation (or of the moves back); its C(steps) are rows with
      C(source_compute) and C(dest_compute), as in C(novamove evacuate --dry-run -f json).
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


class HostEvacuateModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        host=dict(type='str', required=True, aliases=['name']),
        state=dict(type='str', choices=['evacuated', 'unfenced'], default='evacuated'),
        targets=dict(type='list', elements='str', default=[], aliases=['to']),
        fence_cmd=dict(type='str', no_log=True),
        fenced=dict(type='bool', default=False),
        power=dict(type='str', choices=['restore', 'stopped'], default='restore'),
        max_down_percent=dict(type='float', default=50),
        reason=dict(type='str'),
        max_parallel=dict(type='int', default=4),
        max_per_host=dict(type='int', default=2),
        move_back=dict(type='bool', default=False),
        wait=dict(type='int', default=90),
        timeout=dict(type='int', default=1800),
        **ON_STALL_ARGUMENT_SPEC,
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[('fence_cmd', 'fenced')])

    def run(self):
        p = self.params
        common = dict(journal_path=p['journal'], max_parallel=p['max_parallel'],
                      max_per_host=p['max_per_host'], timeout=p['timeout'],
                      dry_run=self.ansible.check_mode, **dict(self.connection, **self.observing))
        if p['state'] == 'evacuated':
            report = novamove_api.evacuate(p['host'], targets=p['targets'], fence_cmd=p['fence_cmd'],
                                           fenced=p['fenced'], power=p['power'], reason=p['reason'],
                                           max_down_percent=p['max_down_percent'], **common)
        else:
            report = novamove_api.unfence(p['host'], move_back=p['move_back'], wait=p['wait'],
                                          on_stall=p['on_stall'], **common)
        data = novamove_report.batch_document(report)
        result = dict(changed=bool(report.changed), summary=data['summary'], fence=data['fence'],
                      service=data['service'], run_id=data['run_id'], results=data['results'],
                      plan=data['plan'] or {})
        if self.ansible.check_mode:
            result['changed'] = (any(r['result'] == 'planned' for r in data['results'])
                                 or 'would ' in (report.service or ''))
        if not report.ok:
            self.ansible.fail_json(msg=data['summary'], exit_code=report.exit_code, **result)
        return result


def main():
    HostEvacuateModule()()


if __name__ == '__main__':
    main()
