"""`novamove migrate` and friends against the minicloud (a real Nova on loopback).

Run with the cloud lock held:  flock /tmp/novamove-minicloud.lock .venv/bin/pytest tests/acceptance/test_migrate.py

Each test boots its own servers (pinned to a compute with the admin-only "nova:<host>" zone),
drives the real `novamove` command line, checks the outcome through openstacksdk, and cleans up.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from cloudtest import check_run_stream, check_textfile

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
NOVAMOVE = str(Path(sys.executable).with_name("novamove"))
PREFIX = "nmt-"


# ----------------------------------------------------------------------------- fixtures

class _Cloud:
    """Fallback for the shared `minicloud` fixture (tests/acceptance/conftest.py)."""

    def __init__(self):
        from novamove.minicloud import Minicloud
        mc = Minicloud(log=lambda m: None)
        if not mc.is_running():
            pytest.skip("the minicloud is not running (novamove minicloud up)")
        self.manager = mc
        self.env = mc.env()
        self.cloud = "minicloud"
        self.member_cloud = "minicloud-member"
        lay = mc.layout
        self.computes = [lay.compute_host(i) for i in range(1, lay.computes + 1)]


@pytest.fixture(scope="module")
def mc(request):
    try:
        return request.getfixturevalue("minicloud")
    except pytest.FixtureLookupError:
        return _Cloud()


@pytest.fixture(scope="module")
def conn(mc):
    import openstack
    os.environ.update(mc.env)
    return openstack.connect(cloud=mc.cloud)


@pytest.fixture(scope="module")
def member_conn(mc):
    import openstack
    os.environ.update(mc.env)
    return openstack.connect(cloud=mc.member_cloud)


@pytest.fixture
def journal(tmp_path):
    return tmp_path / "journal.sqlite"


def _booter(conn, booted: list):
    def boot(host: str, status: str = "ACTIVE", name: str | None = None, c=None, group: str | None = None,
             flavor: str = "m1.nano"):
        c = c or conn
        image = conn.image.find_image("cirros-tiny", ignore_missing=False)
        flavor = conn.compute.find_flavor(flavor, ignore_missing=False)
        attrs = dict(name=name or f"{PREFIX}{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id,
                     networks="none")
        if host:
            attrs["availability_zone"] = f"nova:{host}"
        if group:
            attrs["scheduler_hints"] = {"group": group}
        server = c.compute.create_server(**attrs)
        booted.append(server.id)
        server = conn.compute.wait_for_server(server, wait=300, interval=1)
        if status == "SHUTOFF":
            conn.compute.stop_server(server)
            server = conn.compute.wait_for_server(server, status="SHUTOFF", wait=120, interval=1)
        return conn.compute.get_server(server.id)
    return boot


def _delete(conn, ids) -> None:
    for sid in ids:
        try:
            conn.compute.delete_server(sid, force=False)
        except Exception:
            pass
    for sid in ids:
        try:
            conn.compute.wait_for_delete(conn.compute.get_server(sid), wait=120, interval=1)
        except Exception:
            pass


@pytest.fixture
def servers(conn):
    """Boot helper; deletes what the test booted (the admin project's quota is 10 instances)."""
    booted: list = []
    yield _booter(conn, booted)
    _delete(conn, booted)


def cli(mc, *args, journal=None, env=None, timeout=600, **popen):
    full_env = {**os.environ, **mc.env, **(env or {})}
    if journal:
        full_env["NOVAMOVE_JOURNAL"] = str(journal)
    argv = [NOVAMOVE, *args]
    if popen:
        return subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout)


def services(conn) -> dict:
    return {s.host: (s.status, s.disabled_reason, s.is_forced_down)
            for s in conn.compute.services(binary="nova-compute")}


def cloud_state(conn) -> dict:
    """What a refused command must leave unchanged."""
    return {
        "services": services(conn),
        "servers": sorted((s.id, s.compute_host, s.status, s.task_state)
                          for s in conn.compute.servers(all_projects=True)),
        "migrations": len(list(conn.compute.migrations())),
    }


