#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: migration_info
short_description: List Nova migrations, filtered by server, host, status and type
version_added: 0.1.0
description:
  - Lists the migration records of the compute API (cold and live migrations, resizes,
    evacuations), optionally only those of one server, one host, one status or one type.
  - Reads only; never changes anything.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
options:
  server:
    description:
      - Only migrations of this server (name or ID).
    type: str
    aliases: [instance]
  host:
    description:
      - Only migrations from or to this compute host.
    type: str
  status:
    description:
      - Only migrations with this status (for example V(running), V(completed),
        V(confirmed), V(error)).
    type: str
  migration_type:
    description:
      - Only migrations of this type.
    type: str
    choices: [migration, live-migration, resize, evacuation]
    aliases: [type]
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
'''

EXAMPLES = r'''
- name: Migrations of web1
  novamove.openstack.migration_info:
    cloud: mycloud
    server: web1
  register: web1_migrations

- name: Live migrations still running on compute1
  novamove.openstack.migration_info:
    cloud: mycloud
    host: compute1
    migration_type: live-migration
    status: running
'''

RETURN = r'''
migrations:
  description:
    - The matching migrations, newest first (the rows of C(novamove migrations -f json); keys
      are openstacksdk's C(compute.v2.migration.Migration) attribute names).
    - Changed after 0.1.0, C(type) is now C(migration_type), C(source)
      C(source_compute) and C(dest) C(dest_compute).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Migration ID.
      type: str
      sample: "42"
    uuid:
      description: Migration UUID.
      type: str
      sample: 0e3a4b9c-6a44-4b8e-8f8f-5b2f6d3b3b11
    server_id:
      description: ID of the migrated server.
      type: str
      sample: 9c6c2f7e-5d0e-4a53-9d1b-2f7c0f8f2c11
    migration_type:
      description: One of V(migration), V(live-migration), V(resize), V(evacuation).
      type: str
      sample: migration
    source_compute:
      description: Service host the server left.
      type: str
      sample: compute1
    dest_compute:
      description: Service host the server went to.
      type: str
      sample: compute2
    status:
      description: Migration status.
      type: str
      sample: confirmed
    created_at:
      description: When Nova created the record.
      type: str
      sample: "2024-01-01T10:15:00.000000"
    updated_at:
      description: When Nova last updated the record.
      type: str
      sample: "2024-01-01T10:15:42.000000"
  sample:
    - id: "42"
      uuid: 0e3a4b9c-6a44-4b8e-8f8f-5b2f6d3b3b11
      server_id: 9c6c2f7e-5d0e-4a53-9d1b-2f7c0f8f2c11
      migration_type: migration
      source_compute: compute1
      dest_compute: compute2
      status: confirmed
      created_at: "2024-01-01T10:15:00.000000"
      updated_at: "2024-01-01T10:15:42.000000"
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    NovamoveModule,
    novamove_api,
    novamove_report,
)


class MigrationInfoModule(NovamoveModule):
    argument_spec = dict(
        server=dict(type='str', aliases=['instance']),
        host=dict(type='str'),
        status=dict(type='str'),
        migration_type=dict(type='str', choices=['migration', 'live-migration', 'resize', 'evacuation'],
                            aliases=['type']),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        migrations = novamove_api.migrations(
            server=p['server'], host=p['host'], status=p['status'],
            migration_type=p['migration_type'], **self.connection)
        return dict(changed=False, migrations=novamove_report.migration_rows(migrations))


def main():
    MigrationInfoModule()()


if __name__ == '__main__':
    main()
