"""The `openstack` CLI plugin (novamove.osc), run in-process with novamove.api stubbed.

What is checked here is the plugin's own job: it is registered where OSC looks, it hands
novamove.api the connection OSC made, its options parse as documented, its output goes through
cliff's formatters, and failures give novamove's one-line message and exit code. The real runs
against a cloud are tests/acceptance/test_osc_plugin.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("osc_lib")

from novamove import api, errors  # noqa: E402
from novamove.engine.single.result import MoveResult  # noqa: E402
from novamove.osc import plugin, v1  # noqa: E402

COMMANDS = {"server_move": "MoveServer", "server_migration_wait": "WaitServerMigration",
            "compute_host_drain": "DrainComputeHost", "compute_host_undrain": "UndrainComputeHost"}
# the operator verbs of novamove/osc/ops.py (tests/unit/test_osc_ops.py)
OPS_COMMANDS = {"server_move_back": "BackServerMove", "server_move_confirm": "ConfirmServerMove",
                "server_move_revert": "RevertServerMove", "server_move_abort": "AbortServerMove",
                "server_move_force_complete": "ForceCompleteServerMove",
                "compute_host_evacuate": "EvacuateComputeHost",
                "compute_host_unfence": "UnfenceComputeHost",
                "compute_host_maintain": "MaintainComputeHosts",
                "compute_host_campaign_status": "CampaignStatus",
                "compute_host_campaign_stop": "CampaignStop",
                "novamove_history": "History", "novamove_recover": "Recover",
                "novamove_doctor": "Doctor"}
# `openstack novamove rebalance` (novamove/osc/rebalance.py)
OTHER_COMMANDS = {"novamove_rebalance": "novamove.osc.rebalance:Rebalance"}
ROOT = Path(__file__).resolve().parents[2]


def _declared_group() -> dict:
    """The openstack.novamove.v1 entry points pyproject.toml declares (what an install registers)."""
    tomllib = pytest.importorskip("tomllib")         # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"]["openstack.novamove.v1"])


def _installed_from_this_tree() -> bool:
    """Whether the installed novamove's metadata was made from this source tree (an editable
    install of another checkout, e.g. a worktree beside it, registers that one's commands)."""
    from importlib.metadata import distribution
    try:
        url = json.loads(distribution("novamove").read_text("direct_url.json") or "{}").get("url", "")
    except Exception:
        return True
    return not url.startswith("file://") or Path(url[len("file://"):]).resolve() == ROOT


def result(**kw):
    base = dict(ok=True, changed=True, server_id="s1", server_name="vm1", source="compute1",
                dest="compute2", before={"host": "compute1", "status": "ACTIVE"},
                after={"host": "compute2", "hypervisor_hostname": "compute2.example.org",
                       "status": "ACTIVE", "power_state": "RUNNING"},
                summary="vm1 was migrated from compute1 to compute2 and has a status of ACTIVE",
                mode="live", strategy="native", run_id="r1", migration_id="7",
                migration_status="completed")
    base.update(kw)
    return MoveResult(**base)


class FakeReport:
    def __init__(self, ok=True, results=(), dry_run=False, plan=None, summary="drain c1: 1 moved",
                 service="c1 disabled (novamove:ab: drain)", exit_code=0):
        self.ok, self.dry_run, self.summary, self.service = ok, dry_run, summary, service
        self.exit_code = exit_code
        self._data = dict(dry_run=dry_run, results=list(results), plan=plan)

    def to_dict(self):
        return self._data


class Calls:
    def __init__(self, answer=None, raises=None):
        self.answer, self.raises, self.calls = answer, raises, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.raises:
            raise self.raises
        return self.answer


SPEC = api.ConnectionSpec(sdk_connection=object())


def run_command(cls, argv, *, debug=False, quiet=False):
    """Parse and run one plugin command as OSC would; (exit code, stdout, stderr)."""
    app = SimpleNamespace(client_manager=SimpleNamespace(novamove=SPEC), stdout=io.StringIO(),
                          stderr=io.StringIO(),
                          options=SimpleNamespace(debug=debug, verbose_level=0 if quiet else 1))
    cmd = cls(app, None)
    parsed = cmd.get_parser("openstack test").parse_args(argv)
    code = cmd.run(parsed)
    return code, app.stdout.getvalue(), app.stderr.getvalue()