def settle(conn, server_id, timeout=300):
    """Wait until a server has no task (the move is over one way or another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if not s.task_state and s.status not in ("MIGRATING", "RESIZE"):
            return s
        time.sleep(1)
    raise AssertionError(f"server {server_id} did not settle")


@pytest.fixture
def slow_live(mc):
    """Make the fake driver's live migrations slow for one test."""
    manager = getattr(mc, "manager", None)
    if manager is None:
        from novamove.minicloud import Minicloud
        manager = Minicloud(log=lambda m: None)

    def set_seconds(seconds: float) -> None:
        manager.set_fakevirt(live_migration_seconds=seconds)
    yield set_seconds
    manager.set_fakevirt(live_migration_seconds=0.5)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors_ = [line for line in lines if line.startswith("novamove: error:")]
    assert len(errors_) == 1, stderr
    return errors_[0]


# ----------------------------------------------------------------------------- native moves

def test_native_cold_move_lands_on_the_target(mc, conn, servers, journal):
    vm = servers("compute1", status="SHUTOFF")
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "-q", journal=journal)
    assert res.returncode == 0, res.stderr
    assert f"{vm.name} was migrated from compute1 to compute2 and has a status of SHUTOFF" in res.stdout
    after = conn.compute.get_server(vm.id)
    assert (after.compute_host, after.status) == ("compute2", "SHUTOFF")
    assert services(conn) == {h: ("enabled", None, False) for h in mc.computes}


def test_native_live_move_lands_and_accepts_a_hypervisor_hostname(mc, conn, servers, journal):
    vm = servers("compute1")
    res = cli(mc, "migrate", vm.id, "--to", "compute3.fake.local", "-f", "json", journal=journal)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["mode"] == "live" and out["strategy"] == "native"
    assert out["summary"] == f"{vm.name} was migrated from compute1 to compute3 and has a status of ACTIVE"
    assert out["migration_status"] == "completed"
    assert conn.compute.get_server(vm.id).compute_host == "compute3"


def test_without_to_the_scheduler_chooses_live_then_cold_and_a_dry_run_lists_the_candidates(
        mc, conn, servers, journal):
    """`migrate SERVER`, the first command of the book: Nova's scheduler picks the host; each
    move is read back on another host, the cold one confirmed, the journal names where it went.
    One server (live, then --cold from wherever it landed) to keep the test short."""
    vm = servers("compute1")
    dry = cli(mc, "migrate", vm.name, "--dry-run", journal=journal)
    others = ", ".join(h for h in mc.computes if h != "compute1")
    assert dry.returncode == 0 and f"the scheduler chooses among: {others}" in dry.stdout, dry
    assert conn.compute.get_server(vm.id).compute_host == "compute1"
    source = "compute1"
    for mode, extra in (("live", []), ("cold", ["--cold"])):
        res = cli(mc, "migrate", vm.name, *extra, "-f", "json", "-q", journal=journal)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        after = conn.compute.get_server(vm.id)
        assert (out["ok"], out["mode"], out["strategy"]) == (True, mode, "scheduler")
        assert after.compute_host not in (source, None) and out["dest_compute"] == after.compute_host
        assert after.status == "ACTIVE" and out["migration_status"] in ("completed", "confirmed")
        source = after.compute_host
    hist = json.loads(cli(mc, "history", "-f", "json", journal=journal).stdout)
    assert [(r["status"], r["strategy"]) for r in hist[:2]] == [("ok", "scheduler")] * 2
    assert hist[0]["dest_compute"] == source
    assert services(conn) == {h: ("enabled", None, False) for h in mc.computes}


