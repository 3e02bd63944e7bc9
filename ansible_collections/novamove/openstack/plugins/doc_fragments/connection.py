# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options shared by every module: the same names, aliases, types and no_log as
    # the openstack.cloud collection, so playbooks can reuse their module_defaults.
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Named cloud or cloud config to operate against.
      - If O(cloud) is a string, it is the name of a clouds.yaml entry.
      - If O(cloud) is a dictionary, it is a complete cloud configuration, as one entry of
        clouds.yaml would be (C(auth), C(region_name), C(interface), C(cacert), ...). Other
        connection options given next to it override what it says. Values of its secret keys
        (C(password), C(token), C(application_credential_secret), ...) are hidden from the
        output and logs like O(auth).
      - When neither O(cloud) nor O(auth) is given, openstacksdk reads E(OS_CLOUD)
        and the E(OS_*) environment variables, exactly like the C(novamove) CLI.
    type: raw
  auth:
    description:
      - Dictionary of authentication settings for the auth plugin (for the default
        C(password) plugin C(auth_url), C(username), C(password), C(project_name),
        C(user_domain_name), C(project_domain_name)).
      - Prefer a clouds.yaml entry (with secure.yaml for secrets) named by O(cloud);
        this option exists for parity with openstack.cloud and is never logged.
    type: dict
  auth_type:
    description:
      - Name of the keystoneauth plugin to use (for example V(password), V(token),
        V(v3applicationcredential)); O(auth) then holds what that plugin needs.
      - Defaults to the clouds.yaml setting, else V(password).
    type: str
  region_name:
    description:
      - Name of the region. Defaults to the region of the clouds.yaml entry.
    type: str
  interface:
    description:
      - Endpoint interface of the service catalog to use.
      - Defaults to the clouds.yaml setting, else V(public). (openstack.cloud defaults to
        V(public) and so overrides clouds.yaml; novamove leaves it to clouds.yaml.)
    type: str
    choices: [admin, internal, public]
    aliases: [endpoint_type]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the API endpoints.
      - Defaults to the clouds.yaml setting, else V(true).
    type: bool
    aliases: [verify]
  ca_cert:
    description:
      - Path of a CA bundle to verify the API endpoints' TLS certificates with.
    type: str
    aliases: [cacert]
  client_cert:
    description:
      - Path of a client certificate for TLS client authentication.
    type: str
    aliases: [cert]
  client_key:
    description:
      - Path of the private key of O(client_cert) (if it is not in that file).
    type: str
    aliases: [key]
  api_timeout:
    description:
      - Timeout in seconds of each API request (not of the whole task; see the module's
        own C(timeout) where it has one).
    type: int
  sdk_log_path:
    description:
      - Path of a file to write the openstacksdk and keystoneauth logs to (created
        readable by its owner only). Not set, nothing is logged.
    type: str
  sdk_log_level:
    description:
      - Level of the logs written to O(sdk_log_path). V(DEBUG) includes every HTTP
        request and response (with secrets redacted by keystoneauth).
    type: str
    default: INFO
    choices: [INFO, DEBUG]
requirements:
  - python >= 3.10
  - novamove (the library, installed for the Python that runs the module)
notes:
  - The modules import the C(novamove) library on the managed node (usually C(localhost));
    set C(ansible_python_interpreter) to a Python that has it installed.
  - Errors are reported with the same one-line message the C(novamove) CLI prints.
'''
