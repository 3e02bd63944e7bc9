#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: novamove developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cloud_doctor
short_description: Find (and repair) the drift failed migrations leave behind (novamove doctor)
version_added: 0.2.0
description:
  - Scans the whole cloud through Nova's and Placement's APIs (no database access) for the drift
    failed or interrupted migrations leave behind, as C(novamove doctor) does - servers forgotten
    in VERIFY_RESIZE, task states stuck, migration records stuck, leaked or misplaced Placement
    allocations, computes forced down while reporting or left disabled by a dead novamove run.
  - Each finding has a stable class name, its evidence and its exact repair (the classes are
    listed in docs/doctor.md of the novamove repository).
  - With O(fix), repairs the classes named there through the public APIs, each journaled first
    and read back, then scans again; classes that need the database or the hypervisor are only
    reported, with the command an operator would run.
  - Findings left are not a failure (see RV(clean) and RV(exit_code)); a repair that did not take
    is.
author:
  - novamove developers (@novamove)
extends_documentation_fragment:
  - novamove.openstack.connection
  - novamove.openstack.observe
options:
  fix:
    description:
      - What to repair. Empty (the default) only reports.
      - V(safe) alone repairs the classes C(novamove doctor --fix) repairs with no class name
        (those that change no tenant's server, for example V(migration-allocation-leaked) and
        V(compute-isolation-left)).
      - Class names repair those classes' repairable findings, one-way ones included (for example
        V(verify-resize-forgotten), V(task-state-stuck), V(consumer-unknown)), as
        C(novamove doctor --fix CLASS ...).
      - An unknown class, or one only an operator repairs, fails with exit code 2 before anything
        is read or changed.
    type: list
    elements: str
    default: []
  hosts:
    description:
      - Only findings about these compute hosts. An unknown host fails (exit code 3), nothing
        changed.
    type: list
    elements: str
    default: []
    aliases: [host]
  servers:
    description:
      - Only findings about these servers (UUID or name). An unknown server fails (exit code 3).
    type: list
    elements: str
    default: []
    aliases: [server]
  older_than:
    description:
      - Servers in VERIFY_RESIZE and non-terminal migration records older than this many seconds
        are drift; V(0) flags every one. Must be a number >= 0.
    type: float
  journal:
    description:
      - The novamove journal; the library's default when unset (C($NOVAMOVE_JOURNAL), else the
        one in the user's state directory). The repairs are journaled there, and it tells which
        novamove runs are over.
    type: path
attributes:
  check_mode:
    support: full
    description: Reports only, never repairs; RV(ignore:changed) says whether O(fix) would repair something.
  diff_mode:
    support: none
    description: The repairs are listed in RV(repairs).
'''

EXAMPLES = r'''
- name: What drift is there?
  novamove.openstack.cloud_doctor:
    cloud: mycloud
  register: drift

- name: Repair what is safe (leaked allocations, isolation windows left behind)
  novamove.openstack.cloud_doctor:
    cloud: mycloud
    fix: [safe]

- name: Confirm the resizes nobody confirmed for a day, on two hosts
  novamove.openstack.cloud_doctor:
    cloud: mycloud
    fix: [verify-resize-forgotten]
    hosts: [compute1, compute2]
    older_than: 86400
'''

RETURN = r'''
findings:
  description:
    - One row per finding of the first scan, with the keys of C(novamove doctor -f json)
      (docs/doctor.md); after a repair also C(repair), C(repair_detail), C(repair_action),
      C(one_way), C(undo), C(request_id) and C(left).
  returned: always
  type: list
  elements: dict
  contains:
    class:
      description: The drift class name.
      type: str
      sample: migration-allocation-leaked
    server_id:
      description: The server it is about, or null.
      type: str
    host:
      description: The compute host it is about, or null.
      type: str
      sample: compute1
    level:
      description: V(drift), or V(info) for information only.
      type: str
    repairable:
      description: Whether a repair through the public APIs can fix it.
      type: bool
    safe:
      description: Whether O(fix=[safe]) repairs it.
      type: bool
    detail:
      description: One line, what is wrong.
      type: str
    fix:
      description: The exact repair command or action.
      type: str
    evidence:
      description: Ids, hosts, statuses and Nova's timestamps behind the finding.
      type: dict
    repair:
      description: After a repair, V(fixed), V(failed), V(skipped), or null (not repaired).
      type: str
    repair_detail:
      description: What the repair read back, or why it was not made.
      type: str
    repair_action:
      description: The repair made, or null.
      type: str
    one_way:
      description: Whether the repair cannot be undone.
      type: bool
    undo:
      description: How to undo the repair, or null.
      type: str
    request_id:
      description: Nova's or Placement's request ID of the repair, when known.
      type: str
    left:
      description: Whether the scan after the repairs still finds it.
      type: bool
