"""The migrate CLI is a thin front: exit codes and output formats, with the library stubbed."""

from __future__ import annotations

import json

import pytest

from novamove import api, errors
from novamove.cli import run
from novamove.engine.single.result import MoveResult


def invoke(monkeypatch, capsys, argv):
    monkeypatch.setattr("sys.argv", ["novamove"] + argv)
    with pytest.raises(SystemExit) as exc:
        run()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def result(**kw):
    base = dict(ok=True, changed=True, server_id="s1", server_name="vm1", source="compute1", dest="compute2",
                before={"host": "compute1", "status": "ACTIVE"}, after={"host": "compute2", "status": "ACTIVE"},
                summary="vm1 was migrated from compute1 to compute2 and has a status of ACTIVE",
                mode="live", strategy="native", run_id="r1")
    base.update(kw)
    return MoveResult(**base)


def test_success_prints_the_summary_and_exits_0(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(api, "migrate", lambda *a, **k: result())
    code, out, _ = invoke(monkeypatch, capsys, ["--journal", str(tmp_path / "j"), "migrate", "vm1",
                                                "--to", "compute2"])
    assert code == 0
    assert "vm1 was migrated from compute1 to compute2 and has a status of ACTIVE" in out


def test_json_output(monkeypatch, capsys):
    monkeypatch.setattr(api, "migrate", lambda *a, **k: result())
    code, out, _ = invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "compute2", "-f", "json"])
    assert code == 0 and json.loads(out)["after"]["compute_host"] == "compute2"


def test_failed_move_exits_1_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(api, "migrate", lambda *a, **k: result(
        ok=False, changed=False, error="live migration of vm1 failed: boom", exit_code=errors.EXIT_FAILED,
        summary="vm1 was not migrated"))
    code, _, err = invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "compute2"])
    assert code == 1 and err.strip() == "novamove: error: live migration of vm1 failed: boom"


def test_same_host_is_an_error_on_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(api, "migrate", lambda *a, **k: result(
        changed=False, summary="vm1 is already on compute2 and has a status of ACTIVE"))
    code, _, err = invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "compute2"])
    assert code == errors.EXIT_ALREADY_THERE
    assert err.strip() == "novamove: error: vm1 is already on compute2, status ACTIVE (--if-needed: exit 0)"


def test_library_errors_become_exit_codes(monkeypatch, capsys):
    def boom(*a, **k):
        raise errors.Ambiguous("2 servers are named 'vm1': a, b; use the UUID")
    monkeypatch.setattr(api, "migrate", boom)
    code, _, err = invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "compute2"])
    assert code == errors.EXIT_NOT_FOUND and err.count("\n") == 1


def test_live_and_cold_and_options_reach_the_library(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(api, "migrate", lambda s, h, **k: seen.update(k) or result())
    invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "c2", "--cold", "--no-confirm", "--no-wait",
                                 "--strategy", "isolate", "--timeout", "30", "--on-timeout", "leave"])
    assert (seen["mode"], seen["confirm"], seen["wait"], seen["strategy"], seen["timeout"],
            seen["on_timeout"]) == ("cold", False, False, "isolate", 30, "leave")


# ----------------------------------------------------------------------------- OSC's words

def _seen_by_migrate(monkeypatch, capsys, argv):
    seen = {}
    monkeypatch.setattr(api, "migrate", lambda s, h, **k: seen.update(k, server=s, host=h) or result())
    code, _, _ = invoke(monkeypatch, capsys, argv)
    assert code == 0
    return seen


def test_host_is_the_same_option_as_to(monkeypatch, capsys):
    seen = _seen_by_migrate(monkeypatch, capsys, ["migrate", "vm1", "--host", "c2"])
    assert (seen["server"], seen["host"]) == ("vm1", "c2")


def test_live_migration_is_the_same_flag_as_live(monkeypatch, capsys):
    assert _seen_by_migrate(monkeypatch, capsys, ["migrate", "vm1", "--to", "c2", "--live-migration"])["mode"] == "live"
    code, _, err = invoke(monkeypatch, capsys, ["migrate", "vm1", "--to", "c2", "--live-migration", "--cold"])
    assert code == 2 and "--live" in err


@pytest.mark.parametrize("argv", [["-q", "migrate", "vm1", "--to", "c2"], ["--quiet", "migrate", "vm1", "--to", "c2"],
                                  ["migrate", "vm1", "--to", "c2", "-q"]])
def test_root_quiet_silences_the_verbs_progress(monkeypatch, capsys, argv):
    assert _seen_by_migrate(monkeypatch, capsys, argv)["progress"].enabled is False


def test_without_quiet_the_progress_is_on(monkeypatch, capsys):
    assert _seen_by_migrate(monkeypatch, capsys, ["migrate", "vm1", "--to", "c2"])["progress"].enabled is True


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_recover_dry_run_reaches_the_library_and_lists_what_it_would_do(monkeypatch, capsys, flag):
    seen = {}
    rows = [{"run_id": "r1", "verb": "migrate", "action": "would re-enable compute2", "result": "dry-run"}]
    monkeypatch.setattr(api, "recover", lambda **k: seen.update(k) or rows)
    code, out, _ = invoke(monkeypatch, capsys, ["recover", flag, "-f", "json"])
    assert code == 0 and seen["dry_run"] is True and json.loads(out)[0]["run_id"] == "r1"


def test_recover_without_dry_run_acts(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(api, "recover", lambda **k: seen.update(k) or [])
    code, _, _ = invoke(monkeypatch, capsys, ["recover"])
    assert code == 0 and seen["dry_run"] is False


def test_without_to_the_library_gets_no_host(monkeypatch, capsys):
    seen = _seen_by_migrate(monkeypatch, capsys, ["migrate", "vm1", "--cold"])
    assert (seen["server"], seen["host"], seen["mode"]) == ("vm1", None, "cold")
