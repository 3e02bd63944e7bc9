"""`novamove drain` / `undrain` end to end on the minicloud (a real Nova on loopback).

One flow, because booting servers is the slow part: compute1 holds ACTIVE and SHUTOFF
servers, one member of an anti-affinity group (the other member is on compute2), and one
server in ERROR. Then:
  1. `drain --dry-run` prints the plan and changes nothing;
  2. `drain` is killed (SIGKILL) midway; `recover` reports the drain run;
  3. the same `drain` rerun finishes: every movable server is on another host, the group is
     still anti-affine, the ERROR server is reported skipped, compute1 is disabled with our
     reason; a watcher listing /os-migrations all along never sees more in flight than the caps;
  4. `undrain --move-back` restores the original placement and re-enables compute1.
Then, each on compute3 with servers of its own: a saved plan applied after the cloud changed
(each step checked again), Ctrl-C with --on-interrupt abort and finish, and a cold move that
Nova rolls back in the middle of a drain.

Run it alone on the shared minicloud:  flock /tmp/novamove-minicloud.lock pytest tests/acceptance/test_drain.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest

from novamove.engine.batch.drain import is_our_drain_reason

pytestmark = pytest.mark.acceptance

NOVAMOVE = str(Path(sys.executable).parent / "novamove")
SOURCE, OTHER, THIRD = "compute1", "compute2", "compute3"


class _Minicloud:
    def __init__(self, env: dict):
        self.env = env
        self.cloud = "minicloud"
        self.computes = [SOURCE, OTHER, THIRD]


_HANDLE: dict = {}


@pytest.fixture(scope="module")
def cloud_env(request) -> dict:
    """The conftest's `minicloud` fixture when present; else `novamove minicloud env`."""
    try:
        mc = request.getfixturevalue("minicloud")
        _HANDLE["minicloud"] = mc
        return dict(mc.env)
    except pytest.FixtureLookupError:
        _HANDLE.pop("minicloud", None)
    proc = subprocess.run([NOVAMOVE, "minicloud", "env"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("the minicloud is not running (novamove minicloud up)")
    env = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip("'\"")
    return env


@pytest.fixture(scope="module")
def conn(cloud_env):
    import openstack
    with mock.patch.dict(os.environ, cloud_env):
        c = openstack.connect(cloud="minicloud")
        c.compute.get("/")          # fail early if unreachable
        yield c


@pytest.fixture(scope="module")
def adapter(cloud_env):
    from novamove import cloud
    with mock.patch.dict(os.environ, cloud_env):
        c = cloud.connect("minicloud")
        yield c


def _wait(conn, server_id: str, status: str, timeout: float = 180):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = conn.compute.get_server(server_id)
        if s.status == status and not s.task_state:
            return s
        time.sleep(1)
    raise AssertionError(f"server {server_id} not {status} in {timeout}s (is {s.status}/{s.task_state})")


def ensure_instance_quota(conn, extra: int) -> None:
    """The admin project's default quota (10 instances) is shared with the other tests."""
    project = conn.current_project_id
    quota = conn.compute.get_quota_set(project, usage=True)
    used = (quota.usage or {}).get("instances", 0)
    if 0 <= quota.instances < used + extra:
        n = used + extra + 10
        conn.compute.update_quota_set(project, instances=n, cores=max(quota.cores, n * 2),
                                      ram=max(quota.ram, n * 1024))


@pytest.fixture(scope="module")
def fleet(conn, cloud_env):
    """Boot the servers of the scenario; delete them (and re-enable compute1) afterwards."""
    from novamove.cloud import provision
    tag = uuid.uuid4().hex[:6]
    ensure_instance_quota(conn, 8)
    image = provision.ensure_image(conn)
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False).id
    group = conn.compute.create_server_group(name=f"drn-{tag}-anti", policy="anti-affinity")
    created = []

    def boot(name, host, group_id=None):
        kw = {"scheduler_hints": {"group": group_id}} if group_id else {}
        s = conn.compute.create_server(name=f"drn-{tag}-{name}", image_id=image, flavor_id=flavor,
                                       networks="none", availability_zone=f"nova:{host}", **kw)
        created.append(s)
        return s

    try:
        plan = {"act1": SOURCE, "act2": SOURCE, "act3": SOURCE, "off1": SOURCE, "off2": SOURCE,
                "err1": SOURCE}
        servers = {name: boot(name, host) for name, host in plan.items()}
        servers["anti-src"] = boot("anti-src", SOURCE, group.id)
        servers = {k: _wait(conn, s.id, "ACTIVE") for k, s in servers.items()}
        # Booted after its sibling so the anti-affinity filter sends it away from compute1.
        servers["anti-other"] = _wait(conn, boot("anti-other", OTHER, group.id).id, "ACTIVE")
        for name in ("off1", "off2"):
            conn.compute.stop_server(servers[name].id)
        for name in ("off1", "off2"):
            servers[name] = _wait(conn, servers[name].id, "SHUTOFF")
        conn.compute.reset_server_state(servers["err1"].id, "error")
        servers["err1"] = conn.compute.get_server(servers["err1"].id)
        assert servers["err1"].status == "ERROR"
        assert {servers[n].compute_host for n in plan} == {SOURCE}
        assert servers["anti-other"].compute_host == OTHER
        yield {"servers": servers, "group": group, "tag": tag}
    finally:
        for s in created:
            try:
                conn.compute.reset_server_state(s.id, "active")
            except Exception:
                pass
            conn.compute.delete_server(s.id, ignore_missing=True)
        for s in created:
            try:
                conn.compute.wait_for_delete(s, wait=120)
            except Exception:
                pass
        conn.compute.delete_server_group(group.id, ignore_missing=True)
        for svc in conn.compute.services(binary="nova-compute", host=SOURCE):
            if svc.status == "disabled" and is_our_drain_reason(svc.disabled_reason):
                conn.compute.enable_service(svc)
        _set_fake(cloud_env, {})


def _control_file(cloud_env) -> Path:
    return Path(cloud_env["OS_CLIENT_CONFIG_FILE"]).parent / "fakevirt.json"


def _set_fake(cloud_env, settings: dict) -> None:
    """Slow the fake driver down (or back to its defaults with {})."""
    settings = settings or {"live_migration_seconds": 0.5, "cold_migration_seconds": 0}
    if "minicloud" in _HANDLE:
        _HANDLE["minicloud"].set_fakevirt(**settings)
    else:
        _control_file(cloud_env).write_text(json.dumps(settings))


def _hosts(conn, servers: dict) -> dict:
    return {name: conn.compute.get_server(s.id).compute_host for name, s in servers.items()}


def _service(conn, host):
    [svc] = list(conn.compute.services(binary="nova-compute", host=host))
    return svc


class MigrationWatcher:
    """Lists /os-migrations like an operator would, with openstacksdk (not novamove's own
    adapter, whose listing is under test), and records the most seen in flight. A listing that
    fails is counted, not hidden: the test asserts there were none."""

    def __init__(self, conn, server_ids: set[str]):
        self.conn, self.ids = conn, server_ids
        self.max_total = 0
        self.max_per_dest: dict[str, int] = {}
        self.max_per_source: dict[str, int] = {}
        self.listings = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                rows = [m for m in self.conn.compute.migrations()
                        if m.server_id in self.ids and m.status not in
                        ("completed", "confirmed", "error", "failed", "cancelled", "reverted", "done")]
                self.listings += 1
            except Exception as exc:     # noqa: BLE001 - recorded and asserted on
                self.errors.append(str(exc))
                rows = []
            self.max_total = max(self.max_total, len(rows))
            for attr, seen in (("dest_compute", self.max_per_dest), ("source_compute", self.max_per_source)):
                counts: dict[str, int] = {}
                for m in rows:
                    counts[getattr(m, attr)] = counts.get(getattr(m, attr), 0) + 1
                for h, n in counts.items():
                    seen[h] = max(seen.get(h, 0), n)
            self._stop.wait(0.3)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)


