"""The operator verbs of the `openstack` plugin (novamove/osc/ops.py), novamove.api stubbed.

Each command: its options reach novamove.api as `novamove VERB` passes them, its output goes
through cliff (-f json, -c, --sort-column), its columns are `novamove -c` names title-cased,
and failures exit with novamove's codes.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("osc_lib")

from test_osc_plugin import SPEC, Calls, FakeReport, result, run_command  # noqa: E402

from novamove import api, errors, report  # noqa: E402
from novamove.osc import ops  # noqa: E402


def key_of(column: str) -> str:
    return column.lower().replace(" ", "_")


@pytest.mark.parametrize("keys", [ops.RUN_KEYS, ops.RECOVER_KEYS, ops.MAINTAIN_KEYS,
                                  ops.MAINTAIN_PLAN_KEYS, ops.CAMPAIGN_KEYS,
                                  ops.CAMPAIGN_HOST_KEYS, ops.STOP_KEYS])
def test_columns_are_novamove_column_names_title_cased(keys):
    assert [key_of(ops.osc_column(k)) for k in keys] == list(keys)
    assert ops.osc_column("run_id") == "Run ID" and ops.osc_column("source_compute") == "Source Compute"


def test_history_and_recover_have_the_columns_of_novamove_c():
    assert ops.RUN_KEYS == report.RUN_COLUMNS and ops.RECOVER_KEYS == report.RECOVER_COLUMNS


@pytest.mark.parametrize("cls, name", [(ops.ConfirmServerMove, "confirm"), (ops.RevertServerMove, "revert"),
                                       (ops.AbortServerMove, "abort"),
                                       (ops.ForceCompleteServerMove, "force_complete")])
def test_follow_ups_call_their_api_verb(monkeypatch, cls, name):
    call = Calls(result())
    monkeypatch.setattr(api, name, call)
    code, out, err = run_command(cls, ["web1", "--no-wait", "-f", "json"])
    assert code == 0 and err == ""
    [(args, kwargs)] = call.calls
    assert args == ("web1",) and kwargs == {"cloud": SPEC, "wait": False}
    assert json.loads(out)["Server Name"] == "vm1"


def test_a_follow_up_that_failed_exits_with_its_code(monkeypatch):
    monkeypatch.setattr(api, "revert", Calls(result(ok=False, exit_code=errors.EXIT_PRECONDITION,
                                                    error="vm1 is not in VERIFY_RESIZE")))
    code, _, err = run_command(ops.RevertServerMove, ["web1", "-f", "value", "-c", "Result"])
    assert code == errors.EXIT_PRECONDITION and err == "vm1 is not in VERIFY_RESIZE\n"


def test_back_passes_every_move_option(monkeypatch):
    back = Calls(result())
    monkeypatch.setattr(api, "back", back)
    code, out, _ = run_command(ops.BackServerMove, ["web1", "--cold", "--strategy", "isolate",
                                                    "--no-confirm", "--timeout", "30",
                                                    "--schedule-timeout", "9", "--dry-run",
                                                    "-f", "value", "-c", "Dest Compute"])
    assert code == 0 and out.strip() == "compute2"
    [(args, kwargs)] = back.calls
    assert args == ("web1",) and kwargs["cloud"] is SPEC
    assert {k: kwargs[k] for k in ("mode", "strategy", "confirm", "wait", "timeout", "on_timeout",
                                   "schedule_timeout", "check_mode")} == dict(
        mode="cold", strategy="isolate", confirm=False, wait=True, timeout=30.0,
        on_timeout="abort", schedule_timeout=9.0, check_mode=True)


def evac_report(**kw):
    rep = FakeReport(**kw)
    rep.fence = "compute1 fenced (fence command exited 0)"
    return rep


def test_evacuate_passes_its_options_and_lists_rows(monkeypatch):
    row = dict(server_id="u1", server_name="vm1", source="c1", dest="c2", mode="evacuate",
               result="evacuated", seconds=4.0, detail="rebuilt on c2")
    evacuate = Calls(evac_report(results=[row], summary="evacuate c1: 1 evacuated"))
    monkeypatch.setattr(api, "evacuate", evacuate)
    code, out, err = run_command(ops.EvacuateComputeHost, [
        "c1", "--fence-cmd", "ipmi off", "--to", "c2", "--power", "stopped",
        "--max-down-percent", "30", "--quiet-period", "5", "-f", "json", "-c", "Result"])
    assert code == 0 and json.loads(out) == [{"Result": "evacuated"}]
    assert err.splitlines()[0] == "compute1 fenced (fence command exited 0)"
    [(args, kwargs)] = evacuate.calls
    assert args == ("c1",) and kwargs["cloud"] is SPEC
    assert (kwargs["fence_cmd"], kwargs["targets"], kwargs["power"], kwargs["max_down_percent"],
            kwargs["quiet_period"], kwargs["fenced"], kwargs["dry_run"]) == (
        "ipmi off", ("c2",), "stopped", 30.0, 5.0, False, False)


def test_a_refused_evacuation_is_one_line_and_its_code(monkeypatch):
    monkeypatch.setattr(api, "evacuate", Calls(raises=errors.PreconditionFailed("c1 is not fenced")))
    code, out, err = run_command(ops.EvacuateComputeHost, ["c1"])
    assert (code, out, err) == (errors.EXIT_PRECONDITION, "", "c1 is not fenced\n")


def test_unfence_passes_move_back_and_exits_with_the_report_code(monkeypatch):
    unfence = Calls(evac_report(ok=False, exit_code=errors.EXIT_FAILED, summary="unfence c1: 1 failed"))
    monkeypatch.setattr(api, "unfence", unfence)
    code, _, err = run_command(ops.UnfenceComputeHost, ["c1", "--move-back", "--wait", "5"])
    assert code == errors.EXIT_FAILED and "unfence c1: 1 failed" in err
    kwargs = unfence.calls[0][1]
    assert kwargs["move_back"] is True and kwargs["wait"] == 5.0 and kwargs["cloud"] is SPEC


class CampaignReport(SimpleNamespace):
    def to_dict(self):
        return self.data


def test_maintain_rows_per_host_and_options(monkeypatch):
    host = dict(host="c1", outcome="done", stage="enable", moved=2, stopped=["db1"], hook_exit=0,
                hook_seconds=12.0, gate="up", check_exit=None, moved_back=0, seconds=40.0, detail="")
    maintain = Calls(CampaignReport(ok=True, exit_code=0, dry_run=False, summary="maintain: 1 done",
                                    data={"results": [host]}))
    monkeypatch.setattr(api, "maintain", maintain)
    code, out, err = run_command(ops.MaintainComputeHosts, [
        "c1", "--hook", "reboot.sh", "--max-hosts", "2", "--move-back", "--timeout", "60",
        "-f", "json", "-c", "Host", "-c", "Outcome", "-c", "Stopped"])
    assert code == 0 and json.loads(out) == [{"Host": "c1", "Outcome": "done", "Stopped": "db1"}]
    assert err == "maintain: 1 done\n"
    [(args, kwargs)] = maintain.calls
    assert args == (["c1"],) and kwargs["cloud"] is SPEC
    assert (kwargs["hook"], kwargs["max_hosts"], kwargs["move_back"], kwargs["step_timeout"],
            kwargs["dry_run"]) == ("reboot.sh", 2, True, 60.0, False)


def test_maintain_dry_run_lists_the_plan_and_refusal_exits_4(monkeypatch):
    plan = {"host_plans": [dict(name="c1", stage=1, servers=3, moves=3, stop=[], skip=[],
                                estimate_seconds=90.0, serviced=True, why_not="")]}
    monkeypatch.setattr(api, "maintain", Calls(CampaignReport(
        ok=False, exit_code=errors.EXIT_PRECONDITION, dry_run=True, summary="N+1 does not fit",
        data={"plan": plan})))
    code, out, err = run_command(ops.MaintainComputeHosts, ["--all", "--dry-run", "-f", "json"])
    assert code == errors.EXIT_PRECONDITION and err == "N+1 does not fit\n"
    assert json.loads(out)[0]["Name"] == "c1" and json.loads(out)[0]["Estimate Seconds"] == 90.0


def test_maintain_needs_hosts_or_a_selection():
    code, out, err = run_command(ops.MaintainComputeHosts, [])
    assert code == errors.EXIT_USAGE and "name the hosts to maintain" in err


def test_campaign_status_lists_runs_or_one_run_s_hosts(monkeypatch):
    runs = [dict(run_id="r2", status="ok", started_at="2026-12-01T10:00", finished_at=None,
                 started_by="alice@bastion-a", taken_over_by="bob@bastion-b", taken_over_at="2026-12-01T11:00",
                 hosts=["c1", "c2"], summary="2 done",
                 host_state={"c1": {"outcome": "done", "hook": "exit 0"}})]
    status = Calls(runs)
    monkeypatch.setattr(api, "campaign_status", status)
    code, out, _ = run_command(ops.CampaignStatus, ["-f", "json"])
    assert code == 0 and json.loads(out)[0]["Hosts"] == "c1, c2"
    assert json.loads(out)[0]["Taken Over By"] == "bob@bastion-b"
    code, out, err = run_command(ops.CampaignStatus, ["r2", "-f", "json"])
    assert json.loads(out) == [{"Host": "c1", "Outcome": "done", "Hook": "exit 0",
                                "Hook Started": None, "Detail": None}]
    assert status.calls[-1][0] == ("r2",) and err.startswith("campaign r2: ok")
    assert "by alice@bastion-a; taken over by bob@bastion-b at 2026-12-01T11:00" in err


def test_campaign_stop_shows_the_run_and_refusals_keep_their_code(monkeypatch):
    monkeypatch.setattr(api, "campaign_stop", Calls(dict(id="r2", pid=42, status="running",
                                                         verb="maintain")))
    code, out, _ = run_command(ops.CampaignStop, ["r2", "-f", "json"])
    assert code == 0 and json.loads(out) == {"ID": "r2", "PID": 42, "Status": "running",
                                             "Verb": "maintain"}
    monkeypatch.setattr(api, "campaign_stop", Calls(raises=errors.NotFound("no maintain run 'x'")))
    assert run_command(ops.CampaignStop, ["x"])[0] == errors.EXIT_NOT_FOUND


def test_history_passes_the_limit_and_sorts_with_cliff(monkeypatch):
    history = Calls([dict(id="r1", verb="migrate", source="c1", dest="c2", status="ok"),
                     dict(id="r2", verb="drain", source="c3", dest=None, status="ok")])
    monkeypatch.setattr(api, "history", history)
    code, out, _ = run_command(ops.History, ["--limit", "5", "-f", "json", "-c", "ID",
                                             "-c", "Source Compute", "--sort-column", "Verb"])
    assert code == 0
    assert json.loads(out) == [{"ID": "r2", "Source Compute": "c3"}, {"ID": "r1", "Source Compute": "c1"}]
    assert history.calls[0][1] == {"limit": 5}


def test_recover_options_and_break_lock_needs_run(monkeypatch):
    recover = Calls([dict(run_id="r1", verb="migrate", server="vm1", status_before="running",
                          summary="re-enabled c2")])
    monkeypatch.setattr(api, "recover", recover)
    code, out, _ = run_command(ops.Recover, ["--run", "r1", "--no-confirm", "--break-lock",
                                             "-f", "value", "-c", "Summary"])
    assert code == 0 and out.strip() == "re-enabled c2"
    assert recover.calls[0][1] == dict(run_id="r1", confirm=False, break_lock=True, dry_run=False,
                                       cloud=SPEC)
    code, _, _ = run_command(ops.Recover, ["--dry-run"])
    assert code == 0 and recover.calls[1][1]["dry_run"] is True
    code, _, err = run_command(ops.Recover, ["--break-lock"])
    assert code == errors.EXIT_USAGE and "--break-lock needs --run" in err


# ---------------------------------------------------------------------------- doctor

def doctor_report(fix=False, classes=None, leaked_fixed=True):
    """A real DoctorReport (engine.doctor.run) with one finding, and after --fix its repair."""
    from novamove.engine.doctor import DoctorReport, ScanStats
    from novamove.engine.doctor.findings import finding
    from novamove.engine.doctor.repair import FIXED, FAILED, Repair
    leak = finding("migration-allocation-leaked", "migration 7 of s1 is completed but its consumer still holds c1",
                   "openstack resource provider allocation delete mig-7", server_id="s1", host="c1",
                   evidence={"consumer": "mig-7", "migration_id": "7"})
    held = finding("compute-held", "c3 is kept disabled by finished novamove drain run ab", "novamove undrain c3",
                   host="c3", evidence={"run_id": "ab"})
    rep = DoctorReport([leak, held], ScanStats({"services": 1, "servers": 2}, 0.4), fix=fix, classes=classes)
    if fix:
        rep.run_id = "r9"
        rep.repairs = [Repair("migration-allocation-leaked", "mig-7", "delete the allocations of consumer mig-7",
                              FIXED if leaked_fixed else FAILED, "read back: no allocations", undo="PUT ...")]
        rep.left = [held] if leaked_fixed else [leak, held]
    return rep


def test_doctor_keys_are_novamove_doctor_s_json_keys():
    from novamove.report import doctor_rows
    assert set(ops.DOCTOR_KEYS) == set(doctor_rows(doctor_report())[0])
    assert set(ops.DOCTOR_FIX_KEYS) == set(doctor_rows(doctor_report(fix=True))[0])
    assert [key_of(ops.osc_column(k)) for k in ops.DOCTOR_FIX_KEYS] == list(ops.DOCTOR_FIX_KEYS)


def test_doctor_reports_with_the_columns_of_novamove_doctor_json(monkeypatch):
    call = Calls(doctor_report())
    monkeypatch.setattr(api, "doctor", call)
    code, out, err = run_command(ops.Doctor, ["--host", "c1", "--host", "c3", "--server", "vm1",
                                              "--older-than", "0", "-f", "json"])
    assert code == errors.EXIT_FINDINGS                  # findings left: 10, as novamove doctor
    [(args, kwargs)] = call.calls
    assert kwargs == dict(hosts=["c1", "c3"], servers=["vm1"], older_than=0.0, fix=False, fix_classes=None,
                          progress=None, cloud=SPEC)
    rows = json.loads(out)
    assert [list(r) for r in rows] == [[ops.osc_column(k) for k in ops.DOCTOR_KEYS]] * 2
    assert rows[0]["Class"] == "migration-allocation-leaked" and rows[0]["Server ID"] == "s1"
    assert rows[0]["Evidence"] == {"consumer": "mig-7", "migration_id": "7"} and rows[1]["Level"] == "info"
    assert "scan: 3 API requests" in err and "doctor: 1 finding(s), 1 for information" in err


def test_doctor_fix_names_classes_and_exits_0_when_read_back_clean(monkeypatch):
    call = Calls(doctor_report(fix=True, classes=["migration-allocation-leaked"]))
    monkeypatch.setattr(api, "doctor", call)
    code, out, err = run_command(ops.Doctor, ["--fix", "migration-allocation-leaked", "-f", "value",
                                              "-c", "Class", "-c", "Repair", "-c", "Left"])
    assert code == 0, err
    [(args, kwargs)] = call.calls
    assert kwargs["fix"] is True and kwargs["fix_classes"] == ["migration-allocation-leaked"]
    assert callable(kwargs["progress"])
    assert out.splitlines() == ["migration-allocation-leaked fixed False", "compute-held None True"]
    assert "run r9" in err


def test_doctor_metrics_count_the_findings_left_by_class(monkeypatch, tmp_path):
    """--metrics-textfile: novamove_doctor_findings by class, as `novamove doctor` writes it."""
    monkeypatch.setattr(api, "doctor", Calls(doctor_report(fix=True)))
    code, _, err = run_command(ops.Doctor, ["--fix", "--metrics-textfile", str(tmp_path / "m.prom"), "-f", "json"])
    assert code == 0, err
    assert 'novamove_doctor_findings{class="compute-held"} 1.0' in (tmp_path / "m.prom").read_text()


def test_doctor_a_repair_that_did_not_take_exits_1_with_its_summary(monkeypatch):
    monkeypatch.setattr(api, "doctor", Calls(doctor_report(fix=True, leaked_fixed=False)))
    code, out, err = run_command(ops.Doctor, ["--fix", "-f", "json"])
    assert code == errors.EXIT_FAILED and "1 failed" in err
    assert json.loads(out)[0]["Repair"] == "failed" and json.loads(out)[0]["Left"] is True


@pytest.mark.parametrize("argv, says", [
    (["verify-resize-forgotten"], "add --fix"),
    (["--fix", "nosuch-class"], "unknown drift class 'nosuch-class'"),
    (["--older-than", "-1"], "--older-than must be a number of seconds >= 0"),
])
def test_doctor_bad_input_is_one_line_exit_2_before_connecting(monkeypatch, argv, says):
    from novamove.api import cloud_adapter
    monkeypatch.setattr(cloud_adapter, "connect", Calls(raises=AssertionError("connected")))
    code, out, err = run_command(ops.Doctor, argv)
    assert code == errors.EXIT_USAGE and out == "" and len(err.splitlines()) == 1 and says in err, err