def test_moves_nova_refuses_are_reported_with_novas_reason(mc, conn, servers, journal):
    """Two kinds of refusal, live and cold. A hard anti-affinity clash on the target is predicted
    from what the API shows (issue 20's pre-flight): exit 4 with Nova's reason before any request,
    no migration record. A filter novamove does not model (ComputeCapabilitiesFilter, a flavor
    extra spec keeping the server off compute2's node) is refused by Nova's scheduler after the
    request (migration error; live migrations go at 2.34, where Nova schedules after answering):
    exit 1 with Nova's reason, the server still on its source."""
    group = conn.compute.create_server_group(name=f"{PREFIX}aa-{uuid.uuid4().hex[:4]}",
                                             policy="anti-affinity")
    node = next(h.name for h in conn.compute.hypervisors(details=True) if h.service_details["host"] == "compute2")
    nano = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    picky = conn.compute.create_flavor(name=f"{PREFIX}picky-{uuid.uuid4().hex[:4]}", ram=nano.ram,
                                       vcpus=nano.vcpus, disk=nano.disk, is_public=True)
    try:
        conn.compute.create_flavor_extra_specs(picky, {"capabilities:hypervisor_hostname": f"s!= {node}"})
        vm = servers("compute1", group=group.id)
        servers("compute2", group=group.id)
        before = cloud_state(conn)
        for extra in ((), ("--cold",)):
            out = cli(mc, "migrate", vm.name, "--to", "compute2", *extra, journal=journal)
            assert out.returncode == 4, (extra, out.stdout, out.stderr)
            error = one_line_error(out.stderr)
            assert "Nova would refuse" in error and "No valid host" in error, error
            assert "anti-affinity" in error, error
        assert cloud_state(conn) == before            # not even a migration record
        assert list(conn.compute.migrations(instance_uuid=vm.id)) == []

        other = servers("compute1", flavor=picky.name)
        before = cloud_state(conn)
        live = cli(mc, "migrate", other.name, "--to", "compute2", journal=journal)
        assert live.returncode == 1, (live.stdout, live.stderr)
        error = one_line_error(live.stderr)
        assert "live migration" in error and f"{other.name} is on compute1" in error, error
        assert "No valid host" in error or "not enough hosts" in error, error     # Nova's reason
        after = cloud_state(conn)   # Nova keeps an "error" migration record; nothing else changed
        assert (after["servers"], after["services"]) == (before["servers"], before["services"])

        cold = cli(mc, "migrate", other.name, "--to", "compute2", "--cold", journal=journal)
        assert cold.returncode == 1, (cold.stdout, cold.stderr)
        error = one_line_error(cold.stderr)
        assert "No valid host" in error and f"{other.name} is on compute1" in error, error
        assert "was not migrated to compute2" in cold.stdout
        assert settle(conn, other.id).compute_host == "compute1"
        hist = json.loads(cli(mc, "history", "-f", "json", journal=journal).stdout)
        assert [r["status"] for r in hist[:2]] == ["failed", "failed"]
    finally:
        for thing, delete in ((group, conn.compute.delete_server_group), (picky, conn.compute.delete_flavor)):
            try:
                delete(thing)
            except Exception:
                pass


# ----------------------------------------------------------------------------- isolate

def test_isolate_lands_with_concurrent_tenant_boots_and_leaves_services_as_they_were(
        mc, conn, member_conn, servers, journal):
    conn.compute.disable_service(next(s for s in conn.compute.services(binary="nova-compute")
                                      if s.host == "compute3"), disabled_reason="ops: test pre-disabled")
    try:
        before = services(conn)
        vm = servers("compute1")
        tenant_ids, failures = [], []

        def tenant_boots():
            try:
                for _ in range(3):
                    s = servers(None, c=member_conn)
                    tenant_ids.append(s.id)
            except Exception as exc:  # reported below
                failures.append(exc)

        t = threading.Thread(target=tenant_boots)
        t.start()
        events, textfile = journal.with_name("events.jsonl"), journal.with_name("novamove.prom")
        res = cli(mc, "migrate", vm.name, "--to", "compute2", "--strategy", "isolate", "--reason",
                  "acceptance", "--events", str(events), "--metrics-textfile", str(textfile), journal=journal)
        t.join(600)
        assert res.returncode == 0, res.stderr
        assert "strategy isolate" in res.stdout
        # the event stream is the journal's, event for event; the metrics count the same move
        lines = check_run_stream(journal, events)
        kinds = {x["kind"] for x in lines}
        assert {"run.start", "service.disable", "service.enable", "server.migrate", "run.finish"} <= kinds, kinds
        assert 'novamove_moves_total{kind="server.migrate",result="done",verb="migrate"} 1.0' in \
            check_textfile(textfile, journal)
        assert conn.compute.get_server(vm.id).compute_host == "compute2"
        assert services(conn) == before, "every service exactly as before, compute3 with its own reason"
        assert not failures, failures
        assert [conn.compute.get_server(i).status for i in tenant_ids] == ["ACTIVE"] * 3
    finally:
        conn.compute.enable_service(next(s for s in conn.compute.services(binary="nova-compute")
                                         if s.host == "compute3"))