def parse(cls, argv):
    app = SimpleNamespace(client_manager=None, stdout=io.StringIO(), stderr=io.StringIO(),
                          options=SimpleNamespace(debug=False, verbose_level=1))
    return cls(app, None).get_parser("openstack test").parse_args(argv)


# ------------------------------------------------------------------ registration and connection

def test_registered_where_openstackclient_looks():
    [ext] = [ep for ep in entry_points(group="openstack.cli.extension") if ep.name == "novamove"]
    assert ext.value == "novamove.osc.plugin"
    want = {**{name: f"novamove.osc.v1:{cls}" for name, cls in COMMANDS.items()},
            **{name: f"novamove.osc.ops:{cls}" for name, cls in OPS_COMMANDS.items()}, **OTHER_COMMANDS}
    assert _declared_group() == want
    if _installed_from_this_tree():
        group = {ep.name: ep.value for ep in entry_points(group="openstack.novamove.v1")}
        assert group == want, "installed entry points differ from pyproject.toml: pip install -e . again"
    for name, cls in COMMANDS.items():
        assert getattr(v1, cls).__doc__
    from novamove.osc import ops
    for name, cls in OPS_COMMANDS.items():
        assert getattr(ops, cls).__doc__
    from novamove.osc import rebalance
    assert rebalance.Rebalance.__doc__
    # OSC builds the command group name from these: openstack.<API_NAME>.v<major>
    assert f"openstack.{plugin.API_NAME}.v{plugin.DEFAULT_API_VERSION}" == "openstack.novamove.v1"
    assert plugin.API_VERSION_OPTION == "os_novamove_api_version"


