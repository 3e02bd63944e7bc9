"""The cloud_doctor Ansible module, run in-process over the real library against the one fake
Nova (tests/unit/fakenova.py): check mode only reports, `fix` names what is repaired, bad class
names fail before anything is read, and findings carry the keys of `novamove doctor -f json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("ansible")

from ansible_args import patch_module_args  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ansible_collections.novamove.openstack.plugins.modules import cloud_doctor  # noqa: E402
from novamove import report  # noqa: E402
from tests.unit.fakenova import FakeNova  # noqa: E402
from tests.unit.test_doctor_repair import leaked, unconfirmed  # noqa: E402


@pytest.fixture
def nova(monkeypatch, tmp_path):
    from novamove import api
    fake = FakeNova()
    fake.close = lambda: None
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **kw: fake)
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))
    monkeypatch.delenv("NOVAMOVE_FAULT", raising=False)
    fake.consumer = leaked(fake)                  # safe: plain fix repairs it
    unconfirmed(fake)                             # one-way: only when named
    return fake


def run(args, capsys):
    with patch_module_args({"cloud": "mycloud", **args}), pytest.raises(SystemExit) as exited:
        cloud_doctor.main()
    return exited.value.code != 0, json.loads(capsys.readouterr().out)


def test_report_only_by_default_with_the_keys_of_doctor_json(nova, capsys):
    failed, res = run({}, capsys)
    assert not failed and not res["changed"] and res["repairs"] == [] and res["left"] is None
    assert sorted(f["class"] for f in res["findings"]) == ["migration-allocation-leaked", "verify-resize-forgotten"]
    assert all(set(f) == set(report.DOCTOR_FINDING_KEYS) for f in res["findings"])
    assert res["clean"] is False and res["exit_code"] == 10 and res["summary"].startswith("doctor: 2 finding(s)")
    assert nova.placement[nova.consumer]["alloc"] and nova.servers["s1"].status == "VERIFY_RESIZE"


def test_check_mode_reports_what_fix_would_repair_and_changes_nothing(nova, capsys):
    failed, res = run({"fix": ["safe"], "_ansible_check_mode": True}, capsys)
    assert not failed and res["changed"] is True and res["repairs"] == [] and res["run_id"] is None
    assert res["would_fix"] == [{"class": "migration-allocation-leaked", "server_id": "s2", "host": "c1"}]
    failed, res = run({"fix": ["verify-resize-forgotten"], "_ansible_check_mode": True}, capsys)
    assert res["would_fix"] == [{"class": "verify-resize-forgotten", "server_id": "s1", "host": "c2"}]
    assert nova.placement[nova.consumer]["alloc"] and nova.servers["s1"].status == "VERIFY_RESIZE"
    assert not any(c.startswith(("delete", "confirm")) for c in nova.calls)


def test_fix_safe_repairs_only_the_safe_classes(nova, capsys):
    failed, res = run({"fix": ["safe"]}, capsys)
    assert not failed and res["changed"] is True and res["run_id"]
    assert [(r["class"], r["outcome"]) for r in res["repairs"]] == [("migration-allocation-leaked", "fixed")]
    assert [f["class"] for f in res["left"]] == ["verify-resize-forgotten"] and res["exit_code"] == 10
    assert nova.placement[nova.consumer]["alloc"] == {} and nova.servers["s1"].status == "VERIFY_RESIZE"
    leak = next(f for f in res["findings"] if f["class"] == "migration-allocation-leaked")
    assert (leak["repair"], leak["left"]) == ("fixed", False)
    assert set(leak) == set(report.DOCTOR_FINDING_KEYS + report.DOCTOR_REPAIR_KEYS)


def test_fix_named_classes_and_a_clean_cloud_after(nova, capsys):
    failed, res = run({"fix": ["verify-resize-forgotten", "migration-allocation-leaked"]}, capsys)
    assert not failed and res["changed"] and res["clean"] and res["exit_code"] == 0 and res["left"] == []
    assert sorted(r["outcome"] for r in res["repairs"]) == ["fixed", "fixed"]
    assert nova.servers["s1"].status == "ACTIVE"


def test_a_repair_that_does_not_take_fails_the_task(nova, capsys):
    nova.delete_consumer_allocations = lambda *a, **kw: None      # answers, changes nothing
    failed, res = run({"fix": ["safe"]}, capsys)
    assert failed and res["exit_code"] == 1 and res["msg"] == res["summary"] and "1 failed" in res["msg"]


@pytest.mark.parametrize("fix, says, code", [
    (["nosuch"], "unknown drift class 'nosuch'", 2),
    (["migration-stuck"], "repaired by an operator", 2),
    (["safe", "consumer-unknown"], "'safe' stands alone", 2),
])
def test_bad_class_names_fail_in_one_line_before_any_read(nova, capsys, fix, says, code):
    calls = len(nova.calls)
    failed, res = run({"fix": fix}, capsys)
    assert failed and res["exit_code"] == code and says in res["msg"] and "\n" not in res["msg"]
    assert len(nova.calls) == calls


def test_an_unknown_host_fails_with_exit_3_and_nothing_changed(nova, capsys):
    failed, res = run({"fix": ["safe"], "hosts": ["nosuch"]}, capsys)
    assert failed and res["exit_code"] == 3 and "no compute host 'nosuch'" in res["msg"]
    assert nova.placement[nova.consumer]["alloc"]


def test_return_docs_name_what_the_module_returns(nova, capsys):
    import yaml
    doc = yaml.safe_load(cloud_doctor.RETURN)
    _, res = run({"fix": ["safe"]}, capsys)
    assert set(res) - {"changed", "invocation"} <= set(doc)
    assert set(doc["findings"]["contains"]) == set(report.DOCTOR_FINDING_KEYS + report.DOCTOR_REPAIR_KEYS)


def test_documentation_parses_and_lists_every_option():
    import yaml
    doc = yaml.safe_load(cloud_doctor.DOCUMENTATION)
    assert set(doc["options"]) == set(cloud_doctor.CloudDoctorModule.argument_spec)
    assert yaml.safe_load(cloud_doctor.EXAMPLES)