def test_sigkill_in_the_middle_of_isolate_then_recover_restores_every_service(mc, conn, servers, journal):
    before = services(conn)
    vm = servers("compute1")
    proc = cli(mc, "migrate", vm.name, "--to", "compute3", "--strategy", "isolate", "-q",
               journal=journal, popen=True)
    deadline = time.monotonic() + 300
    disabled = False
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():
            try:
                with sqlite3.connect(journal) as db:
                    disabled = db.execute("SELECT count(*) FROM events WHERE kind='service.disable'"
                                          " AND state='done'").fetchone()[0] > 0
            except sqlite3.Error:
                pass
        if disabled:
            break
        time.sleep(0.02)
    assert disabled, "isolate never disabled a service"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = services(conn)
    assert any(status == "disabled" and (reason or "").startswith("novamove:")
               for status, reason, _ in left.values()), left
    res = cli(mc, "recover", journal=journal)
    assert res.returncode == 0, res.stderr
    assert "re-enabled" in res.stdout
    assert services(conn) == before
    settle(conn, vm.id)
    # Killed after the move request, the run stays open until a recover sees the server settled
    # (that may be this pass); then there is nothing left to do.
    closing = cli(mc, "recover", journal=journal)
    assert closing.returncode == 0, closing.stderr
    again = cli(mc, "recover", journal=journal)
    assert again.returncode == 0 and "nothing to recover" in again.stdout, again.stdout


def test_sigkill_during_a_cold_move_then_recover_waits_for_it_and_confirms(mc, conn, servers, journal):
    """Killed while Nova copies the disk: the first `recover` finds the move still in flight and
    keeps the run open; once Nova reaches VERIFY_RESIZE on the target, `recover` confirms it."""
    vm = servers("compute1")
    mc.manager.set_fakevirt(cold_migration_seconds=8)
    try:
        proc = cli(mc, "migrate", vm.name, "--to", "compute2", "--cold", "-q", journal=journal,
                   popen=True)
        deadline = time.monotonic() + 120
        while conn.compute.get_server(vm.id).status != "RESIZE":
            assert proc.poll() is None and time.monotonic() < deadline, "the cold move never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        early = cli(mc, "recover", "-f", "json", journal=journal)
        assert early.returncode == 0, early.stderr
        [run] = json.loads(early.stdout)
        assert "still moving" in run["summary"], run
    finally:
        mc.manager.set_fakevirt(cold_migration_seconds=0)
    deadline = time.monotonic() + 120
    while conn.compute.get_server(vm.id).status != "VERIFY_RESIZE":
        assert time.monotonic() < deadline, "Nova never reached VERIFY_RESIZE"
        time.sleep(0.5)
    late = cli(mc, "recover", "-f", "json", journal=journal)
    assert late.returncode == 0, late.stderr
    [run] = json.loads(late.stdout)
    assert f"confirmed the resize of {vm.name} on compute2" in run["summary"], run
    after = settle(conn, vm.id)
    assert (after.status, after.compute_host) == ("ACTIVE", "compute2")
    again = cli(mc, "recover", journal=journal)
    assert again.returncode == 0 and "nothing to recover" in again.stdout


def test_isolate_refuses_while_another_runs_isolation_window_is_open(mc, conn, servers, journal):
    """compute3 carries another (say, killed) isolate run's tag: a second isolation would
    disable that run's target, so it is refused with one line and nothing changes."""
    vm = servers("compute1")
    conn.compute.disable_service(_service(conn, "compute3"),
                                 disabled_reason="novamove:feedc0ffee00: isolating the target")
    try:
        before = cloud_state(conn)
        res = cli(mc, "migrate", vm.name, "--to", "compute2", "--strategy", "isolate",
                  journal=journal)
        assert res.returncode == 4, (res.stdout, res.stderr)
        assert "another novamove run (feedc0ffee00) has compute3 disabled" in one_line_error(res.stderr)
        assert cloud_state(conn) == before
        native = cli(mc, "migrate", vm.name, "--to", "compute2", "-q", journal=journal)
        assert native.returncode == 0, native.stderr     # native touches no service: unaffected
    finally:
        conn.compute.enable_service(_service(conn, "compute3"))


