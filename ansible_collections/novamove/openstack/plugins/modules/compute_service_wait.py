#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: compute_service_wait
short_description: Wait until a compute host's nova-compute is up again
version_added: 0.2.0
description:
  - Waits until the nova-compute service of O(host) is C(up), not forced down and, with
    O(since), has reported to Nova after that time (so a report from before a reboot does
    not count). The gate C(novamove maintain) applies after its hook.
  - Reads only; never changes anything (RV(ignore:changed=false)).
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
options:
  host:
    description:
      - Compute host, as the service host name or the hypervisor hostname.
    type: str
    required: true
    aliases: [name]
  since:
    description:
      - ISO 8601 UTC time (for example C({{ now(utc=true).isoformat() }}) taken before the
        reboot); the service must have reported after it.
    type: str
  timeout:
    description:
      - Fail after this many seconds.
    type: int
    default: 900
  poll_interval:
    description:
      - Seconds between two looks at the service list.
    type: float
    default: 2.0
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
'''

EXAMPLES = r'''
- name: Note the time, reboot, then wait for nova-compute to report again
  ansible.builtin.set_fact:
    before_reboot: "{{ now(utc=true).isoformat() }}"
- ansible.builtin.reboot:
- novamove.openstack.compute_service_wait:
    cloud: mycloud
    host: "{{ inventory_hostname }}"
    since: "{{ before_reboot }}"
  delegate_to: localhost
'''

RETURN = r'''
host:
  description: The service host name.
  returned: always
  type: str
  sample: compute1
updated_at:
  description: The service's last report (Nova's time, UTC).
  returned: always
  type: str
  sample: "2026-01-31T12:00:07.000000"
waited:
  description: Seconds waited.
  returned: always
  type: float
  sample: 12.5
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    NovamoveModule,
    novamove_api,
)


class ComputeServiceWaitModule(NovamoveModule):
    argument_spec = dict(
        host=dict(type='str', required=True, aliases=['name']),
        since=dict(type='str'),
        timeout=dict(type='int', default=900),
        poll_interval=dict(type='float', default=2.0),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        got = novamove_api.compute_service_up(p['host'], since=p['since'], timeout=p['timeout'],
                                              poll_interval=p['poll_interval'], **self.connection)
        return dict(changed=False, **got)


def main():
    ComputeServiceWaitModule()()


if __name__ == '__main__':
    main()
