#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: instance_migrate
short_description: Move an OpenStack instance to the compute node you name, or the scheduler's choice
version_added: 0.1.0
description:
  - Moves one server to a named compute host, live or cold, with the C(novamove) library,
    the same code as C(novamove migrate). It runs the pre-checks, makes the move, waits,
    confirms the resize and verifies that the server landed where you asked.
  - Idempotent. A server that is already on O(host) is reported with RV(ignore:changed=false).
  - In check mode only the pre-checks run (server, target host, state, capacity); nothing in
    the cloud changes and the result says what would happen.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
  - novamove.openstack.on_stall
options:
  server:
    description:
      - Name or ID of the server to move.
    type: str
    required: true
    aliases: [instance, name]
  host:
    description:
      - Target compute host, as the service host name (what C(openstack compute service list)
        shows) or the hypervisor hostname; the library maps one to the other.
      - Without it Nova's scheduler chooses among the computes that pass the pre-checks (as
        C(openstack server migrate SERVER)); the server must land on another host. Such a task
        moves the server on every run (it is not idempotent), and O(strategy=isolate) is refused.
    type: str
    required: false
    aliases: [dest, destination]
  mode:
    description:
      - How to move. V(auto) moves an C(ACTIVE) or C(PAUSED) server live and a C(SHUTOFF) one cold.
    type: str
    choices: [auto, live, cold]
    default: auto
  strategy:
    description:
      - How the target is reached. V(native) asks Nova for the host directly (compute API 2.56
        and later for cold migration); V(isolate) disables the other compute services for the
        move and restores them afterwards; V(auto) uses V(native) when the cloud supports it.
    type: str
    choices: [auto, native, isolate]
    default: auto
  reason:
    description:
      - Why the server is moved; recorded in the journal and, with V(isolate), used as the
        disabled reason of the services that are switched off temporarily.
    type: str
  confirm:
    description:
      - Confirm the cold migration (the resize) once the server is on the target.
      - With V(false) the server is left in C(VERIFY_RESIZE) for you to confirm or revert.
    type: bool
    default: true
  wait:
    description:
      - Wait for the move to finish (and be confirmed) before returning.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the move when O(wait=true).
    type: int
    default: 600
  on_timeout:
    description:
      - What to do with a live migration that is still running after O(timeout) seconds.
      - V(abort) aborts it (the server stays on its source), V(force-complete) pauses the guest
        so that the copy can finish, V(leave) lets it run on and fails the task.
    type: str
    choices: [abort, force-complete, leave]
    default: abort
  journal:
    description:
      - Path of the SQLite journal of runs. Defaults to the library's default
        (E(NOVAMOVE_JOURNAL), else C(~/.local/state/novamove/journal.sqlite)).
      - Or a database URL that several controllers share (V(mysql+pymysql://USER@HOST/DB),
        V(postgresql+psycopg://USER@HOST/DB)). A URL with its password is refused here; set
        E(NOVAMOVE_JOURNAL) in the task environment instead (an AWX credential can inject it).
    type: path
attributes:
  check_mode:
    support: full
    description: Runs the pre-checks only and reports what would happen.
  diff_mode:
    support: full
    description: Shows the server's host before and after.
'''

EXAMPLES = r'''
- name: Move web1 to compute2 (live if it is running, cold if it is shut off)
  novamove.openstack.instance_migrate:
    cloud: mycloud
    server: web1
    host: compute2
    reason: rack 12 maintenance

- name: Cold-migrate db1 and leave the resize for a human to confirm
  novamove.openstack.instance_migrate:
    cloud: mycloud
    server: db1
    host: compute3
    mode: cold
    confirm: false
  register: move

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ move.summary }}"

- name: Move web2 off its host, wherever Nova's scheduler puts it
  novamove.openstack.instance_migrate:
    cloud: mycloud
    server: web2

- name: Only check that the move is possible
  novamove.openstack.instance_migrate:
    cloud: mycloud
    server: web1
    host: compute3
  check_mode: true
'''

RETURN = r'''
summary:
  description: One line saying where the server went and its status (what the CLI prints).
  returned: always
  type: str
  sample: web1 was migrated from compute1 to compute2 and has a status of ACTIVE
before:
  description: The server before the move.
  returned: always
  type: dict
  contains:
    compute_host:
      description:
        - Service host of the server (openstacksdk's C(compute_host)).
        - Changed after 0.1.0, was C(host).
      type: str
      sample: compute1
    hypervisor_hostname:
      description: Hypervisor (node) name of the server.
      type: str
      sample: compute1.example.org
    status:
      description: Nova status.
      type: str
      sample: ACTIVE
    power_state:
      description: Power state.
      type: str
      sample: RUNNING
    flavor:
      description: Flavor name.
      type: str
      sample: m1.small
  sample: {"compute_host": "compute1", "hypervisor_hostname": "compute1.example.org", "status": "ACTIVE",
           "power_state": "RUNNING", "flavor": "m1.small"}
after:
  description:
    - The server after the move, with the same keys as RV(before).
    - In check mode, and when the server was already on the host, the same as RV(before).
  returned: always
  type: dict
  sample: {"compute_host": "compute2", "hypervisor_hostname": "compute2.example.org", "status": "ACTIVE",
           "power_state": "RUNNING", "flavor": "m1.small"}
source_compute:
  description:
    - Service host the server was on (openstacksdk's migration C(source_compute)).
    - Changed after 0.1.0, was C(source).
  returned: always
  type: str
  sample: compute1
dest_compute:
  description:
    - Service host the server was moved to (or would be, in check mode).
    - Changed after 0.1.0, was C(dest).
  returned: always
  type: str
  sample: compute2
source_node:
  description: Hypervisor hostname the server was on (the migration record's C(source_node)).
  returned: always
  type: str
  sample: compute1.example.org
dest_node:
  description: Hypervisor hostname the server landed on (null until it has landed).
  returned: always
  type: str
  sample: compute2.example.org
request_ids:
  description:
    - Nova's request ID (C(x-openstack-request-id)) of each call that changed something, in
      order; the one to look for in Nova's logs when a move failed is the last.
  returned: always
  type: list
  elements: str
  sample: ["req-6c0c1f5e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"]
mode:
  description: How the server was (or would be) moved.
  returned: always
  type: str
  sample: live
strategy:
  description: How the target was (or would be) reached.
  returned: always
  type: str
  sample: native
server_id:
  description: ID of the server.
  returned: always
  type: str
  sample: 9c6c2f7e-5d0e-4a53-9d1b-2f7c0f8f2c11
server_name:
  description: Name of the server.
  returned: always
  type: str
  sample: web1
migration_status:
  description: Last status of the Nova migration record.
  returned: when Nova created a migration
  type: str
  sample: confirmed
stall:
  description:
    - When the live migration stalled, what was done about it - V(force-completed),
      V(force-completed (post-copy)), V(aborted), V(fell back to cold) or V(left running); null without a stall.
  returned: always
  type: str
  sample: force-completed
run_id:
  description: Journal run of this move (C(novamove history) shows it).
  returned: when a move was journaled
  type: str
  sample: 20240101-101500-ab12cd
migration_id:
  description: ID of the Nova migration record of the move.
  returned: when Nova created a migration
  type: str
  sample: "42"
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    ON_STALL_ARGUMENT_SPEC,
    NovamoveModule,
    novamove_api,
    novamove_report,
)

# What the module reports of the move's document (novamove.report.move_document, the keys of
# `novamove migrate -f json`), besides `changed`.
RESULT_FIELDS = ('summary', 'server_id', 'server_name', 'before', 'after', 'source_compute',
                 'dest_compute', 'source_node', 'dest_node', 'mode', 'strategy', 'run_id',
                 'migration_id', 'migration_status', 'request_ids', 'stall')


class InstanceMigrateModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        server=dict(type='str', required=True, aliases=['instance', 'name']),
        host=dict(type='str', aliases=['dest', 'destination']),
        mode=dict(type='str', choices=['auto', 'live', 'cold'], default='auto'),
        strategy=dict(type='str', choices=['auto', 'native', 'isolate'], default='auto'),
        reason=dict(type='str'),
        confirm=dict(type='bool', default=True),
        wait=dict(type='bool', default=True),
        timeout=dict(type='int', default=600),
        on_timeout=dict(type='str', choices=['abort', 'force-complete', 'leave'], default='abort'),
        **ON_STALL_ARGUMENT_SPEC,
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        move = novamove_api.migrate(
            p['server'], p['host'],
            mode=p['mode'], strategy=p['strategy'], reason=p['reason'], confirm=p['confirm'],
            wait=p['wait'], timeout=p['timeout'], on_timeout=p['on_timeout'], journal_path=p['journal'],
            on_stall=p['on_stall'],
            check_mode=self.ansible.check_mode,
            **dict(self.connection, **self.observing))
        doc = novamove_report.move_document(move)
        result = dict((name, doc.get(name)) for name in RESULT_FIELDS)
        result['changed'] = bool(move.changed)
        if not move.ok:
            # The move was tried and did not land: the library already rolled back what it
            # could; report its one-line error (what the CLI prints) with everything we know.
            self.ansible.fail_json(msg=novamove_report.error_line(move),
                                   exit_code=getattr(move, 'exit_code', 1), **result)
        if self.ansible._diff:
            # In check mode `after` is still the current server: the diff shows the target.
            source = (doc.get('before') or {}).get('compute_host') or doc.get('source_compute')
            target = doc.get('dest_compute') if move.changed else source
            result['diff'] = dict(before=dict(host=source), after=dict(host=target))
        return result


def main():
    InstanceMigrateModule()()


if __name__ == '__main__':
    main()