@pytest.mark.parametrize("cap", ["2.55", "2.40"])
def test_a_cap_below_2_56_refuses_auto_and_isolate_runs_when_asked(cap, mc, conn, servers, journal):
    """Below 2.56 a cold migration cannot name its host. A user's cap is not the cloud's limit:
    auto refuses in one line naming --strategy isolate (no compute disabled); isolate, asked
    for, runs. 2.40 also exercises the pre-2.53 service API (host/binary, not service UUIDs)."""
    before = services(conn)
    vm = servers("compute1", status="SHUTOFF")
    refused = cli(mc, "migrate", vm.name, "--to", "compute3", "-q", journal=journal,
                  env={"OS_COMPUTE_API_VERSION": cap})
    assert refused.returncode == 4 and "--strategy isolate" in refused.stderr, refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and services(conn) == before
    res = cli(mc, "migrate", vm.name, "--to", "compute3", "--strategy", "isolate", "-f", "json", "-q",
              journal=journal, env={"NOVAMOVE_MAX_MICROVERSION": cap})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["strategy"], out["mode"], out["microversion"]) == ("isolate", "cold", cap)
    assert sorted(out["disabled_services"]) == ["compute1", "compute2"]
    assert conn.compute.get_server(vm.id).compute_host == "compute3"
    assert services(conn) == before


# ----------------------------------------------------------------------------- slow live migrations

def _wait_running(conn, server_id, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [m for m in conn.compute.migrations(instance_uuid=server_id)
                if m.migration_type == "live-migration" and m.status == "running"]
        if rows:
            return rows[0]
        time.sleep(0.5)
    raise AssertionError("the live migration never ran")


def test_aborted_live_migration_is_reported_as_failed(mc, conn, servers, journal, slow_live):
    slow_live(60)
    vm = servers("compute2")
    proc = cli(mc, "migrate", vm.name, "--to", "compute1", journal=journal, popen=True)
    _wait_running(conn, vm.id)
    aborted = cli(mc, "abort", vm.name, journal=journal)
    assert aborted.returncode == 0, aborted.stderr
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (out, err)
    assert "failed (migration cancelled)" in one_line_error(err)
    assert conn.compute.get_server(vm.id).compute_host == "compute2"


def test_live_migration_rolled_back_by_nova_is_a_failure(mc, conn, servers, journal):
    """The hypervisor fails the transfer and Nova rolls the server back to its source: the
    migrate API had accepted it and the server is ACTIVE again, but it did not move."""
    vm = servers("compute3")
    mc.manager.set_fakevirt(live_migration_rollback=1)
    try:
        res = cli(mc, "migrate", vm.name, "--to", "compute1", "-f", "json", journal=journal)
    finally:
        mc.manager.set_fakevirt(live_migration_rollback=0)
    assert res.returncode == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert not out["ok"] and out["migration_status"] in ("failed", "error")
    assert "was migrated" not in out["summary"]
    assert "novamove: error:" in one_line_error(res.stderr)
    # Nova writes no fault for the hypervisor's rollback: reported at once, not after waiting
    # REASON_PATIENCE (10 s) for a reason that never comes (it took ~11 s more before).
    from novamove.engine.lifecycle import REASON_PATIENCE
    assert out["elapsed_seconds"] < REASON_PATIENCE, out["elapsed_seconds"]
    after = conn.compute.get_server(vm.id)
    assert (after.compute_host, after.status) == ("compute3", "ACTIVE")


def test_cold_migration_rolled_back_by_nova_is_a_failure(mc, conn, servers, journal):
    """The source fails to copy the disk and Nova restores the server there (migration "error",
    an instance fault): exit 1 with Nova's reason, no resize left to confirm, nothing moved."""
    vm = servers("compute2")
    mc.manager.set_fakevirt(cold_migration_rollback=1)
    try:
        res = cli(mc, "migrate", vm.name, "--to", "compute3", "--cold", "-f", "json",
                  journal=journal)
    finally:
        mc.manager.set_fakevirt(cold_migration_rollback=0)
    assert res.returncode == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert not out["ok"] and out["migration_status"] == "error", out
    assert "was migrated" not in out["summary"]
    error = one_line_error(res.stderr)
    assert "disk copy to" in error and f"{vm.name} is on compute2" in error, error
    after = settle(conn, vm.id)
    assert (after.compute_host, after.status) == ("compute2", "ACTIVE")
    hist = json.loads(cli(mc, "history", "-f", "json", journal=journal).stdout)
    assert hist[0]["status"] == "failed"


def test_slow_live_migration_shows_progress_and_is_aborted_on_timeout(mc, conn, servers, journal, slow_live):
    # The timeout counts from the request, and os-migrateLive alone took 9 s on a loaded 2-core
    # machine: leave the transfer time to run (and report progress) before the abort.
    slow_live(300)
    vm = servers("compute1")
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "--timeout", "40", "--on-timeout", "abort",
              journal=journal)
    assert res.returncode == 7, (res.stdout, res.stderr)
    assert "memory remaining" in res.stderr
    assert "live migration aborted (migration cancelled)" in one_line_error(res.stderr)
    assert settle(conn, vm.id).compute_host == "compute1"


