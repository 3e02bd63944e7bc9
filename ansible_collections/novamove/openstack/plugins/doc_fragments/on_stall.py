# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment(object):
    # novamove's --on-stall, on every module whose moves can be live (ON_STALL_ARGUMENT_SPEC in
    # module_utils/novamove_module.py; docs/reference.md "Live migrations that stall").
    DOCUMENTATION = r'''
options:
  on_stall:
    description:
      - What to do with a live migration that stops converging (its remaining memory does not
        drop over E(NOVAMOVE_STALL_WINDOW) seconds, default 30, or grows again).
      - V(force-complete) pauses the guest for the last copy (or switches to post-copy where the
        cloud permits it), V(abort) aborts it (a drain retries once on another host), V(cold)
        aborts it and moves the server cold, V(leave) only reports it.
      - Servers tagged C(novamove:maintenance=live) are never moved cold; C(=live-strict) are never
        force-completed (aborted, they stay and are reported).
    type: str
    choices: [force-complete, abort, cold, leave]
    default: force-complete
'''
