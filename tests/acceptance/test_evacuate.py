"""`novamove evacuate` / `unfence` end to end on the minicloud (a real Nova 34 on loopback).

One flow, because booting servers and restarting computes are the slow parts. compute3 holds two
ACTIVE servers, one SHUTOFF, one member of an anti-affinity group (the other member lives on
compute1) and one tagged novamove:maintenance=skip. Then:
  1. refusals, each one line, exit 4, nothing changed: compute3 up and not fenced; a fence
     command that fails; the stop-loss (two of three computes down); `--dry-run` shows the plan;
  2. (one test, as each test must leave the cloud as it found it) compute3's nova-compute is
     killed; `evacuate --fenced --max-parallel 1` is SIGKILLed while an
     evacuation is in flight, rerun and SIGKILLed again, then `novamove recover` finishes it:
     every server is on another host in the state it had, the group is still anti-affine, each
     evacuation record is `done` and there is exactly one per server (nothing evacuated twice),
     compute3 is forced down and disabled with novamove's tag, the skip-tagged server untouched;
     then `unfence` is refused while compute3's nova-compute is stopped; once it runs again (it
     cleans up the evacuated servers: records `completed`), `unfence --move-back` clears
     forced_down, enables compute3 and brings the servers back live (SHUTOFF ones cold), none
     duplicated;
  3. the host_evacuate Ansible module: check mode plans only, a real run evacuates.

Run it alone:  NOVAMOVE_MINICLOUD_DIR=... pytest tests/acceptance/test_evacuate.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cloudtest import REPO, check_run_stream, check_textfile, wait_until
from novamove.engine.evacuate import is_our_evacuate_reason
from novamove.engine.journal import Journal

pytestmark = pytest.mark.acceptance

HOST, FIRST, SECOND = "compute3", "compute1", "compute2"
SKIP_TAG = "novamove:maintenance=skip"


def ensure_instance_quota(conn, extra: int) -> None:
    project = conn.current_project_id
    quota = conn.compute.get_quota_set(project, usage=True)
    used = (quota.usage or {}).get("instances", 0)
    if 0 <= quota.instances < used + extra:
        n = used + extra + 10
        conn.compute.update_quota_set(project, instances=n, cores=max(quota.cores, n * 2),
                                      ram=max(quota.ram, n * 1024))


def _wait(conn, server_id: str, status: str, timeout: float = 180):
    def settled():
        s = conn.compute.get_server(server_id)
        return s if s.status == status and not s.task_state else None
    return wait_until(settled, timeout, 1, f"{server_id} {status}")


def _service(conn, host):
    [svc] = list(conn.compute.services(binary="nova-compute", host=host))
    return svc


def _force(conn, host: str, down: bool) -> None:
    svc = _service(conn, host)
    conn.compute.put(f"/os-services/{svc.id}", json={"forced_down": down}, microversion="2.53")


def _evacuations(conn, host=HOST) -> list:
    return list(conn.compute.migrations(migration_type="evacuation", source_compute=host))


def _start_compute(mc, host: str) -> None:
    """Start a compute's process. The minicloud's start-compute waits until Nova shows it up,
    which never happens while it is forced down: then only launch it."""
    if not _service(mc.conn(), host).is_forced_down:
        mc.manager.start_compute(host)
        return
    from novamove.minicloud.manager import _Starter
    m = mc.manager
    name = m.compute_component(host)
    from novamove.minicloud import procs
    if name not in procs.running(m.state / "run", m.state):
        _Starter(m.layout, m._saved_venv(), m.log).launch(name)


def _novamove(mc, *args: str) -> subprocess.Popen:
    env = {**os.environ, **mc.env, "OS_CLOUD": mc.cloud}
    return subprocess.Popen([sys.executable, "-m", "novamove", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, needle: str, nth: int = 1, timeout: float = 180) -> list[str]:
    """SIGKILL `proc` once its progress (stderr) shows `needle` for the nth time."""
    seen, lines = 0, []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if needle in line:
            seen += 1
            if seen == nth:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return lines
    proc.kill()
    raise AssertionError(f"never saw {needle!r} {nth} time(s):\n" + "\n".join(lines)
                         + "\n" + (proc.stdout.read() if proc.stdout else ""))


@pytest.fixture(scope="module")
def fleet(minicloud):
    conn = minicloud.conn()
    tag = uuid.uuid4().hex[:6]
    ensure_instance_quota(conn, 8)
    from novamove.cloud import provision
    image = provision.ensure_image(conn)
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False).id
    group = conn.compute.create_server_group(name=f"evc-{tag}-anti", policy="anti-affinity")
    created = []

    def boot(name, host, group_id=None):
        kw = {"scheduler_hints": {"group": group_id}} if group_id else {}
        s = conn.compute.create_server(name=f"evc-{tag}-{name}", image_id=image, flavor_id=flavor,
                                       networks="none", availability_zone=f"nova:{host}", **kw)
        created.append(s)
        return s

    others = [s.name for s in conn.compute.servers(all_projects=True, compute_host=HOST)]
    assert not others, f"{HOST} must start empty for this test (it holds {others})"
    try:
        plan = {"act1": HOST, "act2": HOST, "off1": HOST, "keep": HOST}
        servers = {name: boot(name, host) for name, host in plan.items()}
        servers["anti-src"] = boot("anti-src", HOST, group.id)
        servers = {k: _wait(conn, s.id, "ACTIVE") for k, s in servers.items()}
        servers["anti-other"] = _wait(conn, boot("anti-other", FIRST, group.id).id, "ACTIVE")
        conn.compute.stop_server(servers["off1"].id)
        servers["off1"] = _wait(conn, servers["off1"].id, "SHUTOFF")
        conn.compute.put(f"/servers/{servers['keep'].id}/tags/{SKIP_TAG}", microversion="2.26")
        assert {servers[n].compute_host for n in plan} | {servers["anti-src"].compute_host} == {HOST}
        yield {"servers": servers, "group": group, "tag": tag,
               "status": {k: s.status for k, s in servers.items()}}
    finally:
        minicloud.set_fakevirt(evacuation_seconds=0, evacuation_fail=0)
        # Put compute3 back whatever happened: running, cleaned up, not forced down, enabled.
        try:
            _bring_back(minicloud)
        except Exception as exc:  # best effort: report, keep cleaning
            print(f"cleanup: {exc}", file=sys.stderr)
        if _service(conn, SECOND).is_forced_down:
            _force(conn, SECOND, False)
        for s in created:
            conn.compute.delete_server(s.id, ignore_missing=True)
        for s in created:
            try:
                conn.compute.wait_for_delete(s, wait=120)
            except Exception:
                pass
        conn.compute.delete_server_group(group.id, ignore_missing=True)


def _snapshot(minicloud, fleet) -> tuple:
    conn = minicloud.conn()
    servers = {k: (conn.compute.get_server(s.id).compute_host, conn.compute.get_server(s.id).status)
               for k, s in fleet["servers"].items()}
    return minicloud.services(), servers, len(_evacuations(conn))


def _one_line_refusal(proc, needle: str) -> None:
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("novamove: error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_refusals_change_nothing(minicloud, fleet):
    before = _snapshot(minicloud, fleet)
    _one_line_refusal(minicloud.cli("evacuate", HOST), "compute3 is not fenced (up)")
    _one_line_refusal(minicloud.cli("evacuate", HOST, "--fence-cmd", "false"), "fence command exited 1")
    # Fencing is proven: a fence command that exits 0 (the wrong host, a BMC that lied), or the
    # operator's word, while compute3's nova-compute keeps reporting changes nothing.
    _one_line_refusal(minicloud.cli("evacuate", HOST, "--fence-cmd", "true", "-q"),
                      "compute3 is fenced but its nova-compute still reports")
    _one_line_refusal(minicloud.cli("evacuate", HOST, "--fenced"),
                      "compute3 is fenced but its nova-compute still reports")
    conn = minicloud.conn()
    _force(conn, SECOND, True)           # someone else's host is down too: 2 of 3
    try:
        _one_line_refusal(minicloud.cli("evacuate", HOST, "--fenced"), "stop-loss: 2 of 3 computes")
    finally:
        _force(conn, SECOND, False)
    assert _snapshot(minicloud, fleet) == before
    dry = minicloud.cli("evacuate", HOST, "--fenced", "--dry-run", "-f", "json")
    assert dry.returncode == 0, dry.stderr
    rep = json.loads(dry.stdout)
    by_name = {r["server_name"].split("-", 2)[-1]: r for r in rep["results"]}
    assert {n for n, r in by_name.items() if r["result"] == "planned"} == {"act1", "act2", "off1", "anti-src"}
    assert by_name["keep"]["result"] == "skipped"
    assert by_name["anti-src"]["dest_compute"] != FIRST             # anti-affinity in the plan
    assert _snapshot(minicloud, fleet) == before


def _bring_back(minicloud) -> None:
    """compute3 running again, cleaned up, not forced down, enabled (what each test must leave:
    the conftest checks it after every test)."""
    conn = minicloud.conn()
    _start_compute(minicloud, HOST)
    wait_until(lambda: not [m for m in _evacuations(conn) if m.status == "done"], 120, 1,
               "compute3 to clean up its evacuations")
    svc = _service(conn, HOST)
    if svc.is_forced_down:
        _force(conn, HOST, False)
    if svc.status == "disabled" and is_our_evacuate_reason(svc.disabled_reason):
        conn.compute.enable_service(svc)
    [rp] = list(conn.placement.resource_providers(name=f"{HOST}.fake.local"))
    wait_until(lambda: "COMPUTE_STATUS_DISABLED" not in conn.placement.get(
        f"/resource_providers/{rp.id}/traits", microversion="1.6").json()["traits"], 120, 1,
        f"{HOST} schedulable")


def test_killed_twice_recover_finishes_then_unfence_brings_everything_back(minicloud, fleet):
    """One story: the host dies, evacuate is SIGKILLed twice and `recover` finishes it; then
    unfence is refused until nova-compute runs again, and brings the servers back."""
    try:
        _killed_twice_then_recover(minicloud, fleet)
        _unfence(minicloud, fleet)
    except BaseException:
        _bring_back(minicloud)
        raise


def _killed_twice_then_recover(minicloud, fleet):
    conn = minicloud.conn()
    minicloud.manager.stop_compute(HOST, kill=True)         # the host "dies"
    minicloud.set_fakevirt(evacuation_seconds=3)
    journal = Journal(os.environ["NOVAMOVE_JOURNAL"])
    # Down per Nova is not fenced (a crashed nova-compute, a partition): refused, nothing changed.
    wait_until(lambda: _service(conn, HOST).state == "down", 60, 1, f"{HOST} down per Nova")
    _one_line_refusal(minicloud.cli("evacuate", HOST), "compute3 is not fenced (down per Nova")
    assert not _service(conn, HOST).is_forced_down and not _evacuations(conn)
    # 1st run: killed while its first evacuation is in flight
    _kill_when(_novamove(minicloud, "evacuate", HOST, "--fenced", "--max-parallel", "1"),
               "started (1 in flight)")
    [first] = [r for r in journal.unfinished_runs() if r["verb"] == "evacuate"]
    assert first["status"] == "running"
    svc = _service(conn, HOST)
    assert svc.is_forced_down and is_our_evacuate_reason(svc.disabled_reason)
    # 2nd run (no --fenced needed: the host is forced down): adopts the first's evacuation,
    # starts the next, and is killed in turn
    _kill_when(_novamove(minicloud, "evacuate", HOST, "--max-parallel", "1"), "started (", nth=1)
    # recover finishes it
    rec = minicloud.cli("recover", "-f", "json", timeout=600)
    assert rec.returncode == 0, rec.stderr
    rows = json.loads(rec.stdout)
    assert any("continued by evacuate run" in r["summary"] for r in rows), rows
    assert journal.unfinished_runs() == []

    servers = fleet["servers"]
    for name in ("act1", "act2", "off1", "anti-src"):
        s = conn.compute.get_server(servers[name].id)
        assert s.compute_host in (FIRST, SECOND), (name, s.compute_host)
        assert s.status == fleet["status"][name] and not s.task_state, (name, s.status)
        records = [m for m in _evacuations(conn) if m.server_id == servers[name].id]
        assert [m.status for m in records] == ["done"], (name, [m.status for m in records])
    assert conn.compute.get_server(servers["anti-src"].id).compute_host != \
        conn.compute.get_server(servers["anti-other"].id).compute_host
    keep = conn.compute.get_server(servers["keep"].id)
    assert keep.compute_host == HOST and not [m for m in _evacuations(conn) if m.server_id == keep.id]
    svc = _service(conn, HOST)
    assert svc.is_forced_down and svc.status == "disabled" and is_our_evacuate_reason(svc.disabled_reason)
    # a rerun now has nothing left to do and says so honestly (the skip-tagged server stays)
    again = minicloud.cli("evacuate", HOST, "-f", "json")
    rep = json.loads(again.stdout)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {r["result"] for r in rep["results"]} <= {"evacuated", "skipped"}
    ids = {s.id for s in servers.values()}
    assert len([m for m in _evacuations(conn) if m.server_id in ids]) == 4


def _unfence(minicloud, fleet):
    conn = minicloud.conn()
    servers = fleet["servers"]
    before = _snapshot(minicloud, fleet)
    _one_line_refusal(minicloud.cli("unfence", HOST, "--wait", "8"), "is not reporting")
    assert _snapshot(minicloud, fleet) == before
    _start_compute(minicloud, HOST)
    proc = minicloud.cli("unfence", HOST, "--move-back", "--wait", "60", "-f", "json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(proc.stdout)
    assert sum(r["result"] == "moved" for r in rep["results"]) == 4
    svc = _service(conn, HOST)
    assert svc.state == "up" and svc.status == "enabled" and not svc.is_forced_down
    ids = {s.id for s in servers.values()}
    assert {m.status for m in _evacuations(conn) if m.server_id in ids} == {"completed"}   # Nova's cleanup ran
    on_host = [s for s in conn.compute.servers(all_projects=True, compute_host=HOST)]
    ours = {s.id for s in servers.values()} - {servers["anti-other"].id}
    assert sorted(s.id for s in on_host if s.id in ours) == sorted(ours)  # each exactly once
    for name in ("act1", "act2", "off1", "anti-src", "keep"):
        s = conn.compute.get_server(servers[name].id)
        assert s.compute_host == HOST and s.status == fleet["status"][name], (name, s.status)
    modes = {r["server_name"].split("-", 2)[-1]: r["mode"] for r in rep["results"]}
    assert modes["act1"] == "live" and modes["off1"] == "cold"


def test_host_evacuate_module_check_mode_then_real_run(minicloud, fleet, tmp_path):
    ansible = Path(sys.executable).parent / "ansible-playbook"
    if not ansible.exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    minicloud.set_fakevirt(evacuation_seconds=0)
    minicloud.manager.stop_compute(HOST, kill=True)
    try:
        _module_runs(minicloud, fleet, tmp_path, ansible)
    except BaseException:
        _bring_back(minicloud)
        raise


def _module_runs(minicloud, fleet, tmp_path, ansible):
    conn = minicloud.conn()
    servers = fleet["servers"]
    playbook = tmp_path / "evacuate.yml"
    playbook.write_text(f"""---
