# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment(object):
    # The observe options of the modules that change the cloud: novamove's --events,
    # --metrics-textfile and --metrics-push (docs/events.md, docs/observability.md).
    DOCUMENTATION = r'''
options:
  events:
    description:
      - Path of a file to append the run's event stream to, as C(novamove --events FILE) does -
        one JSON object per journal state change (a run's start and finish, an intent, its
        outcome, a note), valid against the JSON Schema C(events.schema.json) shipped in the
        novamove package (docs/events.md of the novamove repository).
      - Created readable by its owner only. Tasks and runs append to the same file; each line
        names its C(run_id) (RV(ignore:run_id) of the task).
      - Values of the task's C(no_log) options (a hook or fence command, secrets of O(cloud))
        are masked in it as Ansible masks them in its output.
      - V(-) (stdout) is refused, stdout carries the module's result.
    type: path
  metrics_textfile:
    description:
      - Path of a node_exporter textfile (for example in the C(--collector.textfile.directory)
        of node_exporter, ending in C(.prom)) to write the run's Prometheus metrics to, as
        C(novamove --metrics-textfile) does - replaced atomically while the run goes and at its
        end, so it holds the last task's run.
      - A file that cannot be written is a warning of the task, never its failure.
    type: path
  metrics_push:
    description:
      - URL of a Prometheus Pushgateway to push the run's metrics to (job C(novamove)), as
        C(novamove --metrics-push) does. A push that fails is a warning, not a failure.
    type: str
'''
