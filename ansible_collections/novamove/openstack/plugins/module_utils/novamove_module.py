# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""What every novamove module shares: the connection options, the observe options of the
modules that change the cloud, the guarded library import and the error mapping.

The collection is a thin front end over the novamove library, like the CLI: it parses
options, calls ``novamove.api`` and reports the result. It never talks to OpenStack itself.
"""

from __future__ import annotations

import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib, remove_values

# The import is guarded so that ansible-test's import sanity test (which runs without the
# library) and ansible-doc work; a module that actually runs reports the missing library.
try:
    # novamove_api and novamove_report are used by the modules, which import them from here.
    # Results are shaped by novamove.report (the CLI's -f json schema: openstacksdk key names),
    # never by the modules themselves.
    from novamove import api as novamove_api  # pylint: disable=unused-import
    from novamove import report as novamove_report  # pylint: disable=unused-import
    from novamove.errors import NovamoveError
except ImportError:
    HAS_NOVAMOVE = False
    NOVAMOVE_IMPORT_ERROR = traceback.format_exc()
    novamove_api = None
    novamove_report = None

    class NovamoveError(Exception):  # type: ignore[no-redef]
        """Stand-in so `except NovamoveError` stays valid when the library is missing."""

        exit_code = 1
else:
    HAS_NOVAMOVE = True
    NOVAMOVE_IMPORT_ERROR = None


# The openstack.cloud connection options: the same names, aliases, types and no_log, so that
# playbooks can share module_defaults (group/novamove.openstack.openstack) with openstack.cloud.
# Unlike openstack.cloud, `interface` has no default: unset, the clouds.yaml entry decides.
CONNECTION_ARGUMENT_SPEC = dict(
    cloud=dict(type='raw'),
    auth=dict(type='dict', no_log=True),
    auth_type=dict(type='str'),
    region_name=dict(type='str'),
    interface=dict(type='str', choices=['admin', 'internal', 'public'], aliases=['endpoint_type']),
    validate_certs=dict(type='bool', aliases=['verify']),
    ca_cert=dict(type='str', aliases=['cacert']),
    client_cert=dict(type='str', aliases=['cert']),
    client_key=dict(type='str', no_log=True, aliases=['key']),
    api_timeout=dict(type='int'),
    sdk_log_path=dict(type='str'),
    sdk_log_level=dict(type='str', default='INFO', choices=['INFO', 'DEBUG']),
)

CONNECTION_OPTIONS = tuple(CONNECTION_ARGUMENT_SPEC)

# novamove's --events, --metrics-textfile and --metrics-push, on every module that changes the
# cloud (observed = True): declared here once, documented once (doc fragment observe.py).
OBSERVE_ARGUMENT_SPEC = dict(
    events=dict(type='path'),
    metrics_textfile=dict(type='path'),
    metrics_push=dict(type='str'),
)

# novamove's --on-stall, on every module whose moves can be live: declared once, documented once
# (doc fragment on_stall.py; host_evacuate documents its own, which applies to move-back only).
ON_STALL_ARGUMENT_SPEC = dict(
    on_stall=dict(type='str', choices=['force-complete', 'abort', 'cold', 'leave'], default='force-complete'),
)

# Module option -> novamove.api.ConnectionSpec field (the sdk_log_* options are not connection
# settings: they configure openstacksdk's logging, see configure_sdk_logging).
SPEC_FIELDS = dict(
    auth='auth',
    auth_type='auth_type',
    region_name='region_name',
    interface='interface',
    validate_certs='verify',
    ca_cert='cacert',
    client_cert='cert',
    client_key='key',
    api_timeout='api_timeout',
)

SDK_LOGGERS = ('openstack', 'keystoneauth')

# Keys whose values are secrets in a dict `cloud` (a clouds.yaml entry inline): `cloud` cannot be
# no_log as a whole (a cloud *name* would then be masked in every message), so these values are
# hidden the way no_log hides option values.
SECRET_KEY = re.compile(r'pass|secret|token|key|credential|otp', re.IGNORECASE)


def cloud_secrets(cloud):
    """The secret string values inside a dict ``cloud`` (by key name, at any depth)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    walk(value)
                elif isinstance(value, str) and value and SECRET_KEY.search(str(key)):
                    found.add(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if isinstance(cloud, dict):
        walk(cloud)
    return found


def journal_secrets(params):
    """The password of a journal database URL (the ``journal`` option or $NOVAMOVE_JOURNAL):
    hidden like a no_log value wherever it could show."""
    import os
    found = set()
    for location in (params.get('journal'), os.environ.get('NOVAMOVE_JOURNAL')):
        if isinstance(location, str) and '://' in location:
            userinfo = location.split('://', 1)[1].split('@', 1)
            if len(userinfo) == 2 and ':' in userinfo[0]:
                found.add(userinfo[0].split(':', 1)[1])
    return found - set([''])


# A database URL with its password is refused as the ``journal`` option (it would be in the
# playbook, the job's log and -vvv's invocation): the environment or a password file carry it.
JOURNAL_PASSWORD_REFUSED = ('journal: a database URL with an inline password is refused as a module option; '
                            'set NOVAMOVE_JOURNAL in the task environment (e.g. from an AWX credential), or give '
                            'the URL without the password and NOVAMOVE_JOURNAL_PASSWORD_FILE naming a file with it')


class _AnsibleModule(AnsibleModule):
    """AnsibleModule that also hides the secrets of a dict ``cloud`` from the invocation it
    logs on the managed node (its results are masked by NovamoveModule), and calls
    ``before_exit`` (once) before it reports, whichever way the task ends."""

    before_exit = None

    def _log_invocation(self):
        self.no_log_values.update(cloud_secrets(self.params.get('cloud')))
        self.no_log_values.update(journal_secrets(self.params))
        super(_AnsibleModule, self)._log_invocation()

    def _before_exit(self):
        hook, self.before_exit = self.before_exit, None
        if hook is not None:
            hook()

    def exit_json(self, **kwargs):
        self._before_exit()
        super(_AnsibleModule, self).exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self._before_exit()
        super(_AnsibleModule, self).fail_json(msg, **kwargs)


def connection_spec(params):
    """The module's connection options as one ``novamove.api.ConnectionSpec``.

    The one place that does it, so every module connects the same way. Unset options stay
    None, which lets openstacksdk fall back to clouds.yaml and the OS_* variables; options set
    next to a dict ``cloud`` override what the dict says. Raises ValueError for a ``cloud``
    that is neither a name nor a dict.
    """
    cloud = params.get('cloud')
    if cloud is not None and not isinstance(cloud, (str, dict)):
        raise ValueError('cloud must be the name of a clouds.yaml entry or a cloud config dict, '
                         'not %s' % type(cloud).__name__)
    options = dict((field, params.get(name)) for name, field in SPEC_FIELDS.items()
                   if params.get(name) is not None)
    return novamove_api.ConnectionSpec(cloud=cloud or None, **options)


def configure_sdk_logging(params):
    """With ``sdk_log_path``, log openstacksdk and keystoneauth to that file at
    ``sdk_log_level`` (DEBUG includes their HTTP request/response lines, secrets redacted by
    them), as openstack.cloud does. Returns the handler (None when not asked)."""
    import logging
    import os

    path = params.get('sdk_log_path')
    if not path:
        return None
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        # Created private: request logs name the cloud's endpoints and projects.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    level = logging.DEBUG if params.get('sdk_log_level') == 'DEBUG' else logging.INFO
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(name)s %(message)s'))
    handler.setLevel(level)
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
    return handler


class NovamoveModule(object):
    """An AnsibleModule with the connection options, the library check and error mapping.

    Subclasses set ``argument_spec`` (module options only) and implement ``run()``, which
    returns the result dict; library errors become ``fail_json`` with the library's one-line
    message (the text the CLI prints after ``novamove: error:``). A module that changes the
    cloud sets ``observed = True``: it then takes the OBSERVE_ARGUMENT_SPEC options and passes
    ``**self.observing`` to the api verbs that change the cloud.
    """

    argument_spec = {}
    module_kwargs = {}
    observed = False
    observation = None

    def __init__(self):
        spec = dict(CONNECTION_ARGUMENT_SPEC)
        if self.observed:
            spec.update(OBSERVE_ARGUMENT_SPEC)
        spec.update(self.argument_spec)
        self.ansible = _AnsibleModule(argument_spec=spec, **self.module_kwargs)
        self.ansible.no_log_values.update(cloud_secrets(self.ansible.params.get('cloud')))
        self.ansible.no_log_values.update(journal_secrets(self.ansible.params))
        self.params = self.ansible.params

    @property
    def connection(self):
        """Keyword arguments for any novamove.api call: ``cloud=`` one ConnectionSpec."""
        return dict(cloud=connection_spec(self.params))

    @property
    def observing(self):
        """``observers=`` for an api verb that changes the cloud, when O(events) or O(metrics_*)
        asked for any (an empty dict otherwise)."""
        if self.observation is None or not self.observation.observers:
            return {}
        return dict(observers=tuple(self.observation.observers))

    def _redact(self, line):
        """An event line with the module's no_log values masked, as Ansible masks its output
        (a hook or fence command is journaled, so its event carries it)."""
        return remove_values(line, self.ansible.no_log_values)

    def _observed_to_the_end(self):
        """Before the task reports (done or failed): the metrics' last write, and a warning for
        each metrics output that failed during the run."""
        self.observation.flush()
        for line in self.observation.given_up:
            self.ansible.warn(line)

    def _observe(self):
        """The api's observing() context for the observe options (None when not observed)."""
        p = self.params
        if not self.observed or not (p.get('events') or p.get('metrics_textfile') or p.get('metrics_push')):
            return None
        if p.get('events') == '-':
            # stdout is the module's JSON result: a stream there would break it.
            self.ansible.fail_json(msg="events: give a file path ('-', stdout, carries the module's result)",
                                   exit_code=2, error='UsageError')
        return novamove_api.observing(events=p.get('events'), metrics_textfile=p.get('metrics_textfile'),
                                      metrics_push=p.get('metrics_push'), redact=self._redact)

    def run(self):
        raise NotImplementedError

    def __call__(self):
        if not HAS_NOVAMOVE:
            self.ansible.fail_json(msg=missing_required_lib('novamove'),
                                   exception=NOVAMOVE_IMPORT_ERROR)
        if journal_secrets({'journal': self.params.get('journal')}):
            self.ansible.fail_json(msg=JOURNAL_PASSWORD_REFUSED, exit_code=2, error='UsageError')
        try:
            connection_spec(self.params)
        except ValueError as exc:
            self.ansible.fail_json(msg=str(exc), exit_code=2, error='UsageError')
        try:
            configure_sdk_logging(self.params)
        except OSError as exc:
            self.ansible.fail_json(msg='sdk_log_path: %s' % exc, exit_code=2, error='UsageError')
        try:
            observing = self._observe()
            if observing is None:
                result = self.run()
            else:
                with observing as self.observation:
                    self.ansible.before_exit = self._observed_to_the_end
                    result = self.run()
        except NovamoveError as exc:
            self.ansible.fail_json(msg=str(exc), exit_code=getattr(exc, 'exit_code', 1),
                                   error=type(exc).__name__)
        except Exception as exc:  # pylint: disable=broad-except
            # Anything else is a bug in novamove: keep the one-line message, attach the trace.
            self.ansible.fail_json(msg='unexpected error: %s' % ' '.join(str(exc).split()),
                                   exception=traceback.format_exc())
        self.ansible.exit_json(**result)