@pytest.fixture
def nova_api_paused(mc):
    """pause(seconds): stop the minicloud's nova-api process group (SIGSTOP), then resume it.
    Requests sent meanwhile get no answer, as with an API server that hangs or restarts."""
    from novamove.minicloud import procs
    state = mc.manager.state
    stopped: list[int] = []

    def pause(seconds: float) -> None:
        pgid = os.getpgid(procs.running(state / "run", state)["nova-api"])
        os.killpg(pgid, signal.SIGSTOP)
        stopped.append(pgid)
        try:
            time.sleep(seconds)
        finally:
            os.killpg(pgid, signal.SIGCONT)
            stopped.remove(pgid)
    yield pause
    for pgid in stopped:
        os.killpg(pgid, signal.SIGCONT)


def test_a_live_move_rides_out_an_unresponsive_compute_api(mc, conn, servers, journal, slow_live,
                                                           nova_api_paused, tmp_path):
    """The compute API stops answering for 8 s while Nova carries out the migration: novamove
    keeps watching instead of abandoning the move, and reports it landed."""
    import yaml
    slow_live(10)
    vm = servers("compute1")
    # The minicloud's clouds.yaml with a 3 s API timeout, so the silent API surfaces quickly.
    config = yaml.safe_load(Path(mc.env["OS_CLIENT_CONFIG_FILE"]).read_text())
    config["clouds"][mc.cloud]["api_timeout"] = 3
    clouds_yaml = tmp_path / "clouds.yaml"
    clouds_yaml.write_text(yaml.safe_dump(config))
    clouds_yaml.chmod(0o600)
    proc = cli(mc, "migrate", vm.name, "--to", "compute2", journal=journal, popen=True,
               env={"OS_CLIENT_CONFIG_FILE": str(clouds_yaml)})
    try:
        _wait_running(conn, vm.id)
        nova_api_paused(8)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    # The reads ride the silence out (retry.patient_reads says each try), or the waiter does.
    assert "still watching" in err or "next try in" in err, err
    assert f"{vm.name} was migrated from compute1 to compute2" in out
    assert conn.compute.get_server(vm.id).compute_host == "compute2"


def test_slow_live_migration_is_force_completed_on_timeout(mc, conn, servers, journal, slow_live):
    slow_live(600)
    vm = servers("compute1")
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "--timeout", "12", "--on-timeout",
              "force-complete", journal=journal)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert conn.compute.get_server(vm.id).compute_host == "compute2"


# ----------------------------------------------------------------------------- the verbs around a move

