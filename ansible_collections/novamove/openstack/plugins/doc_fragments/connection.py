# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options shared by every module: the same names and meanings as the
    # openstack.cloud collection, so playbooks can reuse their module_defaults.
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Name of the clouds.yaml entry to use.
      - When neither O(cloud) nor O(auth) is given, openstacksdk reads E(OS_CLOUD)
        and the E(OS_*) environment variables, exactly like the C(novamove) CLI.
    type: str
  auth:
    description:
      - Dictionary of authentication settings (for example C(auth_url), C(username),
        C(password), C(project_name), C(user_domain_name), C(project_domain_name)).
      - Prefer a clouds.yaml entry (with secure.yaml for secrets) named by O(cloud);
        this option exists for parity with openstack.cloud and is never logged.
    type: dict
  region_name:
    description:
      - Name of the region. Defaults to the region of the clouds.yaml entry.
    type: str
  interface:
    description:
      - Endpoint interface of the service catalog to use.
      - Defaults to the clouds.yaml setting, else C(public).
    type: str
    choices: [admin, internal, public]
    aliases: [endpoint_type]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the API endpoints.
      - Defaults to the clouds.yaml setting, else V(true).
    type: bool
    aliases: [verify]
requirements:
  - python >= 3.10
  - novamove (the library, installed for the Python that runs the module)
notes:
  - The modules import the C(novamove) library on the managed node (usually C(localhost));
    set C(ansible_python_interpreter) to a Python that has it installed.
  - Errors are reported with the same one-line message the C(novamove) CLI prints.
'''
