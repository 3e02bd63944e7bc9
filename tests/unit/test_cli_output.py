"""-f table|json|yaml|value|csv, -c COLUMN, --noindent on every verb that prints rows; tables
never truncate; JSON/YAML keys follow openstacksdk attribute names. novamove.api is stubbed
(or, for drain/plan, runs over the in-memory Nova of test_planner_drain)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys

import pytest
import yaml

from novamove import api, errors, report
from novamove.cli import run
from novamove.engine.batch import drain as engine
from novamove.engine.single.result import MoveResult

LONG_HOST = "compute-rack42-row7-datacenter-frankfurt-3.example.internal"
LONG_ID = "0f2b9c4e-4f4f-4a5b-9d3c-7e1f2a3b4c5d"

HOSTS = [{"name": LONG_HOST, "hypervisor_hostname": LONG_HOST + ".hv", "zone": "nova", "status": "enabled",
          "state": "up", "disabled_reason": None, "vcpus": 8.0, "vcpus_used": 2.0, "memory_mb": 16384.0,
          "memory_mb_used": 1024.0, "disk_gb": 100.0, "disk_gb_used": 10.0},
         {"name": "x2", "hypervisor_hostname": "x2", "zone": "nova", "status": "disabled", "state": "up",
          "disabled_reason": "[novamove:r1] drain: rma", "vcpus": 8.0, "vcpus_used": 0.0, "memory_mb": 16384.0,
          "memory_mb_used": 0.0, "disk_gb": 100.0, "disk_gb_used": 0.0}]
MIGRATIONS = [{"id": "12", "uuid": LONG_ID, "server_id": LONG_ID, "type": "live-migration", "source": "c1",
               "dest": LONG_HOST, "status": "completed", "created_at": "2026-01-01T00:00:00",
               "updated_at": "2026-01-01T00:01:00"}]


@pytest.fixture(autouse=True)
def stubs(monkeypatch, tmp_path):
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))
    monkeypatch.delenv("NOVAMOVE_MAX_MICROVERSION", raising=False)
    called = []
    monkeypatch.setattr(api, "compute_hosts", lambda **k: called.append("hosts") or [dict(h) for h in HOSTS])
    monkeypatch.setattr(api, "migrations", lambda **k: called.append("migrations") or [dict(m) for m in MIGRATIONS])
    monkeypatch.setattr(api, "migrate", lambda *a, **k: called.append("migrate") or move_result())
    return called


def move_result(**kw):
    base = dict(ok=True, changed=True, server_id=LONG_ID, server_name="vm1", source="c1", dest=LONG_HOST,
                before={"host": "c1", "hypervisor_hostname": "c1", "status": "ACTIVE"},
                after={"host": LONG_HOST, "hypervisor_hostname": LONG_HOST, "status": "ACTIVE"},
                summary=f"vm1 was migrated from c1 to {LONG_HOST} and has a status of ACTIVE",
                mode="live", strategy="native", run_id="r1", migration_id="12", migration_status="completed")
    base.update(kw)
    return MoveResult(**base)


def invoke(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        run(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


# ---------------------------------------------------------------------------- formats

def test_hosts_json_uses_sdk_names(capsys):
    code, out, _ = invoke(capsys, "hosts", "-f", "json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["host"] == LONG_HOST and rows[0]["availability_zone"] == "nova"
    assert "name" not in rows[0] and "zone" not in rows[0]
    assert rows[0]["vcpus"] == 8.0 and rows[0]["vcpus_used"] == 2.0      # numbers, not "2/8"


def test_hosts_yaml_value_csv_and_columns(capsys):
    code, out, _ = invoke(capsys, "hosts", "-f", "yaml", "-c", "host", "-c", "status")
    assert yaml.safe_load(out) == [{"host": LONG_HOST, "status": "enabled"}, {"host": "x2", "status": "disabled"}]
    code, out, _ = invoke(capsys, "hosts", "-f", "value", "-c", "host", "-c", "disabled_reason")
    assert out.splitlines() == [f"{LONG_HOST} ", "x2 [novamove:r1] drain: rma"]
    code, out, _ = invoke(capsys, "hosts", "-f", "csv", "-c", "host", "-c", "vcpus_used")
    assert list(csv.reader(io.StringIO(out))) == [["host", "vcpus_used"], [LONG_HOST, "2.0"], ["x2", "0.0"]]


def test_noindent_is_compact_json(capsys):
    code, out, _ = invoke(capsys, "hosts", "-f", "json", "--noindent")
    assert code == 0 and out.count("\n") == 1 and json.loads(out)[1]["host"] == "x2"


def test_migrations_keys_follow_the_sdk_migration_resource(capsys):
    code, out, _ = invoke(capsys, "migrations", "-f", "json")
    row = json.loads(out)[0]
    assert {"migration_type", "source_compute", "dest_compute", "server_id"} <= set(row)
    assert not {"type", "source", "dest"} & set(row)
    from openstack.compute.v2.migration import Migration
    sdk_names = {name for name in dir(Migration) if not name.startswith("_")}
    assert set(row) - {"id"} <= sdk_names


def test_unknown_column_is_refused_before_the_call(capsys, stubs):
    code, _, err = invoke(capsys, "migrate", "vm1", "--to", "c2", "-q", "-c", "bogus")
    assert code == errors.EXIT_USAGE and stubs == [] and err.count("\n") == 1 and "bogus" in err
    code, _, err = invoke(capsys, "hosts", "-c", "name")
    assert code == errors.EXIT_USAGE and stubs == [] and "available: host" in err


def test_migrate_document_and_columns(capsys):
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "json")
    doc = json.loads(out)
    assert doc["source_compute"] == "c1" and doc["dest_compute"] == LONG_HOST
    assert doc["after"]["compute_host"] == LONG_HOST and "host" not in doc["after"]
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "value", "-c", "dest_compute")
    assert out == LONG_HOST + "\n"
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "csv", "-c", "server_id",
                          "-c", "migration_id")
    assert list(csv.reader(io.StringIO(out))) == [["server_id", "migration_id"], [LONG_ID, "12"]]
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-c", "server_id")
    assert LONG_ID in out and "field" in out          # a field/value table


def test_move_fields_are_the_move_result_fields():
    assert set(report.move_fields(MoveResult)) == set(report.move_document(move_result()))


def test_the_library_document_is_the_cli_document(capsys):
    """MoveResult.to_dict() is what `-f json` prints: one schema, made in novamove.report."""
    result = move_result(request_ids=["req-1"])
    assert result.to_dict() == report.move_document(result)
    doc = result.to_dict()
    assert doc["source_compute"] == "c1" and doc["dest_compute"] == LONG_HOST
    assert doc["source_node"] == "c1" and doc["dest_node"] == LONG_HOST and doc["request_ids"] == ["req-1"]
    assert doc["before"]["compute_host"] == "c1" and not {"source", "dest"} & set(doc)
    assert result.source == "c1" and result.before["host"] == "c1"        # the attributes stay


def test_nodes_are_only_derived_from_a_view_on_that_host():
    # check mode: `after` is still the source; the destination's node is not known
    doc = move_result(check_mode=True, after={"host": "c1", "hypervisor_hostname": "c1.hv"}).to_dict()
    assert doc["dest_node"] is None and doc["source_node"] == "c1"
    doc = move_result(source_node="n1", dest_node="n2").to_dict()
    assert (doc["source_node"], doc["dest_node"]) == ("n1", "n2")


def test_migrate_json_shows_request_ids_and_a_failure_names_the_last(capsys, monkeypatch):
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "json")
    assert json.loads(out)["request_ids"] == []
    failed = move_result(ok=False, error="live migration of vm1 failed: rolled back to c1",
                         exit_code=errors.EXIT_FAILED, request_ids=["req-aa", "req-bb"])
    monkeypatch.setattr(api, "migrate", lambda *a, **k: failed)
    code, out, err = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "json")
    assert code == errors.EXIT_FAILED and json.loads(out)["request_ids"] == ["req-aa", "req-bb"]
    assert err == "novamove: error: live migration of vm1 failed: rolled back to c1 (request ID req-bb)\n"
    monkeypatch.setattr(api, "migrate", lambda *a, **k: dataclasses.replace(failed, request_ids=[]))
    code, out, err = invoke(capsys, "migrate", "vm1", "--to", LONG_HOST, "-q", "-f", "json")
    assert err == "novamove: error: live migration of vm1 failed: rolled back to c1\n"


# ---------------------------------------------------------------------------- no truncation

@pytest.mark.parametrize("tty", [False, True])
def test_tables_never_truncate_on_a_narrow_terminal_or_a_pipe(capsys, monkeypatch, tty):
    monkeypatch.setenv("COLUMNS", "30")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty, raising=False)
    for argv in (["hosts"], ["migrations"], ["migrate", "vm1", "--to", LONG_HOST, "-q"]):
        code, out, _ = invoke(capsys, *argv)
        assert code == 0
        assert "…" not in out, out
        assert LONG_HOST in out, out
    code, out, _ = invoke(capsys, "migrations")
    assert LONG_ID in out


def test_values_are_not_read_as_markup(capsys):
    code, out, _ = invoke(capsys, "hosts")
    assert "[novamove:r1] drain: rma" in out


# ---------------------------------------------------------------------------- batches

@pytest.fixture
def nova(monkeypatch):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_planner_drain import Clock, typical_cloud
    fake = typical_cloud()
    fake.close = lambda: None
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **k: fake)

    class FastRunner(engine.BatchRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "BatchRunner", FastRunner)
    return fake


def test_drain_json_results_use_sdk_names_and_columns_filter_rows(capsys, nova):
    code, out, _ = invoke(capsys, "drain", "c1", "-q", "-f", "json", "--poll-interval", "0.2")
    doc = json.loads(out)
    # The ERROR server stays on c1: exit 8 (incomplete), listed in `left` with SDK names.
    assert code == errors.EXIT_INCOMPLETE and doc["summary"].startswith("drain c1: 10 moved, 1 skipped")
    assert [x["server_name"] for x in doc["left"]] == ["vm-err"] and doc["left"][0]["compute_host"] == "c1"
    assert set(doc["left"][0]) <= set(report.LEFT_COLUMNS)
    row = doc["results"][0]
    assert {"source_compute", "dest_compute", "compute_host", "server_id", "result"} <= set(row)
    assert set(row) <= set(report.STEP_COLUMNS)
    code, out, _ = invoke(capsys, "undrain", "c1", "-q", "-f", "json", "-c", "server_name", "-c", "result",
                          "--move-back", "--poll-interval", "0.2")
    doc = json.loads(out)
    assert code == 0 and all(set(r) == {"server_name", "result"} for r in doc["results"])


def test_step_columns_are_the_step_result_fields():
    from novamove.engine.batch.report import StepResult
    fields = {f.name for f in dataclasses.fields(StepResult)}
    assert set(report.STEP_COLUMNS) == {report.STEP_KEYS.get(f, f) for f in fields}


def test_run_columns_are_the_journal_columns(tmp_path):
    import sqlite3
    from novamove.engine.journal import Journal
    from novamove.engine.journal.schema import INTERNAL_RUN_COLUMNS
    Journal(tmp_path / "j.sqlite").runs()
    columns = {r[1] for r in sqlite3.connect(tmp_path / "j.sqlite").execute("PRAGMA table_info(runs)")}
    columns -= set(INTERNAL_RUN_COLUMNS)
    assert set(report.RUN_COLUMNS) == {report.RUN_KEYS.get(c, c) for c in columns}


def test_drain_table_lists_what_is_left_and_allow_unmovable_makes_it_0(capsys, nova):
    code, out, _ = invoke(capsys, "drain", "c1", "-q", "--poll-interval", "0.2")
    assert code == errors.EXIT_INCOMPLETE and "still on c1" in out and "vm-err" in out
    code, out, _ = invoke(capsys, "drain", "c1", "-q", "--poll-interval", "0.2", "--allow-unmovable",
                          "-f", "value", "-c", "server_name", "-c", "result")
    assert code == 0, out


def test_plan_value_csv_and_dry_run(capsys, nova):
    code, out, _ = invoke(capsys, "plan", "drain", "c1", "-f", "value", "-c", "server_name", "-c", "dest_compute")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 11 and all(len(line.split(" ")) == 2 for line in lines)
    code, out, _ = invoke(capsys, "drain", "c1", "--dry-run", "-f", "csv", "-c", "step", "-c", "skip_reason")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["step", "skip_reason"] and len(rows) == 12
    assert nova.migrations == []
    code, out, _ = invoke(capsys, "plan", "drain", "c1", "-f", "yaml")
    doc = yaml.safe_load(out)
    assert doc["verb"] == "plan" and doc["plan"]["steps"][0]["dest_compute"]
    assert set(doc["plan"]["steps"][0]) == set(report.PLAN_STEP_COLUMNS)


def test_drain_table_does_not_truncate(capsys, nova, monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    code, out, _ = invoke(capsys, "drain", "c1", "--dry-run")
    assert code == 0 and "…" not in out
    assert "status ERROR: Nova refuses to move it; repair or reset its state first" in out


# ---------------------------------------------------------------------------- batch progress

def test_drain_piped_prints_one_plain_line_per_event_and_feeds_the_view(capsys, nova, monkeypatch):
    import re
    seen = []
    original = report.BatchView.update
    monkeypatch.setattr(report.BatchView, "update", lambda self, p: seen.append(p) or original(self, p))
    code, out, err = invoke(capsys, "drain", "c1", "-f", "json", "--poll-interval", "0.2")
    assert code == errors.EXIT_INCOMPLETE and json.loads(out)["verb"] == "drain"
    lines = err.splitlines()
    assert lines and all(re.fullmatch(r"\d\d:\d\d:\d\d \S.*", line) for line in lines), err
    assert "█" not in err and "\x1b" not in err
    assert seen and seen[-1].verb == "drain" and seen[-1].moved == 10 and seen[-1].in_flight == 0


def test_drain_on_a_terminal_draws_the_bar_under_the_events(capsys, nova, monkeypatch):
    from rich.console import Console
    console = Console(file=io.StringIO(), record=True, force_terminal=True, width=200)

    class OnATerminal(report.BatchView):
        def __init__(self, enabled=True, **_):
            super().__init__(enabled=enabled, console=console)
    monkeypatch.setattr(report, "BatchView", OnATerminal)
    code, out, err = invoke(capsys, "drain", "c1", "-f", "json", "--poll-interval", "0.2")
    assert code == errors.EXIT_INCOMPLETE and err == ""
    text = console.export_text()
    final = "drain c1  " + text.rsplit("drain c1  ", 1)[1]
    assert " 10/10 moved · 0 in flight · " in final.splitlines()[0] and "█" in final
    assert "vm-a1: live c1 -> " in text.split("drain c1  ")[0]          # events above the bar
    code, out, err = invoke(capsys, "undrain", "c1", "-q", "-f", "json", "--poll-interval", "0.2")
    assert code == 0


# ---------------------------------------------------------------------------- OSC's words (issue 21)

def test_shell_format_is_cliff_s_with_prefix(capsys):
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", "c2", "-q", "-f", "shell", "-c", "server_name",
                          "-c", "dest_compute", "-c", "migration_id")
    assert code == 0 and out == f'server_name="vm1"\ndest_compute="{LONG_HOST}"\nmigration_id="12"\n'
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", "c2", "-q", "-f", "shell", "--prefix", "nm_",
                          "-c", "Source Compute")
    assert out == 'nm_source_compute="c1"\n'
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", "c2", "-q", "-f", "shell")
    assert f'dest_compute="{LONG_HOST}"' in out and all("=" in line for line in out.splitlines())


def test_shell_values_cannot_expand_when_evaluated():
    import subprocess
    doc = {"summary": 'a "quoted" $(echo pwned) `id` \\ end', "none": None}
    text = report.shell_lines(doc, ["summary", "none"], "x_")
    out = subprocess.run(["sh", "-c", text + 'printf "%s|%s" "$x_summary" "$x_none"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == doc["summary"] + "|"


def test_shell_format_is_refused_where_rows_are_listed_before_any_call(capsys, stubs):
    code, _, err = invoke(capsys, "hosts", "-f", "shell")
    assert code == errors.EXIT_USAGE and stubs == [] and err.count("\n") == 1 and "-f shell" in err


def test_columns_take_the_plugin_s_spelling_too(capsys):
    code, out, _ = invoke(capsys, "migrate", "vm1", "--to", "c2", "-q", "-f", "value", "-c", "Dest Compute",
                          "-c", "Migration ID", "-c", "server uuid")
    assert code == 0 and out.split() == [LONG_HOST, "12", LONG_ID]
    code, out, _ = invoke(capsys, "migrations", "-f", "json", "-c", "Type", "-c", "Source Compute")
    assert json.loads(out) == [{"migration_type": "live-migration", "source_compute": "c1"}]


def test_sort_column_is_repeatable_and_refuses_unknown_columns(capsys, stubs, monkeypatch):
    rows = [{"name": "b", "zone": "z1", "status": "enabled", "vcpus": 8},
            {"name": "a", "zone": "z2", "status": "disabled", "vcpus": 16},
            {"name": "c", "zone": "z1", "status": "disabled", "vcpus": None}]
    monkeypatch.setattr(api, "compute_hosts", lambda **k: [dict(r) for r in rows])
    code, out, _ = invoke(capsys, "hosts", "-f", "value", "-c", "host", "--sort-column", "host")
    assert out.split() == ["a", "b", "c"]
    code, out, _ = invoke(capsys, "hosts", "-f", "value", "-c", "host", "--sort-column", "Availability Zone",
                          "--sort-column", "host", "--sort-descending")
    assert out.split() == ["a", "c", "b"]
    code, out, _ = invoke(capsys, "hosts", "-f", "value", "-c", "host", "--sort-column", "vcpus",
                          "--sort-descending")
    assert out.split() == ["a", "b", "c"], "a missing value sorts last both ways"
    code, _, err = invoke(capsys, "hosts", "--sort-column", "bogus")
    assert code == errors.EXIT_USAGE and "bogus" in err and "--sort-column" in err
    code, _, err = invoke(capsys, "hosts", "--sort-column", "host", "--sort-ascending", "--sort-descending")
    assert code == errors.EXIT_USAGE and err.count("\n") == 1