def test_no_confirm_then_revert_confirm_back_history_migrations(mc, conn, servers, journal):
    vm = servers("compute1")
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "--cold", "--no-confirm", "-q", journal=journal)
    assert res.returncode == 0, res.stderr
    assert "has a status of VERIFY_RESIZE" in res.stdout
    res = cli(mc, "revert", vm.name, journal=journal)
    assert res.returncode == 0, res.stderr
    s = conn.compute.get_server(vm.id)
    assert (s.compute_host, s.status) == ("compute1", "ACTIVE")

    res = cli(mc, "migrate", vm.name, "--to", "compute3", "--cold", "--no-confirm", "-q", journal=journal)
    assert res.returncode == 0, res.stderr
    res = cli(mc, "confirm", vm.name, journal=journal)
    assert res.returncode == 0, res.stderr
    s = conn.compute.get_server(vm.id)
    assert (s.compute_host, s.status) == ("compute3", "ACTIVE")

    res = cli(mc, "back", vm.name, "-q", journal=journal)
    assert res.returncode == 0, res.stderr
    assert f"{vm.name} was migrated from compute3 to compute1" in res.stdout

    hist = json.loads(cli(mc, "history", "-f", "json", journal=journal).stdout)
    assert [r["verb"] for r in hist[:5]] == ["back", "confirm", "migrate", "revert", "migrate"]
    migs = json.loads(cli(mc, "migrations", vm.name, "-f", "json", journal=journal).stdout)
    assert {m["status"] for m in migs} >= {"reverted", "confirmed"}
    assert os.stat(journal).st_mode & 0o777 == 0o600


def test_no_wait_returns_once_scheduled(mc, conn, servers, journal):
    vm = servers("compute1")
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "--no-wait", "-f", "json", journal=journal)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["migration_id"] and "is being migrated from compute1 to compute2" in out["summary"]
    assert settle(conn, vm.id).compute_host == "compute2"


def test_wait_follows_a_move_started_without_waiting(mc, conn, servers, journal, slow_live):
    """`novamove wait` picks up a move started with --no-wait (or by anyone): live to its end,
    cold to VERIFY_RESIZE and, with --confirm, confirmed; an idle server is a one-line error."""
    # Long enough that the transfer is still running when `wait` (a new process) starts.
    slow_live(25)
    live_vm, cold_vm = servers("compute1"), servers("compute1", status="SHUTOFF")
    idle = cli(mc, "wait", live_vm.name, journal=journal)
    assert idle.returncode == 4 and "is not being migrated" in one_line_error(idle.stderr)

    started = cli(mc, "migrate", live_vm.name, "--to", "compute2", "--no-wait", "-q", journal=journal)
    assert started.returncode == 0, started.stderr
    followed = cli(mc, "wait", live_vm.name, "-f", "json", journal=journal)
    assert followed.returncode == 0, (followed.stdout, followed.stderr)
    out = json.loads(followed.stdout)
    assert out["ok"] and out["migration_status"] == "completed"
    assert f"{live_vm.name} was migrated from compute1 to compute2" in out["summary"]
    assert conn.compute.get_server(live_vm.id).compute_host == "compute2"

    started = cli(mc, "migrate", cold_vm.name, "--to", "compute3", "--no-wait", "-q", journal=journal)
    assert started.returncode == 0, started.stderr
    unconfirmed = cli(mc, "wait", cold_vm.name, journal=journal)
    assert unconfirmed.returncode == 0, unconfirmed.stderr
    assert "awaiting confirmation" in unconfirmed.stdout
    assert conn.compute.get_server(cold_vm.id).status == "VERIFY_RESIZE"
    confirmed = cli(mc, "wait", cold_vm.name, "--confirm", journal=journal)
    assert confirmed.returncode == 0, confirmed.stderr
    assert f"{cold_vm.name} was migrated from compute1 to compute3 and has a status of SHUTOFF" \
        in confirmed.stdout
    after = conn.compute.get_server(cold_vm.id)
    assert (after.compute_host, after.status) == ("compute3", "SHUTOFF")


def test_check_mode_changes_nothing(mc, conn, servers, journal):
    vm = servers("compute1")
    before = cloud_state(conn)
    res = cli(mc, "migrate", vm.name, "--to", "compute2", "--check", "--strategy", "isolate", journal=journal)
    assert res.returncode == 0, res.stderr
    assert "would be migrated from compute1 to compute2 (live, isolate)" in res.stdout
    assert cloud_state(conn) == before