repairs:
  description: The repairs made (C(class), C(target), C(action), C(outcome), C(detail), C(one_way), C(undo), C(request_id)).
  returned: always
  type: list
  elements: dict
would_fix:
  description: In check mode, the findings (class and server or host) O(fix) would repair.
  returned: always
  type: list
  elements: dict
left:
  description: What the scan after the repairs still finds (the same keys as a finding), or null when nothing was repaired.
  returned: always
  type: list
  elements: dict
clean:
  description: True when no drift is left (information-only findings aside).
  returned: always
  type: bool
exit_code:
  description: C(novamove doctor)'s exit code - 0 clean, 10 findings left, 1 a repair did not take.
  returned: always
  type: int
summary:
  description: The one-line summary C(novamove doctor) prints.
  returned: always
  type: str
  sample: "doctor --fix: 2 finding(s); 2 fixed; 0 left after a new scan"
run_id:
  description: The journal run of the repairs, or null when nothing was repaired.
  returned: always
  type: str
requests:
  description: API requests the first scan made, per kind of read.
  returned: always
  type: dict
'''

from ansible_collections.novamove.openstack.plugins.module_utils.novamove_module import (
    NovamoveModule,
    novamove_api,
    novamove_report,
)

SAFE = 'safe'


def _target(row):
    return dict((k, row.get(k)) for k in ('class', 'server_id', 'host'))


class CloudDoctorModule(NovamoveModule):
    observed = True       # changes the cloud: events, metrics_textfile, metrics_push
    argument_spec = dict(
        fix=dict(type='list', elements='str', default=[]),
        hosts=dict(type='list', elements='str', default=[], aliases=['host']),
        servers=dict(type='list', elements='str', default=[], aliases=['server']),
        older_than=dict(type='float'),
        journal=dict(type='path'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def _classes(self):
        """(repair?, the class names or None for the safe set), checked before any read."""
        fix = list(self.params['fix'] or [])
        if not fix:
            return False, None
        if SAFE in fix:
            if len(fix) > 1:
                self.ansible.fail_json(msg="fix: %r stands alone (it means the classes --fix repairs with "
                                           "no name); list class names instead" % SAFE,
                                       exit_code=2, error='UsageError')
            return True, None
        novamove_api.doctor_classes(fix)      # an unknown or operator-only class: one line, exit 2
        return True, fix

    def run(self):
        p = self.params
        repair, classes = self._classes()
        check = self.ansible.check_mode
        report = novamove_api.doctor(hosts=p['hosts'], servers=p['servers'], older_than=p['older_than'],
                                     fix=repair and not check, fix_classes=None if check else classes,
                                     journal_path=p['journal'], **dict(self.connection, **self.observing))
        rows = novamove_report.doctor_rows(report)
        if self.observation is not None:      # findings left, by class, as `novamove doctor` counts them
            self.observation.doctor_findings([f.to_dict()['class'] for f in report.remaining])
        would = []
        if check and repair:
            would = [_target(r) for r in rows
                     if (r['safe'] if classes is None else r['class'] in classes and r['repairable'])]
        result = dict(
            changed=bool(would) if check else any(r.outcome == 'fixed' for r in report.repairs),
            findings=rows, repairs=[r.to_dict() for r in report.repairs], would_fix=would,
            left=None if report.left is None else [f.to_dict() for f in report.left],
            clean=not report.drift_left, exit_code=report.exit_code, summary=report.summary,
            run_id=report.run_id, requests=dict(report.stats.requests))
        if report.exit_code == 1:          # a repair was attempted and did not take
            self.ansible.fail_json(msg=report.summary, **result)
        return result


def main():
    CloudDoctorModule()()


if __name__ == '__main__':
    main()