- hosts: localhost
  gather_facts: false
  tasks:
    - novamove.openstack.host_evacuate:
        cloud: {minicloud.cloud}
        host: {HOST}
        fenced: true
        events: "{tmp_path}/events.jsonl"
        metrics_textfile: "{tmp_path}/novamove.prom"
      register: evac
    - ansible.builtin.copy:
        content: "{{{{ evac | to_json }}}}"
        dest: "{tmp_path}/{{{{ 'check' if ansible_check_mode else 'real' }}}}.json"
      check_mode: false
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(minicloud.env, OS_CLOUD=minicloud.cloud, ANSIBLE_COLLECTIONS_PATH=str(REPO),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    base = [str(ansible), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
            str(playbook)]
    check = subprocess.run(base + ["--check"], env=env, capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    planned = json.loads((tmp_path / "check.json").read_text())
    assert planned["changed"] and {r["result"] for r in planned["results"]} == {"planned", "skipped"}
    assert not _service(conn, HOST).is_forced_down
    real = subprocess.run(base, env=env, capture_output=True, text=True, timeout=600)
    assert real.returncode == 0, real.stdout + real.stderr
    done = json.loads((tmp_path / "real.json").read_text())
    assert done["changed"] and done["summary"] == f"evacuate {HOST}: 4 evacuated, 1 skipped"
    # the task's events option: the stream of the evacuation is the journal's, event for event
    # (the check-mode task journals nothing, so wrote nothing); the textfile counts the same
    journal = os.environ["NOVAMOVE_JOURNAL"]
    lines = check_run_stream(journal, tmp_path / "events.jsonl", done["run_id"])
    assert {x["run_id"] for x in lines} == {done["run_id"]}
    assert sum(x["kind"] == "evacuate.server" and x["state"] == "done" for x in lines) == 4
    text = check_textfile(tmp_path / "novamove.prom", journal, run_ids={done["run_id"]})
    assert 'novamove_moves_total{kind="evacuate.server",result="done",verb="evacuate"} 4.0' in text
    try:
        for name in ("act1", "act2", "off1", "anti-src"):
            s = conn.compute.get_server(servers[name].id)
            assert s.compute_host in (FIRST, SECOND) and s.status == fleet["status"][name]
        assert _service(conn, HOST).is_forced_down
    finally:
        _bring_back(minicloud)
