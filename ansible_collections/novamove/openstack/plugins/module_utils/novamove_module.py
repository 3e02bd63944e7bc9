# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""What every novamove module shares: the connection options, the guarded library import and
the error mapping.

The collection is a thin front end over the novamove library, like the CLI: it parses
options, calls ``novamove.api`` and reports the result. It never talks to OpenStack itself.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

# The import is guarded so that ansible-test's import sanity test (which runs without the
# library) and ansible-doc work; a module that actually runs reports the missing library.
try:
    # novamove_api is used by the modules, which import it from here.
    from novamove import api as novamove_api  # pylint: disable=unused-import
    from novamove.errors import NovamoveError
except ImportError:
    HAS_NOVAMOVE = False
    NOVAMOVE_IMPORT_ERROR = traceback.format_exc()
    novamove_api = None

    class NovamoveError(Exception):  # type: ignore[no-redef]
        """Stand-in so `except NovamoveError` stays valid when the library is missing."""

        exit_code = 1
else:
    HAS_NOVAMOVE = True
    NOVAMOVE_IMPORT_ERROR = None


# The openstack.cloud connection options (minus the SDK tuning knobs the library owns).
CONNECTION_ARGUMENT_SPEC = dict(
    cloud=dict(type='str'),
    auth=dict(type='dict', no_log=True),
    region_name=dict(type='str'),
    interface=dict(type='str', choices=['admin', 'internal', 'public'], aliases=['endpoint_type']),
    validate_certs=dict(type='bool', aliases=['verify']),
)

CONNECTION_OPTIONS = tuple(CONNECTION_ARGUMENT_SPEC)


def connection_kwargs(params):
    """Turn the module's connection options into the library's keyword arguments.

    The one place that does it, so every module connects the same way. Unset options stay
    None, which lets openstacksdk fall back to clouds.yaml and the OS_* variables.
    """
    return dict((name, params.get(name)) for name in CONNECTION_OPTIONS)


class NovamoveModule(object):
    """An AnsibleModule with the connection options, the library check and error mapping.

    Subclasses set ``argument_spec`` (module options only) and implement ``run()``, which
    returns the result dict; library errors become ``fail_json`` with the library's one-line
    message (the text the CLI prints after ``novamove: error:``).
    """

    argument_spec = {}
    module_kwargs = {}

    def __init__(self):
        spec = dict(CONNECTION_ARGUMENT_SPEC)
        spec.update(self.argument_spec)
        self.ansible = AnsibleModule(argument_spec=spec, **self.module_kwargs)
        self.params = self.ansible.params

    @property
    def connection(self):
        return connection_kwargs(self.params)

    def run(self):
        raise NotImplementedError

    def __call__(self):
        if not HAS_NOVAMOVE:
            self.ansible.fail_json(msg=missing_required_lib('novamove'),
                                   exception=NOVAMOVE_IMPORT_ERROR)
        try:
            result = self.run()
        except NovamoveError as exc:
            self.ansible.fail_json(msg=str(exc), exit_code=getattr(exc, 'exit_code', 1),
                                   error=type(exc).__name__)
        except Exception as exc:  # pylint: disable=broad-except
            # Anything else is a bug in novamove: keep the one-line message, attach the trace.
            self.ansible.fail_json(msg='unexpected error: %s' % ' '.join(str(exc).split()),
                                   exception=traceback.format_exc())
        self.ansible.exit_json(**result)
