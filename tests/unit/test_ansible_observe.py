"""The modules' observe options (events, metrics_textfile, metrics_push): declared once in the
module base, on exactly the modules that change the cloud; a task's event stream is valid and
matches the journal; no secret of the task (no_log options, a dict cloud's password) reaches
the stream, the textfile or the task's output."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ansible")

import yaml  # noqa: E402

from ansible_args import patch_module_args  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ansible_collections.novamove.openstack.plugins.doc_fragments.observe import ModuleDocFragment  # noqa: E402
from ansible_collections.novamove.openstack.plugins.module_utils import novamove_module  # noqa: E402
from ansible_collections.novamove.openstack.plugins.modules import host_evacuate  # noqa: E402
from novamove.engine import events as kinds  # noqa: E402
from novamove.engine.journal import Journal  # noqa: E402
from novamove.observe import stream  # noqa: E402
from test_evacuate_ansible import nova  # noqa: E402,F401 -- fixture: failed c3 on the fake Nova
from test_observe_events import assert_matches_journal  # noqa: E402

MODULES = REPO / "ansible_collections/novamove/openstack/plugins/modules"
# The modules that change the cloud take the observe options; the read-only ones do not.
CHANGING = {"instance_migrate", "host_drain", "host_evacuate", "host_maintain", "cloud_doctor", "cloud_rebalance"}

FENCE_SECRET = "ipmi-s3cr3t-pw"
AUTH_SECRET = "auth-s3cr3t-pw"
CLOUD_SECRET = "cloud-s3cr3t-pw"


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        host_evacuate.main()
    out = capsys.readouterr().out
    return exited.value.code != 0, json.loads(out), out


def test_observe_options_are_declared_once_and_documented_on_every_module_that_changes_the_cloud():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = novamove_module.OBSERVE_ARGUMENT_SPEC
    assert set(documented) == set(spec) == {"events", "metrics_textfile", "metrics_push"}
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
    for path in sorted(MODULES.glob("*.py")):
        module = importlib.import_module(f"ansible_collections.novamove.openstack.plugins.modules.{path.stem}")
        [cls] = [c for c in vars(module).values()
                 if isinstance(c, type) and issubclass(c, novamove_module.NovamoveModule)
                 and c is not novamove_module.NovamoveModule]
        fragments = yaml.safe_load(module.DOCUMENTATION)["extends_documentation_fragment"]
        observed = path.stem in CHANGING
        assert cls.observed is observed, path.stem
        assert ("novamove.openstack.observe" in fragments) is observed, path.stem
        assert not set(spec) & set(cls.argument_spec), path.stem       # declared once, in the base
        if observed:
            assert "**self.observing" in path.read_text(), path.stem   # passed to the api verb


def test_an_evacuation_task_streams_valid_events_matching_the_journal_and_no_secret(nova, tmp_path, capsys):
    events, textfile, journal = tmp_path / "events.jsonl", tmp_path / "novamove.prom", tmp_path / "j"
    failed, res, out = run({
        "host": "c3", "journal": str(journal), "fence_cmd": f"true {FENCE_SECRET}", "max_parallel": 3,
        "cloud": {"auth": {"username": "admin", "password": CLOUD_SECRET}},
        "auth": {"auth_url": "https://keystone.invalid", "password": AUTH_SECRET},
        "events": str(events), "metrics_textfile": str(textfile)}, capsys)
    # PAUSED and busy servers stay (exit 8, as test_evacuate_ansible): the stream is whole anyway
    assert failed and res["changed"] and res["exit_code"] == 8, res
    lines = stream.read(str(events))
    assert_matches_journal(Journal(journal), lines)                # every line valid, event for event
    assert res["run_id"] in {x["run_id"] for x in lines}
    [fence] = [x for x in lines if x["kind"] == kinds.EVACUATE_FENCE and x["state"] == "done"]
    assert fence["data"]["command"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"   # as Ansible masks output
    assert stat.S_IMODE(os.stat(events).st_mode) == 0o600
    text = textfile.read_text()
    assert 'novamove_moves_total{kind="evacuate.server",result="done",verb="evacuate"}' in text
    for secret in (FENCE_SECRET, AUTH_SECRET, CLOUD_SECRET):
        assert secret not in events.read_text() and secret not in text and secret not in out, secret
    promtool = shutil.which("promtool")
    if promtool:
        with open(textfile, "rb") as f:
            check = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("where, says", [("-", "events: give a file path"),
                                         ("{tmp}/no/such/dir/e.jsonl", "cannot open events file")])
def test_an_events_path_that_cannot_be_written_fails_in_one_line_and_changes_nothing(
        nova, tmp_path, capsys, where, says):
    failed, res, _ = run({"host": "c3", "journal": str(tmp_path / "j"), "fenced": True,
                          "events": where.format(tmp=tmp_path)}, capsys)
    assert failed and says in res["msg"] and res["exit_code"] == 2, res
    svc = nova.services["c3"]
    assert nova.records == [] and svc.status == "enabled" and not svc.forced_down


@pytest.fixture
def no_leftover_warnings():
    """ansible-core keeps a module's warnings in a global: later in-process runs would report them."""
    from ansible.module_utils.common import warnings
    yield
    for name in ("_global_warnings", "_global_deprecations"):
        held = getattr(warnings, name, None)
        if held is not None:
            held.clear()


def test_a_textfile_that_cannot_be_written_is_a_warning_not_a_failure(nova, tmp_path, capsys, no_leftover_warnings):
    failed, res, _ = run({"host": "c3", "journal": str(tmp_path / "j"), "fenced": True, "max_parallel": 3,
                          "metrics_textfile": str(tmp_path / "no" / "such" / "novamove.prom")}, capsys)
    assert res["exit_code"] == 8 and res["changed"]                  # the evacuation went on
    # (a string before ansible-core 2.19, a structured warning since)
    assert "novamove.prom: cannot write it" in json.dumps(res.get("warnings")), res.get("warnings")


def test_a_campaign_task_masks_its_hook_in_the_stream(tmp_path, capsys, monkeypatch):
    """The hook (no_log: it may carry a BMC or SSH secret) is journaled with its maintain.hook
    change; the task's stream carries it masked."""
    import novamove.cloud
    from ansible_collections.novamove.openstack.plugins.modules import host_maintain
    from novamove.engine.batch import drain as drains
    from novamove.engine.campaign import common
    from test_campaign import fleet_with_servers

    fleet = fleet_with_servers()
    fleet.close = lambda: None
    monkeypatch.setattr(novamove.cloud, "connect", lambda *a, **kw: fleet)
    monkeypatch.setattr(drains, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(drains, "REPLAN_PAUSE", 0.01)
    monkeypatch.setattr(common, "POLL", 0.01)
    events, journal = tmp_path / "events.jsonl", tmp_path / "j"
    hook = f"true --password {FENCE_SECRET}"
    with patch_module_args({"hosts": ["c1"], "hook": hook, "gate": "heartbeat", "gate_timeout": 5,
                            "journal": str(journal), "events": str(events)}), pytest.raises(SystemExit):
        host_maintain.main()
    res = json.loads(capsys.readouterr().out)
    assert not res.get("failed") and res["changed"], res
    lines = stream.read(str(events))
    assert_matches_journal(Journal(journal), lines)
    [started] = [x for x in lines if x["kind"] == kinds.MAINTAIN_HOOK and x["state"] == "intent"]
    assert started["data"]["command"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert FENCE_SECRET not in events.read_text() and FENCE_SECRET not in json.dumps(res)
