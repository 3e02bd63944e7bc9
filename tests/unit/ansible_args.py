"""`patch_module_args` for the module tests on every ansible-core the collection supports.

ansible-core 2.19 ships it (ansible.module_utils.testing); before that a module reads its
arguments from ansible.module_utils.basic._ANSIBLE_ARGS, which this sets the same way, so
`make test-floor` runs the module tests on the floor, ansible-core 2.16.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:     # ansible-core < 2.19
    @contextmanager
    def patch_module_args(args=None):
        from ansible.module_utils import basic
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args or {})}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

__all__ = ["patch_module_args"]
