#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: compute_host_info
short_description: List compute hosts with their service state, hypervisor name and usage
version_added: 0.1.0
description:
  - Lists the nova-compute services joined with their hypervisors, with the mapping between
    the service host name (what the migrate APIs take) and the hypervisor hostname (which real
    clouds often spell differently), the scheduling status, the up/down state, the disabled
    reason and the capacity and usage of each host.
  - Reads only; never changes anything.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
options:
  name:
    description:
      - Only report the host with this service host name or hypervisor hostname.
    type: str
    aliases: [host]
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
'''

EXAMPLES = r'''
- name: List the compute hosts
  novamove.openstack.compute_host_info:
    cloud: mycloud
  register: computes

- name: Names of the hosts that can take new servers
  ansible.builtin.debug:
    msg: "{{ computes.compute_hosts | selectattr('status', 'eq', 'enabled')
             | selectattr('state', 'eq', 'up') | map(attribute='name') | list }}"

- name: Look up one host by its hypervisor hostname
  novamove.openstack.compute_host_info:
    cloud: mycloud
    name: compute2.example.org
'''

RETURN = r'''
compute_hosts:
  description:
    - One entry per compute host, sorted as the library returns them (the rows of
      C(novamove hosts -f json)).
    - Changed after 0.1.0, keys follow openstacksdk names; C(name) is now C(host)
      and C(zone) C(availability_zone).
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: Service host name (what O(novamove.openstack.instance_migrate#module:host) takes).
      type: str
      sample: compute1
    hypervisor_hostname:
      description: Hypervisor (node) hostname of the host.
      type: str
      sample: compute1.example.org
    availability_zone:
      description: Availability zone of the compute service.
      type: str
      sample: nova
    status:
      description: Whether the scheduler may place servers there (V(enabled) or V(disabled)).
      type: str
      sample: enabled
    state:
      description: Whether the compute service reports in (V(up) or V(down)).
      type: str
      sample: up
    disabled_reason:
      description: Why the service was disabled, if it is.
      type: str
      sample: rack 12 maintenance
    vcpus:
      description: VCPUs the host offers (placement inventory times allocation ratio, minus reserved).
      type: float
      sample: 64
    vcpus_used:
      description: VCPUs allocated in placement.
      type: float
      sample: 8
    memory_mb:
      description: Memory the host offers, in MiB.
      type: float
      sample: 257024
    memory_mb_used:
      description: Memory allocated in placement, in MiB.
      type: float
      sample: 16384
    disk_gb:
      description: Disk the host offers, in GiB.
      type: float
      sample: 900
    disk_gb_used:
      description: Disk allocated in placement, in GiB.
      type: float
      sample: 80
  sample:
    - host: compute1
      hypervisor_hostname: compute1.example.org
      availability_zone: nova
      status: enabled
      state: up
      disabled_reason: null
      vcpus: 64
      vcpus_used: 8
      memory_mb: 257024
      memory_mb_used: 16384
      disk_gb: 900
      disk_gb_used: 80
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    NovamoveModule,
    novamove_api,
    novamove_report,
)


class ComputeHostInfoModule(NovamoveModule):
    argument_spec = dict(
        name=dict(type='str', aliases=['host']),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        hosts = novamove_report.host_rows(novamove_api.compute_hosts(**self.connection))
        name = self.params['name']
        if name:
            hosts = [h for h in hosts if name in (h.get('host'), h.get('hypervisor_hostname'))]
        return dict(changed=False, compute_hosts=hosts)


def main():
    ComputeHostInfoModule()()


if __name__ == '__main__':
    main()