# ----------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def bad_input_servers(conn):
    booted: list = []
    boot = _booter(conn, booted)
    twin = f"{PREFIX}twin-{uuid.uuid4().hex[:4]}"
    boot("compute1", name=twin)
    boot("compute2", name=twin)
    yield {"twin": twin, "active": boot("compute1").name, "off": boot("compute1", status="SHUTOFF").name}
    _delete(conn, booted)


@pytest.fixture
def unreachable_cloud(tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text("clouds:\n  unreachable:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n"
                    "      username: u\n      password: p\n      project_name: p\n"
                    "      user_domain_name: Default\n      project_domain_name: Default\n"
                    "    identity_api_version: 3\n")
    return {"OS_CLIENT_CONFIG_FILE": str(path)}


def _service(conn, host):
    return next(s for s in conn.compute.services(binary="nova-compute") if s.host == host)


BAD = {
    # name: (argv builder, expected exit code, fragment of the error)
    "ambiguous name": (lambda s: ["migrate", s["twin"], "--to", "compute3"], 3, "servers are named"),
    "unknown server": (lambda s: ["migrate", "nmt-no-such-server", "--to", "compute2"], 3, "no server"),
    "unknown host": (lambda s: ["migrate", s["active"], "--to", "compute9"], 3, "no compute host"),
    "same host": (lambda s: ["migrate", s["active"], "--to", "compute1"], 9, "already on compute1"),
    "disabled target": (lambda s: ["migrate", s["active"], "--to", "compute3"], 4, "is disabled"),
    "down target": (lambda s: ["migrate", s["active"], "--to", "compute3"], 4, "is down"),
    "down source": (lambda s: ["migrate", s["active"], "--to", "compute2"], 4,
                    "host compute1 is down"),
    "live on shutoff": (lambda s: ["migrate", s["off"], "--to", "compute2", "--live"], 4, "use --cold"),
    "member 403": (lambda s: ["--os-cloud", "minicloud-member", "migrate", s["active"], "--to", "compute2"],
                   5, "403"),
    "unreachable api": (lambda s: ["--os-cloud", "unreachable", "migrate", s["active"], "--to", "compute2"],
                        6, "cannot reach"),
    "missing cloud": (lambda s: ["--os-cloud", "nmt-no-such-cloud", "migrate", s["active"], "--to",
                                 "compute2"], 5, "not in clouds.yaml"),
}


def test_target_without_room_is_refused_before_any_change(mc, conn, servers, journal):
    """Placement says the target cannot hold the flavor: exit 4, one line, nothing changed.
    Each fake compute has 15872 MB for guests; m1.large takes 8192 MB, so one is the most."""
    servers("compute3", flavor="m1.large")
    vm = servers("compute1", flavor="m1.large")
    before = cloud_state(conn)
    for strategy in ("native", "isolate"):
        res = cli(mc, "migrate", vm.name, "--to", "compute3", "--strategy", strategy, journal=journal)
        assert res.returncode == 4, (res.stdout, res.stderr)
        assert "has no room for" in one_line_error(res.stderr)
        assert cloud_state(conn) == before


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_nonzero_and_changes_nothing(case, mc, conn, bad_input_servers, journal,
                                                          unreachable_cloud):
    argv, code, fragment = BAD[case]
    env = unreachable_cloud if case == "unreachable api" else None
    if case == "disabled target":
        conn.compute.disable_service(_service(conn, "compute3"), disabled_reason="ops: test")
    forced_down = {"down target": "compute3", "down source": "compute1"}.get(case)
    if forced_down:
        conn.compute.update_service_forced_down(_service(conn, forced_down), forced=True)
    try:
        before = cloud_state(conn)
        res = cli(mc, *argv(bad_input_servers), journal=journal, env=env)
        assert res.returncode == code, (res.stdout, res.stderr)
        assert fragment in one_line_error(res.stderr)
        assert res.stderr.strip().count("\n") == 0, res.stderr
        assert cloud_state(conn) == before
    finally:
        if case == "disabled target":
            conn.compute.enable_service(_service(conn, "compute3"))
        if forced_down:
            conn.compute.update_service_forced_down(_service(conn, forced_down), forced=False)
