#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cloud_budget
short_description: Set, read or clear the cloud-wide move budget shared by every novamove run
version_added: 0.2.0
description:
  - C(novamove budget set|show|clear) in a task. A budget is per cloud and per journal; every
    drain, campaign, rebalance and evacuation on the same journal and cloud keeps to it
    together (at most O(max_in_flight) moves in flight, at most O(max_per_host) to one
    destination host).
  - A run waiting for budget waits its turn (first come, first served); it does not fail.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
options:
  state:
    description:
      - V(present) sets the budget (replacing any), V(absent) clears it, V(query) only reads it.
    type: str
    choices: [present, absent, query]
    default: present
  max_in_flight:
    description:
      - At most this many moves in flight cloud-wide (runs on this journal). At least 1.
    type: int
  max_per_host:
    description:
      - At most this many moves in flight to one destination host. At least 1.
    type: int
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
    description: Reports whether the budget would change, and changes nothing.
  diff_mode:
    support: none
    description: Not implemented.
'''

EXAMPLES = r'''
- name: At most 8 live migrations in flight, 2 per destination host, for every run on this journal
  novamove.openstack.cloud_budget:
    cloud: mycloud
    max_in_flight: 8
    max_per_host: 2

- name: No budget any more
  novamove.openstack.cloud_budget:
    cloud: mycloud
    state: absent
'''

RETURN = r'''
budget:
  description: The budget after the task (the keys of C(novamove budget show -f json)).
  returned: always
  type: dict
  contains:
    cloud:
      description: The cloud the budget is for, as runs record it.
      type: str
      sample: mycloud
    max_in_flight:
      description: At most this many moves in flight cloud-wide; null when unset.
      type: int
      sample: 8
    max_per_host:
      description: At most this many moves in flight to one host; null when unset.
      type: int
      sample: 2
    in_flight:
      description: Moves holding a slot now.
      type: int
      sample: 3
    waiting:
      description: Runs waiting their turn now.
      type: int
      sample: 0
    set_at:
      description: When the budget was set (UTC).
      type: str
      sample: "2026-12-06T09:10:35Z"
    set_by:
      description: Who set it (user@machine).
      type: str
      sample: alice@bastion2
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    NovamoveModule,
    novamove_api,
)

KEYS = ('cloud', 'max_in_flight', 'max_per_host', 'in_flight', 'waiting', 'set_at', 'set_by')


class CloudBudgetModule(NovamoveModule):
    argument_spec = dict(
        state=dict(type='str', choices=['present', 'absent', 'query'], default='present'),
        max_in_flight=dict(type='int'),
        max_per_host=dict(type='int'),
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        where = dict(journal_path=p['journal'], **self.connection)
        limits = dict(max_in_flight=p['max_in_flight'], max_per_host=p['max_per_host'])
        if p['state'] == 'present':
            novamove_api.budget_validate(**limits)
        before = novamove_api.budget_show(**where)
        if p['state'] == 'query':
            return dict(changed=False, budget=_keys(before))
        if p['state'] == 'absent':
            changed = before['max_in_flight'] is not None or before['max_per_host'] is not None
            if changed and not self.ansible.check_mode:
                novamove_api.budget_clear(**where)
        else:
            changed = (before['max_in_flight'], before['max_per_host']) != (limits['max_in_flight'],
                                                                            limits['max_per_host'])
            if changed and not self.ansible.check_mode:
                novamove_api.budget_set(**dict(where, **limits))
        after = before if self.ansible.check_mode else novamove_api.budget_show(**where)
        return dict(changed=changed, budget=_keys(after))


def _keys(doc):
    return dict((k, doc[k]) for k in KEYS)


def main():
    CloudBudgetModule()()


if __name__ == '__main__':
    main()