def _cli(cloud_env, journal, *args, timeout=600):
    env = dict(os.environ, **cloud_env, NOVAMOVE_JOURNAL=str(journal))
    return subprocess.run([NOVAMOVE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_drain_kill_rerun_undrain(conn, adapter, fleet, cloud_env, tmp_path):
    servers = fleet["servers"]
    journal = tmp_path / "journal.sqlite"
    original = _hosts(conn, servers)
    others_on_source = {s.id for s in conn.compute.servers(all_projects=True, host=SOURCE)} - \
        {s.id for s in servers.values()}
    ids = {s.id for s in servers.values()} | others_on_source
    movable = {n for n in servers if n not in ("err1", "anti-other")}

    # 1. --dry-run: the ordered plan and the pre-checks, nothing changed.
    before_migrations = {m.id for m in adapter.list_migrations(host=SOURCE)}
    dry = _cli(cloud_env, journal, "drain", SOURCE, "--dry-run", "-f", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    steps = {s["server_id"]: s for s in plan["steps"]}
    assert steps[servers["err1"].id]["dest_compute"] is None and "ERROR" in steps[servers["err1"].id]["skip_reason"]
    assert steps[servers["anti-src"].id]["dest_compute"] == THIRD          # compute2 holds its sibling
    assert steps[servers["off1"].id]["mode"] == "cold" and steps[servers["act1"].id]["mode"] == "live"
    assert _service(conn, SOURCE).status == "enabled"
    assert _hosts(conn, servers) == original
    assert {m.id for m in adapter.list_migrations(host=SOURCE)} == before_migrations
    assert not journal.exists() or "drain" not in _cli(cloud_env, journal, "history", "-f", "json").stdout

    _set_fake(cloud_env, {"live_migration_seconds": 3, "cold_migration_seconds": 2})
    caps = ["--max-parallel", "3", "--max-per-host", "2", "--poll-interval", "0.5"]
    env = dict(os.environ, **cloud_env, NOVAMOVE_JOURNAL=str(journal))
    with MigrationWatcher(conn, ids) as watcher:
        # 2. kill the drain once the first server has left compute1.
        proc = subprocess.Popen([NOVAMOVE, "drain", SOURCE, "--reason", "acceptance", *caps, "-f", "json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            now = _hosts(conn, {n: servers[n] for n in movable})
            if any(h != SOURCE for h in now.values()):
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"drain ended before it could be killed: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        left = _hosts(conn, {n: servers[n] for n in movable})
        assert any(h == SOURCE for h in left.values()), "the drain finished before the kill"

        rec = _cli(cloud_env, journal, "recover", "-f", "json")
        assert rec.returncode == 0, rec.stderr
        drains = [r for r in json.loads(rec.stdout) if r["verb"] == "drain"]
        assert len(drains) == 1 and f"novamove drain {SOURCE}" in drains[0]["summary"], rec.stdout
        # recover leaves a drain to the drain: the host stays disabled, nothing was undone.
        assert _service(conn, SOURCE).status == "disabled"

        # 3. the same drain, rerun, finishes the job (err1, ERROR, stays: exit 8 without
        # --allow-unmovable, as docs/drain.md says).
        rerun = _cli(cloud_env, journal, "drain", SOURCE, "--reason", "acceptance", *caps, "-f", "json",
                     "--allow-unmovable")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = json.loads(rerun.stdout)
    results = {r["server_id"]: r for r in report["results"]}
    after = _hosts(conn, servers)
    for name in movable:
        assert after[name] != SOURCE, f"{name} still on {SOURCE}"
        assert results[servers[name].id]["result"] == "moved", results[servers[name].id]
        assert results[servers[name].id]["dest_compute"] == after[name]
    assert results[servers["err1"].id]["result"] == "skipped"
    assert "ERROR" in results[servers["err1"].id]["detail"]
    assert after["err1"] == SOURCE
    assert after["anti-src"] != after["anti-other"]
    for name in ("off1", "off2"):
        assert conn.compute.get_server(servers[name].id).status == "SHUTOFF"
    for name in ("act1", "act2", "act3", "anti-src"):
        assert conn.compute.get_server(servers[name].id).status == "ACTIVE"
    svc = _service(conn, SOURCE)
    assert svc.status == "disabled" and is_our_drain_reason(svc.disabled_reason)
    assert "acceptance" in svc.disabled_reason
    assert watcher.errors == [] and watcher.listings > 10
    assert watcher.max_total >= 1
    assert watcher.max_total <= 3 and max(watcher.max_per_source.values()) <= 2
    assert max(watcher.max_per_dest.values()) <= 2

    # 4. undrain --move-back: original placement, compute1 enabled again.
    _set_fake(cloud_env, {})
    back = _cli(cloud_env, journal, "undrain", SOURCE, "--move-back", "--max-parallel", "3", "-f", "json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert _service(conn, SOURCE).status == "enabled"
    restored = _hosts(conn, servers)
    assert restored == original
    for name in ("off1", "off2"):
        assert conn.compute.get_server(servers[name].id).status == "SHUTOFF"


def test_undrain_refuses_a_host_disabled_by_someone_else(conn, cloud_env, tmp_path):
    svc = _service(conn, THIRD)
    assert svc.status == "enabled"
    conn.compute.disable_service(svc, disabled_reason="RMA 42 (not novamove)")
    try:
        out = _cli(cloud_env, tmp_path / "j.sqlite", "undrain", THIRD)
        assert out.returncode == 4, out.stdout + out.stderr
        assert "someone else" in out.stderr and "\n" not in out.stderr.strip()
        assert _service(conn, THIRD).status == "disabled"
    finally:
        conn.compute.enable_service(_service(conn, THIRD))


def test_bad_input_is_one_line_and_changes_nothing(conn, cloud_env, tmp_path):
    def cloud_state():
        return ({s.host: (s.status, s.disabled_reason) for s in conn.compute.services(binary="nova-compute")},
                {s.id: (s.compute_host, s.status) for s in conn.compute.servers(all_projects=True)},
                {m.id for m in conn.compute.migrations()})
    before = cloud_state()
    out = _cli(cloud_env, tmp_path / "j.sqlite", "drain", "no-such-host")
    assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
    out = _cli(cloud_env, tmp_path / "j.sqlite", "drain", SOURCE, "--to", SOURCE)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    out = _cli(cloud_env, tmp_path / "j.sqlite", "drain", SOURCE, "--timeout", "0")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert cloud_state() == before


def test_a_move_nova_rolls_back_is_failed_and_the_others_still_move(minicloud, servers, tmp_path):
    """One cold move fails on the source (Nova restores the server there): the drain reports it
    failed with Nova's reason, still moves the rest, and exits 1; undrain puts the host back."""
    conn = minicloud.conn()
    [active] = servers(1, host=THIRD, prefix="rb-act")
    [stopped] = servers(1, host=THIRD, prefix="rb-off")
    conn.compute.stop_server(stopped)
    conn.compute.wait_for_server(stopped, status="SHUTOFF", wait=120, interval=1)
    journal = tmp_path / "journal.sqlite"
    minicloud.set_fakevirt(cold_migration_rollback=1)
    try:
        out = _cli(minicloud.env, journal, "drain", THIRD, "--to", OTHER, "-f", "json")
        assert out.returncode == 1, out.stdout + out.stderr
        report = json.loads(out.stdout)
        results = {r["server_id"]: r for r in report["results"]}
        assert results[active.id]["result"] == "moved" and results[active.id]["dest_compute"] == OTHER
        assert results[stopped.id]["result"] == "failed", results[stopped.id]
        assert "disk copy to" in results[stopped.id]["detail"], results[stopped.id]
        assert not report["ok"]
        assert conn.compute.get_server(active.id).compute_host == OTHER
        after = conn.compute.get_server(stopped.id)
        assert (after.compute_host, after.status) == (THIRD, "SHUTOFF")
    finally:
        minicloud.set_fakevirt(cold_migration_rollback=0)
        undrain = _cli(minicloud.env, journal, "undrain", THIRD)
    assert undrain.returncode == 0, undrain.stdout + undrain.stderr
    assert _service(conn, THIRD).status == "enabled"


def _boot_on(servers, host: str, prefix: str, count: int) -> list:
    return servers(count, host=host, prefix=f"{prefix}-{uuid.uuid4().hex[:4]}")


def test_saved_plan_is_applied_with_each_step_checked_again(minicloud, servers, tmp_path):
    """`plan drain -o` writes the plan and changes nothing; between plan and apply one server is
    deleted and one moved by someone else: `apply` skips both with the reason and moves the rest."""
    conn = minicloud.conn()
    keep, moved_away, deleted = _boot_on(servers, THIRD, "pa", 3)
    journal, plan_file = tmp_path / "journal.sqlite", tmp_path / "plan.json"
    planned = _cli(minicloud.env, journal, "plan", "drain", THIRD, "--to", OTHER, "-o", str(plan_file))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    steps = {s["server_id"]: s for s in json.loads(plan_file.read_text())["steps"]}
    assert {keep.id, moved_away.id, deleted.id} <= set(steps)
    assert all(steps[s.id]["dest"] == OTHER for s in (keep, moved_away, deleted))
    assert _service(conn, THIRD).status == "enabled"
    assert {minicloud.host_of(s.id) for s in (keep, moved_away, deleted)} == {THIRD}

    conn.compute.live_migrate_server(moved_away, host=SOURCE, block_migration="auto")
    minicloud.delete([deleted])
    deadline = time.monotonic() + 120
    while minicloud.host_of(moved_away.id) != SOURCE or \
            conn.compute.get_server(moved_away.id).status != "ACTIVE":
        assert time.monotonic() < deadline, "the outside move did not finish"
        time.sleep(1)

    try:
        out = _cli(minicloud.env, journal, "apply", str(plan_file), "-f", "json")
        assert out.returncode == 0, out.stdout + out.stderr
        results = {r["server_id"]: r for r in json.loads(out.stdout)["results"]}
        assert results[keep.id]["result"] == "moved" and minicloud.host_of(keep.id) == OTHER
        assert results[moved_away.id]["result"] == "skipped"
        assert f"no longer on {THIRD} (now on {SOURCE})" in results[moved_away.id]["detail"]
        assert results[deleted.id]["result"] == "gone"
        assert "no longer exists" in results[deleted.id]["detail"]
        assert minicloud.host_of(moved_away.id) == SOURCE
        svc = _service(conn, THIRD)
        assert svc.status == "disabled" and is_our_drain_reason(svc.disabled_reason)
    finally:
        undrain = _cli(minicloud.env, journal, "undrain", THIRD)
    assert undrain.returncode == 0, undrain.stdout + undrain.stderr


@pytest.mark.parametrize("on_interrupt", ["abort", "finish"])
def test_ctrl_c_starts_nothing_new_and_aborts_or_finishes_the_move_in_flight(
        on_interrupt, minicloud, servers, tmp_path):
    conn = minicloud.conn()
    first, second = _boot_on(servers, THIRD, f"int{on_interrupt[:2]}", 2)
    journal = tmp_path / "journal.sqlite"
    minicloud.set_fakevirt(live_migration_seconds=20)
    env = dict(os.environ, **minicloud.env, NOVAMOVE_JOURNAL=str(journal))
    proc = subprocess.Popen([NOVAMOVE, "drain", THIRD, "--to", OTHER, "--max-parallel", "1",
                             "--order", "name", "--on-interrupt", on_interrupt, "-f", "json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(m.status == "running" for m in conn.compute.migrations(instance_uuid=first.id)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first live migration never ran"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        minicloud.set_fakevirt(live_migration_seconds=0.5)
    try:
        _check_interrupted_drain(conn, proc.returncode, out, err, on_interrupt, first, second)
    finally:
        undrain = _cli(minicloud.env, journal, "undrain", THIRD)
    assert undrain.returncode == 0, undrain.stdout + undrain.stderr


def _check_interrupted_drain(conn, returncode, out, err, on_interrupt, first, second) -> None:
    host_of = lambda s: conn.compute.get_server(s.id).compute_host  # noqa: E731
    assert returncode == 130, out + err
    report = json.loads(out)
    results = {r["server_id"]: r for r in report["results"]}
    assert report["interrupted"] and not report["ok"]
    assert results[second.id]["result"] == "not-started"
    assert host_of(second) == THIRD
    if on_interrupt == "abort":
        assert results[first.id]["result"] == "aborted", results[first.id]
        expected = THIRD
    else:
        assert results[first.id]["result"] == "moved", results[first.id]
        expected = OTHER
    deadline = time.monotonic() + 60
    while conn.compute.get_server(first.id).status != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert host_of(first) == expected


def test_drain_of_a_down_host_with_servers_is_refused_and_changes_nothing(minicloud, servers, tmp_path):
    conn = minicloud.conn()
    [vm] = _boot_on(servers, THIRD, "down", 1)
    conn.compute.update_service_forced_down(_service(conn, THIRD), forced=True)
    try:
        for extra in (["--dry-run"], []):
            out = _cli(minicloud.env, tmp_path / "j.sqlite", "drain", THIRD, *extra)
            assert out.returncode == 4, out.stdout + out.stderr
            assert out.stderr.count("\n") == 1 and "is down" in out.stderr, out.stderr
            svc = _service(conn, THIRD)
            assert svc.status == "enabled" and not svc.disabled_reason
            assert minicloud.host_of(vm.id) == THIRD
    finally:
        conn.compute.update_service_forced_down(_service(conn, THIRD), forced=False)