def test_plugin_module_stays_light():
    """OSC imports the plugin module on every `openstack` run: it must not pull in novamove."""
    code = ("import sys, novamove.osc.plugin; "
            "print(sorted(m for m in sys.modules if m.startswith(('novamove.api', 'novamove.engine', "
            "'novamove.cloud', 'openstack', 'osc_lib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_openstack_finds_the_commands():
    openstack = Path(sys.executable).with_name("openstack")
    if not openstack.exists():
        pytest.skip("python-openstackclient is not installed in this venv")
    for words in (["server", "move"], ["server", "migration", "wait"], ["compute", "host", "drain"],
                  ["compute", "host", "undrain"], ["server", "move", "back"],
                  ["server", "move", "force", "complete"], ["compute", "host", "maintain"],
                  ["compute", "host", "campaign", "status"], ["novamove", "recover"],
                  *([["novamove", "doctor"]] if _installed_from_this_tree() else [])):
        proc = subprocess.run([str(openstack), *words, "--help"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"usage: openstack {' '.join(words)}" in proc.stdout


def test_api_version_option():
    import argparse
    parser = plugin.build_option_parser(argparse.ArgumentParser())
    assert parser.parse_args(["--os-novamove-api-version", "1"]).os_novamove_api_version == "1"


@pytest.mark.parametrize("given, ceiling", [(None, None), ("", None), ("2", None), ("latest", None),
                                            ("2.60", "2.60"), (2.79, "2.79"), (" 2.1 ", "2.1")])
def test_compute_api_version_is_a_ceiling_only_when_chosen(given, ceiling):
    assert plugin.compute_api_ceiling(given) == ceiling


def test_make_client_reuses_the_connection_osc_made():
    session = SimpleNamespace(additional_user_agent=[("openstacksdk", "4")])
    conn = SimpleNamespace(session=session)
    instance = SimpleNamespace(sdk_connection=None, _api_version={"compute": "2.1"},
                               _cli_options=SimpleNamespace(config={"compute_api_version": "2.60"}))
    instance.setup_auth = lambda: setattr(instance, "sdk_connection", conn)
    spec = plugin.make_client(instance)
    assert isinstance(spec, api.ConnectionSpec)
    assert spec.sdk_connection is conn and spec.compute_api_version == "2.60"
    assert spec.cloud is None and spec.auth is None      # nothing read again from clouds.yaml
    assert [name for name, _ in session.additional_user_agent] == ["openstacksdk", "novamove"]
    plugin.make_client(instance)                           # the User-Agent says it once
    assert [name for name, _ in session.additional_user_agent] == ["openstacksdk", "novamove"]
    # OSC's fallback "2.1" (nothing chosen) is not taken as a ceiling
    instance._cli_options.config = {}
    assert plugin.make_client(instance).compute_api_version is None


def test_a_spec_with_an_sdk_connection_is_used_as_is(monkeypatch, tmp_path):
    """novamove.cloud.connect wraps the given connection (no second openstack.connect) and
    novamove.api passes such a spec through to the engine."""
    import openstack

    from novamove import cloud

    monkeypatch.setattr(openstack, "connect", lambda **kw: pytest.fail("connected again"))
    conn = SimpleNamespace(session=SimpleNamespace(request=lambda *a, **k: None), close=lambda: None)
    wrapped = cloud.connect(api.ConnectionSpec(sdk_connection=conn, compute_api_version="2.60"))
    assert wrapped.conn is conn and wrapped._cap == (2, 60)

    seen = {}
    monkeypatch.setattr(api, "move", lambda c, journal, server, host, **kw: seen.update(c=c) or result())
    api.migrate("vm1", "compute2", cloud=api.ConnectionSpec(sdk_connection=conn), journal_path=tmp_path / "j.sqlite")
    assert seen["c"].conn is conn


# ------------------------------------------------------------------ argument parsing

def test_server_move_defaults():
    args = parse(v1.MoveServer, ["web1", "--to", "compute2"])
    assert (args.server, args.host, args.mode, args.wait, args.timeout, args.on_timeout) == \
        ("web1", "compute2", "auto", True, 600.0, "abort")
    assert (args.strategy, args.confirm, args.reason, args.check_mode) == ("auto", True, None, False)


def test_server_move_options():
    args = parse(v1.MoveServer, ["web1", "--to", "c2", "--cold", "--no-wait", "--timeout", "30",
                                 "--strategy", "isolate", "--no-confirm", "--reason", "rack 12",
                                 "--check"])
    assert (args.mode, args.wait, args.timeout, args.strategy, args.confirm, args.reason,
            args.check_mode) == ("cold", False, 30.0, "isolate", False, "rack 12", True)
    assert parse(v1.MoveServer, ["web1", "--to", "c2", "--live", "--wait"]).mode == "live"


def test_server_move_without_a_host_lets_the_scheduler_choose(monkeypatch):
    assert parse(v1.MoveServer, ["web1"]).host is None
    migrate = Calls(result())
    monkeypatch.setattr(api, "migrate", migrate)
    code, _, err = run_command(v1.MoveServer, ["web1", "--live-migration", "-f", "json"])
    assert code == 0 and err == ""
    [(args, kwargs)] = migrate.calls
    assert args == ("web1", None) and kwargs["mode"] == "live"


@pytest.mark.parametrize("argv", [
    ["web1", "--to", "c2", "--live", "--cold"],            # one mode
    ["web1", "--to", "c2", "--wait", "--no-wait"],
    ["web1", "--to", "c2", "--timeout", "0"],
    ["web1", "--to", "c2", "--timeout", "soon"],
    ["web1", "--to", "c2", "--on-timeout", "panic"],
])
def test_server_move_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(v1.MoveServer, argv)
    assert exc.value.code == 2


def test_migration_wait_options():
    args = parse(v1.WaitServerMigration, ["web1"])
    assert (args.server, args.timeout, args.on_timeout, args.confirm) == ("web1", 600.0, "leave", False)
    args = parse(v1.WaitServerMigration, ["web1", "--timeout", "5", "--on-timeout", "abort", "--confirm"])
    assert (args.timeout, args.on_timeout, args.confirm) == (5.0, "abort", True)


def test_drain_options():
    args = parse(v1.DrainComputeHost, ["c1"])
    assert (args.hosts, args.targets, args.mode, args.order, args.dry_run, args.max_parallel,
            args.max_per_host, args.timeout) == (["c1"], [], "auto", "largest", False, 4, 2, 1800.0)
    args = parse(v1.DrainComputeHost, ["c1", "c2", "--to", "c3", "--to", "c4", "--cold", "--order",
                                       "name", "--reason", "kernel", "--dry-run", "--max-parallel",
                                       "8", "--max-per-host", "3", "--timeout", "60"])
    assert (args.hosts, args.targets, args.mode, args.order, args.reason, args.dry_run,
            args.max_parallel, args.max_per_host, args.timeout) == \
        (["c1", "c2"], ["c3", "c4"], "cold", "name", "kernel", True, 8, 3, 60.0)
    for bad in (["c1", "--max-parallel", "0"], [], ["c1", "--order", "random"]):
        with pytest.raises(SystemExit):
            parse(v1.DrainComputeHost, bad)


def test_undrain_options():
    args = parse(v1.UndrainComputeHost, ["c1"])
    assert (args.host, args.move_back, args.dry_run) == ("c1", False, False)
    assert parse(v1.UndrainComputeHost, ["c1", "--move-back", "--check"]).move_back is True


# ------------------------------------------------------------------ running: output and exit codes

def test_server_move_calls_the_api_with_osc_connection(monkeypatch):
    migrate = Calls(result())
    monkeypatch.setattr(api, "migrate", migrate)
    code, out, err = run_command(v1.MoveServer, ["web1", "--to", "compute2", "--live", "--no-wait",
                                                 "--timeout", "30", "-f", "json"])
    assert code == 0 and err == ""
    [(args, kwargs)] = migrate.calls
    assert args == ("web1", "compute2") and kwargs["cloud"] is SPEC
    assert {k: kwargs[k] for k in ("mode", "wait", "timeout", "on_timeout", "strategy", "confirm",
                                   "check_mode")} == dict(mode="live", wait=False, timeout=30.0,
                                                          on_timeout="abort", strategy="auto",
                                                          confirm=True, check_mode=False)
    shown = json.loads(out)
    assert shown["Source Compute"] == "compute1" and shown["Dest Compute"] == "compute2"
    assert shown["Compute Host"] == "compute2" and shown["Type"] == "live-migration"
    assert shown["Result"] == "moved" and shown["Migration ID"] == "7"


def test_server_move_columns_can_be_picked(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(result()))
    code, out, _ = run_command(v1.MoveServer, ["web1", "--to", "compute2", "-f", "value",
                                               "-c", "Compute Host", "-c", "Result"])
    assert code == 0 and out.split() == ["compute2", "moved"]


def test_a_move_that_did_not_land_exits_with_its_code_and_one_line(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(result(
        ok=False, after={"host": "compute1", "status": "ACTIVE"}, exit_code=errors.EXIT_FAILED,
        error="live migration of vm1 failed: rolled back to compute1", migration_status="error")))
    code, out, err = run_command(v1.MoveServer, ["web1", "--to", "compute2", "-f", "json"])
    assert code == errors.EXIT_FAILED
    assert err == "live migration of vm1 failed: rolled back to compute1\n"
    assert json.loads(out)["Result"] == "failed" and json.loads(out)["Compute Host"] == "compute1"


def test_library_errors_are_one_line_with_novamove_exit_codes(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(raises=errors.NotFound(
        "no compute host 'nope' (known: compute1, compute2)")))
    code, out, err = run_command(v1.MoveServer, ["web1", "--to", "nope"])
    assert (code, out, err) == (errors.EXIT_NOT_FOUND, "",
                                "no compute host 'nope' (known: compute1, compute2)\n")


def test_debug_leaves_the_traceback_to_cliff(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(raises=errors.NotFound("no server named 'x'")))
    with pytest.raises(errors.NotFound):
        run_command(v1.MoveServer, ["x", "--to", "c2"], debug=True)


def test_already_there_is_an_error_like_novamove_migrate(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(result(
        changed=False, dest="compute1", after={"host": "compute1"},
        summary="vm1 is already on compute1 and has a status of ACTIVE")))
    code, out, err = run_command(v1.MoveServer, ["web1", "--to", "compute1"])
    assert code == errors.EXIT_PRECONDITION and out == ""
    assert err == "vm1 is already on compute1, status ACTIVE (--if-needed: exit 0)\n"


def test_dry_run_says_would_move(monkeypatch):
    migrate = Calls(result(check_mode=True, after={"host": "compute1"}, run_id=None, migration_id=None,
                           migration_status=None, summary="vm1 would be migrated"))
    monkeypatch.setattr(api, "migrate", migrate)
    code, out, _ = run_command(v1.MoveServer, ["web1", "--to", "compute2", "--dry-run", "-f", "json"])
    assert code == 0 and json.loads(out)["Result"] == "would move"
    assert migrate.calls[0][1]["check_mode"] is True


def test_migration_wait_judges_like_move(monkeypatch):
    wait = Calls(result())
    monkeypatch.setattr(api, "wait", wait)
    code, out, _ = run_command(v1.WaitServerMigration, ["web1", "--timeout", "9", "-f", "json"])
    assert code == 0 and json.loads(out)["Compute Host"] == "compute2"
    assert wait.calls[0][0] == ("web1",) and wait.calls[0][1]["cloud"] is SPEC
    assert wait.calls[0][1]["timeout"] == 9.0 and wait.calls[0][1]["on_timeout"] == "leave"
    monkeypatch.setattr(api, "wait", Calls(result(ok=False, exit_code=errors.EXIT_TIMEOUT,
                                                  error="gave up after 9s: migration still running")))
    code, _, err = run_command(v1.WaitServerMigration, ["web1", "--timeout", "9"])
    assert code == errors.EXIT_TIMEOUT and err == "gave up after 9s: migration still running\n"


def test_a_failed_move_names_nova_s_last_request_id(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(result(ok=False, exit_code=errors.EXIT_FAILED,
                                                     error="live migration of vm1 failed",
                                                     request_ids=["req-1", "req-2"])))
    code, _, err = run_command(v1.MoveServer, ["web1", "--to", "compute2"])
    assert code == errors.EXIT_FAILED and err == "live migration of vm1 failed (request ID req-2)\n"


def test_drain_lists_the_results_and_passes_the_caps(monkeypatch):
    row = dict(server_id="u1", server_name="vm1", source="c1", dest="c2", mode="cold",
               result="moved", seconds=3.2, detail="cold migration confirmed")
    drain = Calls(FakeReport(results=[row]))
    monkeypatch.setattr(api, "drain", drain)
    code, out, err = run_command(v1.DrainComputeHost, ["c1", "--to", "c2", "--max-parallel", "2",
                                                       "-f", "json"])
    assert code == 0
    assert json.loads(out) == [{"Server UUID": "u1", "Server Name": "vm1", "Source Compute": "c1",
                                "Dest Compute": "c2", "Type": "migration", "Result": "moved",
                                "Seconds": 3.2, "Detail": "cold migration confirmed"}]
    assert err.splitlines() == ["c1 disabled (novamove:ab: drain)", "drain c1: 1 moved"]
    [(args, kwargs)] = drain.calls
    assert args == ("c1",) and kwargs["cloud"] is SPEC and kwargs["targets"] == ("c2",)
    assert (kwargs["max_parallel"], kwargs["max_per_host"], kwargs["step_timeout"],
            kwargs["dry_run"], kwargs["allow_unmovable"]) == (2, 2, 1800.0, False, False)
    run_command(v1.DrainComputeHost, ["c1", "--allow-unmovable"], quiet=True)
    assert drain.calls[-1][1]["allow_unmovable"] is True
    code, _, err = run_command(v1.DrainComputeHost, ["c1", "-f", "json"], quiet=True)
    assert err == ""                                   # -q: only errors on stderr


def test_drain_of_several_hosts_and_dry_run_rows(monkeypatch):
    plan = {"steps": [dict(server_id="u1", server_name="vm1", source="c1", dest="c3", mode="live"),
                      dict(server_id="u2", server_name="vm2", source="c2", dest=None, mode="cold",
                           skip_reason="status ERROR")]}
    drain = Calls(FakeReport(dry_run=True, plan=plan, summary="plan for c1, c2: 1 to move"))
    monkeypatch.setattr(api, "drain", drain)
    code, out, _ = run_command(v1.DrainComputeHost, ["c1", "c2", "--dry-run", "-f", "value",
                                                     "-c", "Server Name", "-c", "Result", "-c", "Detail"])
    assert code == 0 and drain.calls[0][0] == (["c1", "c2"],) and drain.calls[0][1]["dry_run"]
    assert out.splitlines() == ["vm1 planned ", "vm2 skipped status ERROR"]


def test_a_drain_that_leaves_servers_exits_with_its_code(monkeypatch):
    monkeypatch.setattr(api, "drain", Calls(FakeReport(
        ok=False, exit_code=errors.EXIT_INCOMPLETE, summary="drain c1: 1 moved, 1 still on c1 (vm-err)")))
    code, _, err = run_command(v1.DrainComputeHost, ["c1"], quiet=True)
    assert code == errors.EXIT_INCOMPLETE == 8
    assert err == "drain c1: 1 moved, 1 still on c1 (vm-err)\n"


def test_a_failed_drain_exits_non_zero_with_its_summary(monkeypatch):
    row = dict(server_id="u1", server_name="vm1", source="c1", dest="c2", mode="live",
               result="failed", seconds=1, detail="live migration error")
    monkeypatch.setattr(api, "drain", Calls(FakeReport(ok=False, results=[row], exit_code=1,
                                                       summary="drain c1: 0 moved, 1 failed")))
    code, out, err = run_command(v1.DrainComputeHost, ["c1", "-f", "json"], quiet=True)
    assert code == errors.EXIT_FAILED and json.loads(out)[0]["Result"] == "failed"
    assert err == "drain c1: 0 moved, 1 failed\n"


def test_undrain_passes_move_back(monkeypatch):
    undrain = Calls(FakeReport(summary="undrain c1: 0 moved", service="c1 enabled"))
    monkeypatch.setattr(api, "undrain", undrain)
    code, out, err = run_command(v1.UndrainComputeHost, ["c1", "--move-back"])
    assert code == 0 and undrain.calls[0][0] == ("c1",)
    assert undrain.calls[0][1]["move_back"] is True and undrain.calls[0][1]["cloud"] is SPEC
    monkeypatch.setattr(api, "undrain", Calls(raises=errors.NotFound("no compute host 'nope'")))
    assert run_command(v1.UndrainComputeHost, ["nope"])[0] == errors.EXIT_NOT_FOUND


# ------------------------------------------------------------------ in step with `novamove VERB`

# cliff supplies the formatter options per kind of command (--sort-column on lists, --prefix on
# one object); --quiet is OSC's root `openstack -q` (progress goes to the log there anyway).
NOT_PER_COMMAND = {"--quiet", "--sort-column", "--sort-ascending", "--sort-descending", "--prefix",
                   "--noindent", "--format", "--column"}


def _verb_options(path):
    import click
    from novamove.cli import main
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    return {o for p in cmd.params if isinstance(p, click.Option) and not getattr(p, "_novamove_global", False)
            for o in p.opts + p.secondary_opts if o.startswith("--")}


def _plugin_options(cls):
    app = SimpleNamespace(client_manager=None, stdout=io.StringIO(), stderr=io.StringIO(),
                          options=SimpleNamespace(debug=False, verbose_level=1))
    return {o for a in cls(app, None).get_parser("openstack test")._actions for o in a.option_strings}


@pytest.mark.parametrize("verb,command", [
    ("migrate", "MoveServer"), ("wait", "WaitServerMigration"), ("drain", "DrainComputeHost"),
    ("undrain", "UndrainComputeHost"), ("back", "BackServerMove"), ("confirm", "ConfirmServerMove"),
    ("revert", "RevertServerMove"), ("abort", "AbortServerMove"),
    ("force-complete", "ForceCompleteServerMove"), ("evacuate", "EvacuateComputeHost"),
    ("unfence", "UnfenceComputeHost"), ("maintain", "MaintainComputeHosts"),
    ("campaign status", "CampaignStatus"), ("campaign stop", "CampaignStop"), ("history", "History"),
    ("recover", "Recover"), ("doctor", "Doctor")])
def test_every_option_of_a_verb_is_an_option_of_its_plugin_command(verb, command):
    from novamove.osc import ops
    cls = getattr(v1, command, None) or getattr(ops, command)
    missing = _verb_options(verb.split()) - _plugin_options(cls) - NOT_PER_COMMAND
    assert not missing, f"`openstack` lacks {sorted(missing)} of `novamove {verb}`"


def test_osc_s_own_words_host_and_live_migration():
    args = parse(v1.MoveServer, ["web1", "--host", "c2", "--live-migration"])
    assert (args.host, args.mode) == ("c2", "live")
    assert parse(v1.DrainComputeHost, ["c1", "--live-migration"]).mode == "live"
    assert parse(v1.DrainComputeHost, ["c1", "--mode", "cold"]).mode == "cold"
    assert parse(v1.DrainComputeHost, ["c1"]).mode == "auto"
    with pytest.raises(SystemExit):
        parse(v1.DrainComputeHost, ["c1", "--mode", "cold", "--live"])
    args = parse(v1.MoveServer, ["web1", "--to", "c2", "--confirm", "--schedule-timeout", "5"])
    assert (args.confirm, args.schedule_timeout, args.if_needed) == (True, 5.0, False)
    assert parse(v1.WaitServerMigration, ["web1", "--no-confirm"]).confirm is False


def test_if_needed_makes_already_there_exit_0(monkeypatch):
    monkeypatch.setattr(api, "migrate", Calls(result(changed=False, dest="compute1")))
    code, _, err = run_command(v1.MoveServer, ["web1", "--to", "compute1"])
    assert code == errors.EXIT_PRECONDITION and "--if-needed" in err
    code, out, err = run_command(v1.MoveServer, ["web1", "--to", "compute1", "--if-needed", "-f", "value",
                                                 "-c", "Result"])
    assert code == 0 and out.strip() == "unchanged"


def test_drain_passes_on_interrupt_and_poll_interval(monkeypatch):
    drain = Calls(FakeReport())
    monkeypatch.setattr(api, "drain", drain)
    run_command(v1.DrainComputeHost, ["c1", "--on-interrupt", "abort", "--poll-interval", "2", "--mode", "live"])
    kw = drain.calls[0][1]
    assert (kw["on_interrupt"], kw["poll_interval"], kw["mode"]) == ("abort", 2.0, "live")


def test_events_to_stdout_and_metrics_textfile_in_the_plugin(monkeypatch, tmp_path):
    """--events - : the stream alone on stdout (the table on stderr); --metrics-textfile written."""
    seen = {}

    def drain(hosts, **kwargs):
        seen.clear()
        seen.update(kwargs)
        run_id = f"r{len(api.history(journal_path=tmp_path / 'j.sqlite'))}"
        journal = api.open_journal(tmp_path / "j.sqlite", kwargs.get("observers", ()))
        journal.start_run(run_id, "drain")
        with journal.change(run_id, "drain.disable", "c1"):
            pass
        journal.finish_run(run_id, "ok")
        return FakeReport()
    monkeypatch.setattr(api, "drain", drain)
    code, out, err = run_command(v1.DrainComputeHost, ["c1", "--events", "-", "--metrics-textfile",
                                                       str(tmp_path / "m.prom"), "-f", "json"])
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["kind"] for x in lines] == ["run.start", "drain.disable", "drain.disable", "run.finish"]
    assert "[" in err                                      # the -f json rows went to stderr
    assert "novamove_hosts_out_of_service 1.0" in (tmp_path / "m.prom").read_text()
    code, out, _ = run_command(v1.DrainComputeHost, ["c1", "-f", "json"])
    assert code == 0 and json.loads(out) == [] and "observers" not in seen     # nothing asked: none passed
