"""The CLI's global options (osc-lib names, before and after the verb), its exit codes and its
diagnostics, with novamove.api stubbed: the CLI builds one ConnectionSpec and passes it on."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novamove import api, errors
from novamove.api import ConnectionSpec
from novamove.cli import run
from novamove.engine.single.result import MoveResult

REPO = Path(__file__).resolve().parents[2]
OS_VARS = ("OS_CLOUD", "OS_REGION_NAME", "OS_INTERFACE", "OS_CACERT", "OS_CERT", "OS_KEY", "OS_INSECURE",
           "OS_API_TIMEOUT", "OS_COMPUTE_API_VERSION", "NOVAMOVE_MAX_MICROVERSION")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in OS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))
    yield
    # --debug / -v configure the novamove loggers; leave them as found for the other tests.
    for name in ("novamove", "keystoneauth", "openstack"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if not isinstance(h, logging.NullHandler):
                lg.removeHandler(h)
        lg.propagate = True
        lg.setLevel(logging.NOTSET)


def invoke(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        run(list(argv))
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


@pytest.fixture
def calls(monkeypatch):
    """Every api verb the CLI calls, recording its keyword arguments."""
    seen: list[dict] = []

    def recorder(value):
        def call(*args, **kwargs):
            seen.append(kwargs)
            return value() if callable(value) else value
        return call
    monkeypatch.setattr(api, "migrate", recorder(result))
    monkeypatch.setattr(api, "compute_hosts", recorder(list))
    monkeypatch.setattr(api, "migrations", recorder(list))
    return seen


GLOBAL = ["--os-cloud", "prod", "--os-region-name", "R2", "--os-interface", "internal", "--os-cacert", "/ca.pem",
          "--os-cert", "/c.pem", "--os-key", "/c.key", "--insecure", "--os-compute-api-version", "2.60",
          "--os-api-timeout", "30"]
EXPECTED = ConnectionSpec(cloud="prod", region_name="R2", interface="internal", cacert="/ca.pem", cert="/c.pem",
                          key="/c.key", verify=False, compute_api_version="2.60", api_timeout=30.0)


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_verb_make_one_spec(capsys, calls, where):
    verb = ["migrate", "vm1", "--to", "compute2", "-q"]
    argv = GLOBAL + verb if where == "before" else verb + GLOBAL
    code, _, err = invoke(capsys, argv)
    assert code == 0, err
    assert calls[0]["cloud"] == EXPECTED


def test_options_after_the_verb_win_over_before_and_over_variables(capsys, calls, monkeypatch):
    monkeypatch.setenv("OS_CLOUD", "from-env")
    monkeypatch.setenv("OS_INTERFACE", "admin")
    code, _, _ = invoke(capsys, ["--os-cloud", "before", "hosts", "--os-cloud", "after"])
    assert code == 0
    spec = calls[0]["cloud"]
    assert spec.cloud == "after" and spec.interface == "admin"


@pytest.mark.parametrize("argv", [["hosts"], ["migrations"], ["migrate", "vm1", "--to", "c2", "-q"]])
def test_os_variables_reach_every_verb(capsys, calls, monkeypatch, argv):
    for var, value in (("OS_CLOUD", "c"), ("OS_REGION_NAME", "R3"), ("OS_INTERFACE", "internal"),
                       ("OS_CACERT", "/ca"), ("OS_COMPUTE_API_VERSION", "latest")):
        monkeypatch.setenv(var, value)
    code, _, err = invoke(capsys, argv)
    assert code == 0, err
    spec = calls[0]["cloud"]
    assert (spec.cloud, spec.region_name, spec.interface, spec.cacert, spec.compute_api_version) == \
        ("c", "R3", "internal", "/ca", "latest")


@pytest.mark.parametrize("value", ["3", "2.x", "latest2", "2.1.0"])
def test_bad_compute_api_version_is_one_line_exit_2_before_any_call(capsys, calls, value):
    code, out, err = invoke(capsys, ["migrate", "vm1", "--to", "c2", "--os-compute-api-version", value])
    assert code == errors.EXIT_USAGE and calls == []
    assert err.count("\n") == 1 and "2.NN" in err and "Traceback" not in err


def test_deprecated_max_microversion_warns_once_and_still_counts(capsys, calls, monkeypatch):
    monkeypatch.setenv("NOVAMOVE_MAX_MICROVERSION", "latest")
    code, _, err = invoke(capsys, ["hosts"])
    assert code == 0
    assert calls[0]["cloud"].compute_api_version == "latest"
    assert err.count("NOVAMOVE_MAX_MICROVERSION is deprecated") == 1 and err.count("\n") == 1


def test_deprecated_max_microversion_malformed_is_a_usage_error_not_a_traceback(capsys, calls, monkeypatch):
    monkeypatch.setenv("NOVAMOVE_MAX_MICROVERSION", "newest")
    code, _, err = invoke(capsys, ["hosts"])
    assert code == errors.EXIT_USAGE and calls == [] and "Traceback" not in err


def test_option_beats_deprecated_variable_without_warning(capsys, calls, monkeypatch):
    monkeypatch.setenv("NOVAMOVE_MAX_MICROVERSION", "2.10")
    code, _, err = invoke(capsys, ["hosts", "--os-compute-api-version", "2.70"])
    assert code == 0 and calls[0]["cloud"].compute_api_version == "2.70" and "deprecated" not in err


def test_bad_interface_is_a_usage_error(capsys, calls):
    code, _, err = invoke(capsys, ["--os-interface", "private", "hosts"])
    assert code == errors.EXIT_USAGE and calls == [] and err.count("\n") == 1


# ---------------------------------------------------------------------------- exit codes

def test_already_on_the_target_has_its_own_exit_code(capsys, monkeypatch):
    monkeypatch.setattr(api, "migrate", lambda *a, **k: result(
        changed=False, summary="vm1 is already on compute2 and has a status of ACTIVE"))
    code, out, err = invoke(capsys, ["migrate", "vm1", "--to", "compute2", "-q"])
    assert code == errors.EXIT_ALREADY_THERE == 9
    assert "already on compute2" in err and err.count("\n") == 1
    code, out, err = invoke(capsys, ["migrate", "vm1", "--to", "compute2", "-q", "--if-needed"])
    assert code == 0 and "already on compute2" in out and err == ""


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_dry_run_and_its_check_alias(capsys, monkeypatch, flag):
    seen = {}
    monkeypatch.setattr(api, "migrate", lambda s, h, **k: seen.update(k) or result(check_mode=True, changed=False))
    code, _, _ = invoke(capsys, ["migrate", "vm1", "--to", "c2", "-q", flag])
    assert code == 0 and seen["check_mode"] is True


@pytest.mark.parametrize("verb", [["drain", "h"], ["undrain", "h"]])
@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_batch_verbs_take_dry_run_and_check(capsys, monkeypatch, verb, flag):
    seen = {}

    class Stop(Exception):
        pass

    def fake(host, **kw):
        seen.update(kw)
        raise errors.NotFound("stop here")
    monkeypatch.setattr(api, verb[0], fake)
    code, _, _ = invoke(capsys, verb + [flag])
    assert code == errors.EXIT_NOT_FOUND and seen["dry_run"] is True


def test_help_lists_exit_codes_and_global_options(capsys):
    code, out, _ = invoke(capsys, ["--help"])
    assert code == 0
    for text in ("Exit codes:", "9    already on the target", "130  interrupted", "--os-cloud",
                 "--os-region-name", "OS_REGION_NAME", "--os-interface", "--os-cacert", "--os-cert",
                 "--os-key", "--insecure", "--os-compute-api-version", "--debug", "--verbose", "--log-file"):
        assert text in out, text


def test_library_errors_are_one_line_with_their_code(capsys, monkeypatch):
    def boom(*a, **k):
        raise errors.Unreachable("cannot reach the cloud API (compute API): connection refused")
    monkeypatch.setattr(api, "compute_hosts", boom)
    code, _, err = invoke(capsys, ["hosts"])
    assert code == errors.EXIT_UNREACHABLE and err.count("\n") == 1 and "Traceback" not in err


def test_unexpected_exceptions_are_one_line_unless_debug(capsys, monkeypatch):
    def boom(*a, **k):
        raise KeyError("surprise")
    monkeypatch.setattr(api, "compute_hosts", boom)
    code, _, err = invoke(capsys, ["hosts"])
    assert code == errors.EXIT_FAILED and err.count("\n") == 1 and "--debug" in err
    with pytest.raises(KeyError):
        run(["hosts", "--debug"])


def test_usage_errors_are_one_line(capsys):
    code, _, err = invoke(capsys, ["migrate", "vm1", "--strategy", "isolate"])
    assert code == errors.EXIT_USAGE and err.count("\n") == 1 and "--to" in err


# ---------------------------------------------------------------------------- diagnostics

def test_debug_turns_on_http_logging_on_stderr(capsys, calls):
    code, _, _ = invoke(capsys, ["hosts", "--debug"])
    assert code == 0
    ksa = logging.getLogger("keystoneauth")
    assert ksa.getEffectiveLevel() == logging.DEBUG and ksa.handlers
    logging.getLogger("keystoneauth.session").debug("REQ: curl -g -i GET http://x")
    assert "REQ: curl" in capsys.readouterr().err


def test_verbose_and_log_file(capsys, calls, tmp_path):
    log = tmp_path / "novamove.log"
    code, _, _ = invoke(capsys, ["-v", "hosts", "--log-file", str(log)])
    assert code == 0
    logging.getLogger("novamove.engine").info("hello from the engine")
    assert "hello from the engine" in capsys.readouterr().err
    assert "hello from the engine" in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert logging.getLogger("keystoneauth").getEffectiveLevel() > logging.DEBUG   # no HTTP without --debug


# ---------------------------------------------------------------------------- architecture

def test_cli_imports_only_the_api_and_report():
    """The CLI reaches the cloud only through novamove.api (ConnectionSpec via novamove.api)."""
    bad = []
    for path in (REPO / "novamove" / "cli").glob("*.py"):
        if path.name == "minicloud.py":      # the embedded cloud's own commands
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.startswith(("novamove.engine", "novamove.cloud", "novamove.engine.single.strategies", "openstack",
                                    "novamove.planner", "rich")):
                    bad.append(f"{path.name}: {name}")
    assert bad == []


def test_help_imports_neither_rich_nor_openstacksdk_nor_the_engine():
    code = ("import sys\nfrom novamove.cli import run\ntry:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('rich', 'openstack', 'keystoneauth1', 'yaml', 'novamove.api', "
            "'novamove.engine') if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------------------- completion

def _complete(words: str) -> list[str]:
    env = {**os.environ, "_NOVAMOVE_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    out = subprocess.run([sys.executable, "-m", "novamove"], env=env, capture_output=True, text=True, cwd=REPO)
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


def test_shell_completion_offers_global_options_before_and_after_the_verb():
    assert "--os-cloud" in _complete("novamove --os-c")
    assert {"--os-cloud", "--os-compute-api-version"} <= set(_complete("novamove migrate vm --os-c"))
    assert "--insecure" in _complete("novamove plan drain h --ins")
    assert _complete("novamove hosts --os-interface ") == ["public", "internal", "admin"]
    assert {"--dry-run", "--check", "--if-needed", "--column", "--noindent"} <= set(_complete("novamove migrate vm --"))


def test_library_options_main_added_reach_the_api(capsys, monkeypatch):
    seen = {}

    def fake(*a, **k):
        seen.update(k)
        raise errors.NotFound("stop here")
    for name in ("migrate", "recover", "drain"):
        monkeypatch.setattr(api, name, fake)
    invoke(capsys, ["migrate", "vm", "--to", "h", "--strategy", "isolate", "--schedule-timeout", "30"])
    assert seen["schedule_timeout"] == 30
    invoke(capsys, ["recover", "--run", "abc", "--break-lock"])
    assert seen["break_lock"] is True and seen["run_id"] == "abc"
    invoke(capsys, ["drain", "h", "--allow-unmovable"])
    assert seen["allow_unmovable"] is True
    seen.clear()
    code, _, err = invoke(capsys, ["recover", "--break-lock"])
    assert code == errors.EXIT_USAGE and seen == {} and "--run" in err
