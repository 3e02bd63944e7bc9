"""`novamove rebalance` (the verb: options, plan file, apply, read-back, disable-emptied, recover)
through click and novamove.api, against the in-memory Nova. The planner itself is
tests/unit/test_rebalance.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest
from click.testing import CliRunner

from novamove import api, errors
from novamove.cli import main
from novamove.engine import events
from novamove.engine.batch import rebalance as engine
from novamove.engine.journal import Journal
from novamove.model import Flavor, Resources
from fakenova import FakeNova
from test_planner_drain import Clock

TINY = Flavor("tiny", vcpus=1, ram=512, disk=1)


def unbalanced() -> FakeNova:
    """Four hosts of 8 vCPU / 8 GB; c1 holds six servers, c2 one: c1 at 75% (vCPU)."""
    nova = FakeNova(capacity=Resources(8, 8192, 100))
    for i in range(6):
        nova.add(f"s{i}", "c1", flavor=TINY)
    nova.add("off", "c1", "SHUTOFF", flavor=TINY)
    nova.add("t0", "c2", flavor=TINY)
    return nova


@pytest.fixture
def nova(monkeypatch):
    fake = unbalanced()
    fake.close = lambda: None
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **k: fake)

    class FastRunner(engine.BatchRunner):
        def __init__(self, *args, **kwargs):
            clock = Clock()
            kwargs.update(clock=clock, sleep=clock.sleep)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(engine, "BatchRunner", FastRunner)
    return fake


def run(tmp_path, *args):
    return CliRunner().invoke(main, ["--journal", str(tmp_path / "j.sqlite"), *args], catch_exceptions=False)


def hosts_of(nova):
    out: dict[str, int] = {}
    for s in nova.servers.values():
        out[s.host] = out.get(s.host, 0) + 1
    return out


def test_dry_run_prints_the_plan_and_its_figures_and_changes_nothing(nova, tmp_path):
    out = run(tmp_path, "rebalance", "--dry-run")
    assert out.exit_code == 0, out.output
    for words in ("rebalance plan for", "max host usage", "87.5% ->", "RAM to copy", "moves"):
        assert words in out.output, out.output
    assert nova.migrations == []
    doc = json.loads(run(tmp_path, "rebalance", "--dry-run", "-f", "json").output)
    assert doc["dry_run"] and doc["predicted"]["max_usage"] < doc["before"]["max_usage"] == 87.5
    assert doc["plan"]["kind"] == "rebalance" and doc["moves"] == len(doc["plan"]["steps"]) > 0
    assert doc["ram_bytes_to_copy"] == 512 * 2 ** 20 * sum(s["mode"] == "live" for s in doc["plan"]["steps"])
    assert nova.migrations == []


def test_spread_applies_and_the_read_back_is_within_the_plan(nova, tmp_path):
    out = run(tmp_path, "rebalance", "-q", "-f", "json", "--poll-interval", "0.2")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["ok"] and doc["within_plan"] and doc["read_back"]["max_usage"] <= doc["predicted"]["max_usage"]
    assert all(r["result"] == "moved" for r in doc["results"]) and len(doc["results"]) == doc["moves"]
    assert max(hosts_of(nova).values()) <= 3
    assert nova.servers["off"].status == "SHUTOFF"
    # A second run plans nothing (min gain: no ping-pong).
    again = json.loads(run(tmp_path, "rebalance", "--dry-run", "-f", "json").output)
    assert again["moves"] == 0


def test_plan_file_then_apply(nova, tmp_path):
    path = tmp_path / "plan.json"
    out = run(tmp_path, "rebalance", "--goal", "pack", "--dry-run", "-o", str(path))
    assert out.exit_code == 0 and path.exists(), out.output
    data = json.loads(path.read_text())
    assert data["format"] == "novamove-plan/1" and data["kind"] == "rebalance" and data["emptied"]
    assert nova.migrations == []
    out = run(tmp_path, "apply", str(path), "-q", "-f", "json", "--poll-interval", "0.2")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["verb"] == "apply" and doc["within_plan"]
    for host in data["emptied"]:
        assert host not in hosts_of(nova)


def test_pack_disable_emptied_tags_them_and_keeps_someone_elses_reason(nova, tmp_path):
    plan = api.plan_rebalance(api.rebalance_options(goal="pack", disable_emptied=True))
    assert len(plan.emptied) >= 1
    theirs = plan.emptied[0]
    # c-something emptied, but already disabled by an operator: a pack may still empty it
    # (the plan was made before), its reason stays.
    nova.services[theirs] = dataclasses.replace(nova.services[theirs], status="disabled",
                                                disabled_reason="RMA 42")
    rep = api.apply_plan(plan, journal_path=tmp_path / "j.sqlite", poll_interval=0.2)
    assert nova.services[theirs].disabled_reason == "RMA 42" and theirs in rep.kept_their_reason
    out = run(tmp_path, "rebalance", "--goal", "pack", "--disable-emptied", "--reason", "power down",
              "-q", "-f", "json", "--poll-interval", "0.2")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    for host in doc["disabled"]:
        reason = nova.services[host].disabled_reason
        assert nova.services[host].status == "disabled" and ": drain: rebalance pack emptied: power down" in reason
        assert host not in hosts_of(nova)
    # `novamove undrain HOST` gives an emptied host back.
    if doc["disabled"]:
        back = run(tmp_path, "undrain", doc["disabled"][0], "-q")
        assert back.exit_code == 0, back.output
        assert nova.services[doc["disabled"][0]].status == "enabled"


@pytest.mark.parametrize("args, code, words", [
    (["--goal", "tidy"], 2, "'tidy' is not one of"),
    (["--max-moves", "0"], 2, "--max-moves must be a whole number of at least 1"),
    (["--min-gain", "-1"], 2, "--min-gain must be a number of percentage points >= 0"),
    (["--min-gain", "nan"], 2, "--min-gain must be"),
    (["--zone", "nova", "c1", "c9"], 3, "no compute host 'c9'"),
    (["--zone", "az2", "c1", "c2"], 2, "is not in availability zone 'az2'"),
    (["--zone", "mars"], 3, "no compute host in availability zone 'mars'"),
    (["--aggregate", "nope"], 3, "no host aggregate named 'nope'"),
    (["--aggregate", "rack1", "--zone", "nova"], 2, "--aggregate selects the hosts"),
    (["--disable-emptied"], 2, "--disable-emptied goes with --goal pack"),
    (["c1"], 2, "at least two hosts"),
])
def test_bad_input_is_one_line_and_changes_nothing(nova, tmp_path, args, code, words):
    nova.services["c3"] = dataclasses.replace(nova.services["c3"], zone="az2")
    before = {h: dataclasses.replace(s) for h, s in nova.services.items()}
    from novamove.cli import run as cli_run
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as exc:
        cli_run(["--journal", str(tmp_path / "j.sqlite"), "rebalance", *args])
    assert exc.value.code == code, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and lines[0].startswith("novamove: error: "), lines
    assert nova.migrations == [] and nova.services == before


def test_bad_options_raise_before_any_read():
    for kwargs in (dict(goal="x"), dict(max_moves=0), dict(min_gain=-0.5), dict(max_moves=True)):
        with pytest.raises(errors.UsageError):
            api.rebalance_options(**kwargs)


def test_a_killed_run_is_recovered_and_a_new_one_waits_for_that(tmp_path):
    """SIGKILL mid-apply, as the journal sees it: a run left `running` by a dead process with a
    move in flight. A new rebalance refuses (exit 4); `recover` follows the move to its end."""
    nova = unbalanced()
    journal = Journal(tmp_path / "j.sqlite")
    plan = engine.make_plan(nova, engine.Options())
    clock = Clock()

    class Killed(BaseException):
        pass
    starts = {"n": 0}
    real = nova.live_migrate_server

    def live_then_die(server_id, host=None):
        real(server_id, host)
        starts["n"] += 1
        if starts["n"] == 2:
            raise Killed()             # the process dies right after Nova took the 2nd move
    nova.live_migrate_server = live_then_die
    with pytest.raises(Killed):
        engine.apply_rebalance(nova, plan, journal=journal, clock=clock, sleep=clock.sleep)
    run_id = journal.runs(limit=1)[0]["id"]
    journal.update_run(run_id, status=events.RUN_RUNNING)       # as SIGKILL leaves it (no finish)
    journal._write("UPDATE runs SET pid=? WHERE id=?", (2 ** 22 + 7, run_id))
    with pytest.raises(errors.PreconditionFailed, match="novamove recover"):
        engine.apply_rebalance(nova, plan, journal=journal, clock=clock, sleep=clock.sleep)
    from novamove.engine.recover import recover
    reports = recover(nova, journal, runner_kwargs=dict(clock=clock, sleep=clock.sleep))
    mine = [r for r in reports if r["run_id"] == run_id]
    assert len(mine) == 1 and "followed to their end" in mine[0]["summary"], reports
    assert journal.get_run(run_id)["status"] == events.RUN_RECOVERED
    assert all(not s.task_state and s.status in ("ACTIVE", "SHUTOFF") for s in nova.servers.values())
    assert sum(1 for s in nova.servers.values() if s.host != "c1" and s.id.startswith("s")) == 2
    # Recovered: a new rebalance runs and finishes the job.
    nova.live_migrate_server = real
    rep = engine.apply_rebalance(nova, engine.make_plan(nova, engine.Options()), journal=journal,
                                 clock=clock, sleep=clock.sleep)
    assert rep.ok, rep.summary


def test_read_back_outside_the_plan_is_not_success(nova, tmp_path):
    """Someone boots onto the emptied/lowered hosts while the moves run: exit 1, said."""
    plan = api.plan_rebalance()
    real = nova.list_servers_on_host
    booted = {"done": False}

    def crowd(host):
        if not booted["done"]:
            booted["done"] = True
            for i in range(6):
                nova.add(f"x{i}", plan.moves[0].dest, flavor=TINY)
        return real(host)
    nova.list_servers_on_host = crowd
    rep = api.apply_plan(plan, journal_path=tmp_path / "j.sqlite", poll_interval=0.2)
    assert not rep.ok and rep.exit_code == errors.EXIT_FAILED and "NOT within the plan" in rep.summary


# ------------------------------------------------------------------ the `openstack` plugin

def test_openstack_novamove_rebalance_dry_run_rows_and_bad_input(nova):
    pytest.importorskip("osc_lib")
    from test_osc_plugin import run_command
    from novamove.osc.rebalance import Rebalance
    code, out, err = run_command(Rebalance, ["c1", "c2", "c3", "c4", "--dry-run", "-f", "json"])
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["Result"] == "planned" and r["Source Compute"] == "c1" for r in rows)
    assert "rebalance plan: spread over 4 hosts" in err and nova.migrations == []
    code, out, err = run_command(Rebalance, ["--max-moves", "0"])
    assert code == errors.EXIT_USAGE and "--max-moves must be" in err and len(err.splitlines()) == 1
    code, out, err = run_command(Rebalance, ["--goal", "tidy"])
    assert code == errors.EXIT_USAGE and "unknown goal 'tidy'" in err


# ------------------------------------------------------------------ required and forbidden traits

def test_a_flavor_s_required_and_forbidden_traits_choose_the_destination(tmp_path):
    """Servers needing CUSTOM_GPU (only c3 has it) go to c3 or stay; those forbidding it never
    go there; the traits are read only because such a flavor is in scope."""
    gpu = Flavor("gpu", vcpus=1, ram=512, disk=1, required_traits=frozenset({"CUSTOM_GPU"}))
    plain = Flavor("plain", vcpus=1, ram=512, disk=1, forbidden_traits=frozenset({"CUSTOM_GPU"}))
    nova = FakeNova(capacity=Resources(8, 8192, 100))
    nova.host_traits = {"c3": {"CUSTOM_GPU"}}
    for i in range(3):
        nova.add(f"g{i}", "c1", flavor=gpu)
    for i in range(4):
        nova.add(f"p{i}", "c1", flavor=plain)
    plan = engine.make_plan(nova, engine.Options())
    dests = {s.server_id: s.dest for s in plan.moves}
    assert dests and all(d == "c3" for sid, d in dests.items() if sid.startswith("g"))
    assert all(d != "c3" for sid, d in dests.items() if sid.startswith("p"))
    assert any(sid.startswith("g") for sid in dests) and any(sid.startswith("p") for sid in dests)
    nova.host_traits = {}                   # nobody has the trait: the GPU servers stay
    plan = engine.make_plan(nova, engine.Options())
    assert not any(s.server_id.startswith("g") for s in plan.moves)


def test_flavor_traits_come_from_the_extra_specs():
    from novamove.cloud.convert import flavor_from_api as flavor
    f = flavor({"vcpus": 2, "ram": 1024, "disk": 10, "original_name": "x",
                "extra_specs": {"trait:CUSTOM_GPU": "required", "trait:HW_CPU_X86_AVX2": "forbidden",
                                "hw:cpu_policy": "shared"}})
    assert f.required_traits == {"CUSTOM_GPU"} and f.forbidden_traits == {"HW_CPU_X86_AVX2"}
    assert flavor({"vcpus": 1, "ram": 1, "disk": 1}).required_traits == frozenset()
