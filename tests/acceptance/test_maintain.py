"""`novamove maintain` end to end on the minicloud (>= 4 computes: NOVAMOVE_TEST_COMPUTES=4).

1. A campaign over the 4 computes, K=2: ACTIVE and SHUTOFF servers, an anti-affinity pair, a
   `stop`-tagged server and a `skip`-tagged one (its host is left out). The hook records, inside
   the hook, what its host holds and how many computes are disabled, then restarts the compute.
2. A hook failing on the 2nd host stops the campaign (max-failed-hosts 1): that host stays
   disabled with the reason, the 3rd is untouched; `novamove undrain` gives the host back.
3. SIGKILL during a drain, rerun: continues; SIGKILL during a hook, rerun: refused until
   --rerun-hook; it finishes and nothing was moved twice. K=2: the first two hosts share one
   drain (moves of both in flight at once); SIGKILL during that drain, rerun: finishes.
4. Capacity refusal (N+K) in --dry-run and in a run, with the numbers, nothing changed.

Run alone: NOVAMOVE_TEST_COMPUTES=4 pytest tests/acceptance/test_maintain.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudtest import REPO, check_run_stream, check_textfile, wait_until

pytestmark = pytest.mark.acceptance

TAG_KEY = "novamove:maintenance"


@pytest.fixture(scope="module")
def minicloud(minicloud, tmp_path_factory):
    """The session cloud when it has 4 computes (NOVAMOVE_TEST_COMPUTES=4); else a 4-compute
    minicloud of this module's own (base port + 120), taken down afterwards. Campaigns need
    N+K room: with K=2 out, two other hosts must absorb their servers."""
    if len(minicloud.computes) >= 4:
        yield minicloud
        return
    from novamove.minicloud import Minicloud
    state = tmp_path_factory.mktemp("maintain") / "mc"
    base = int(os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT") or 17000) + 120
    manager = Minicloud(state, log=lambda m: print(f"[maintain minicloud] {m}", file=sys.stderr))
    manager.up(computes=4, base_port=base, clean=True, report_interval=2, service_down_time=8)
    lay = manager.layout
    handle = type(minicloud)(manager, manager.env(), [lay.compute_host(i) for i in range(1, 5)])
    previous = os.environ.get("NOVAMOVE_MINICLOUD_DIR")
    os.environ["NOVAMOVE_MINICLOUD_DIR"] = str(state)
    handle._refresh()
    try:
        yield handle
    finally:
        if previous is not None:
            os.environ["NOVAMOVE_MINICLOUD_DIR"] = previous
        minicloud._refresh()
        manager.down()


@pytest.fixture(scope="module", autouse=True)
def four_computes(minicloud):
    assert len(minicloud.computes) >= 4, minicloud.computes


def tag(minicloud, server, intent):
    minicloud.conn().compute.put(f"/servers/{server.id}/tags/{TAG_KEY}={intent}", microversion="2.26")


def migrations(minicloud):
    rows = minicloud.conn().compute.get("/os-migrations", microversion="2.80").json()["migrations"]
    return rows


def moved_count(minicloud, ids, since_id=0):
    """Moves that happened (requests Nova refused leave "error" records: not moves)."""
    out = {}
    for m in migrations(minicloud):
        if m["instance_uuid"] in ids and int(m["id"]) > since_id and m["status"] in ("completed", "confirmed"):
            out[m["instance_uuid"]] = out.get(m["instance_uuid"], 0) + 1
    return out


def last_migration_id(minicloud):
    return max((int(m["id"]) for m in migrations(minicloud)), default=0)


def maintain(minicloud, *args, timeout=600):
    return minicloud.cli("maintain", *args, timeout=timeout)


def popen(minicloud, *args):
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud"}
    return subprocess.Popen([sys.executable, "-m", "novamove", "maintain", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


HOOK = """#!/bin/sh
# Records what the host holds, inside the hook, then restarts that compute.
{python} - <<'EOF' >> {record}
import json, os, openstack
c = openstack.connect(cloud="minicloud")
host = os.environ["NOVAMOVE_HOST"]
on = [s.status for s in c.compute.servers(all_projects=True, compute_host=host)]
disabled = [s.host for s in c.compute.services() if s.binary == "nova-compute" and s.status == "disabled"]
print(json.dumps({{"host": host, "statuses": on, "disabled": disabled, "run": os.environ["NOVAMOVE_RUN_ID"],
                  "hypervisor": os.environ["NOVAMOVE_HYPERVISOR"]}}))
EOF
exec {novamove} minicloud restart-compute "$NOVAMOVE_HOST"
"""


def test_campaign_restarts_each_compute_empty(minicloud, servers, tmp_path):
    c1, c2, c3, c4 = minicloud.computes[:4]
    conn = minicloud.conn()
    group = conn.compute.create_server_group(name="aa-maint", policy="anti-affinity")
    pair = []
    try:
        a = servers(2, host=c1, prefix="mt-a")
        off = servers(1, host=c1, prefix="mt-off")[0]
        conn.compute.stop_server(off)
        st = servers(1, host=c2, prefix="mt-stop")[0]
        b = servers(1, host=c3, prefix="mt-b")
        sk = servers(1, host=c4, prefix="mt-skip")[0]
        image = conn.image.find_image("cirros-fake") or next(iter(conn.image.images()))
        flavor = conn.compute.find_flavor("m1.nano")
        for i, h in enumerate((c1, c2)):
            s = conn.compute.create_server(name=f"mt-pair-{i}", image_id=image.id, flavor_id=flavor.id,
                                           networks="none", availability_zone=f"nova:{h}",
                                           scheduler_hints={"group": group.id})
            pair.append(s)
        pair[:] = [conn.compute.wait_for_server(s, wait=120, interval=1) for s in pair]
        conn.compute.wait_for_server(off, status="SHUTOFF", wait=60, interval=1)
        tag(minicloud, st, "stop")
        tag(minicloud, sk, "skip")
        before = {s.id: conn.compute.get_server(s.id).status for s in a + [off, st] + b + [sk] + pair}
        first_mig = last_migration_id(minicloud)
        record = tmp_path / "record.jsonl"
        hook = tmp_path / "hook.sh"
        hook.write_text(HOOK.format(python=sys.executable, record=record,
                                    novamove=Path(sys.executable).parent / "novamove"))
        hook.chmod(0o755)

        dry = maintain(minicloud, c1, c2, c3, c4, "--max-hosts", "2", "--dry-run", "--hook", str(hook))
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "stage" in dry.stdout and "not serviced" in dry.stdout and "skip" in dry.stdout

        t0 = time.monotonic()
        # (The hook restarts the compute before it returns: the heartbeat gate is enough here and
        # keeps this test short; the restart gate has its own test below.)
        events, textfile = tmp_path / "events.jsonl", tmp_path / "novamove.prom"
        proc = maintain(minicloud, c1, c2, c3, c4, "--max-hosts", "2", "--hook", str(hook), "--gate", "heartbeat",
                        "-f", "json", "--events", str(events), "--metrics-textfile", str(textfile))
        data = json.loads(proc.stdout)
        # compute4 holds the skip-tagged server: left out, so the campaign is incomplete (8)
        assert proc.returncode == 8, proc.stdout[-3000:] + proc.stderr[-3000:]
        outcome = {r["host"]: r["outcome"] for r in data["results"]}
        assert outcome == {c1: "done", c2: "done", c3: "done", c4: "skipped"}
        # the stream of the campaign and of its drains is the journal's, event for event; promtool
        # accepts the textfile and its counters are the journal's
        lines = check_run_stream(os.environ["NOVAMOVE_JOURNAL"], events, data["run_id"])
        hooks = [x for x in lines if x["kind"] == "maintain.hook" and x["state"] == "done"]
        assert sorted(x["target"] for x in hooks) == sorted([c1, c2, c3])
        text = check_textfile(textfile, os.environ["NOVAMOVE_JOURNAL"], run_ids={x["run_id"] for x in lines})
        assert 'novamove_campaign_hosts{result="done"} 3.0' in text
        assert "skip" in next(r["detail"] for r in data["results"] if r["host"] == c4)
        seen = [json.loads(line) for line in record.read_text().splitlines()]
        assert sorted(x["host"] for x in seen) == sorted([c1, c2, c3])
        for x in seen:
            # every hook ran on an empty host, except the stop-tagged server, powered off
            if x["host"] == c2:
                assert x["statuses"] == ["SHUTOFF"], x
            else:
                assert x["statuses"] == [], x
            assert len(x["disabled"]) <= 2 and x["host"] in x["disabled"]
            assert x["run"] == data["run_id"]
        assert data["peak_out"] <= 2
        # group members never moved at the same time (hosts sharing a group are not drained together)
        # (a request Nova refused -- NoValidHost from a stale scheduler view of a compute just
        # restarted -- leaves an "error" record: only the moves that happened count)
        pair_ids = {p.id for p in pair}
        spans = [(m["created_at"], m["updated_at"]) for m in migrations(minicloud)
                 if m["instance_uuid"] in pair_ids and int(m["id"]) > first_mig
                 and m["status"] in ("completed", "confirmed", "finished")]
        assert len(spans) == 2 and (spans[0][1] <= spans[1][0] or spans[1][1] <= spans[0][0]), spans
        hosts_of_pair = {minicloud.host_of(p.id) for p in pair}
        assert len(hosts_of_pair) == 2                         # still anti-affine
        # all hosts enabled and up at the end, every server as it was
        assert all(v[0] == "enabled" and v[1] == "up" for v in minicloud.services().values())
        after = {sid: conn.compute.get_server(sid).status for sid in before}
        assert after == before
        assert minicloud.host_of(st.id) == c2 and minicloud.host_of(sk.id) == c4
        assert max(moved_count(minicloud, set(before), first_mig).values()) == 1    # nothing moved twice
        print(f"campaign of 3 hosts took {time.monotonic() - t0:.0f} s")
    finally:
        minicloud.delete(pair)
        conn.compute.delete_server_group(group, ignore_missing=True)


def test_hosts_out_together_are_drained_in_one_drain(minicloud, servers):
    """K=2: the two hosts admitted at the start share one drain, their moves in flight at the
    same time (each host under --max-per-host 1 here: two in flight only if both hosts move at
    once); each host done, every server off both, nothing moved twice."""
    c1, c2 = minicloud.computes[:2]
    mine = servers(2, host=c1, prefix="mt-tog1") + servers(2, host=c2, prefix="mt-tog2")
    ids = {s.id for s in mine}
    first_mig = last_migration_id(minicloud)
    minicloud.set_fakevirt(live_migration_seconds=3)        # (the fixture puts it back)
    proc = maintain(minicloud, c1, c2, "--max-hosts", "2", "--max-per-host", "1", "--hook", "true",
                    "--gate", "heartbeat", "-f", "json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    runs = {r["host"]: r["drain_run"] for r in data["results"]}
    assert {r["host"]: r["outcome"] for r in data["results"]} == {c1: "done", c2: "done"}
    assert runs[c1] and runs[c1] == runs[c2], data["results"]
    spans = {m["source_compute"]: [] for m in migrations(minicloud)}
    for m in migrations(minicloud):
        if m["instance_uuid"] in ids and int(m["id"]) > first_mig and m["status"] == "completed":
            spans[m["source_compute"]].append((m["created_at"], m["updated_at"]))
    assert len(spans[c1]) == 2 and len(spans[c2]) == 2, spans
    assert any(a0 < b1 and b0 < a1 for a0, a1 in spans[c1] for b0, b1 in spans[c2]), spans
    assert all(minicloud.host_of(sid) not in (c1, c2) for sid in ids)
    assert max(moved_count(minicloud, ids, first_mig).values()) == 1
    assert all(v[0] == "enabled" for v in minicloud.services().values())


def test_failing_hook_on_second_host_stops_campaign(minicloud, servers, tmp_path):
    c1, c2, c3 = minicloud.computes[:3]
    third = servers(1, host=c3, prefix="mt-third")[0]
    first_mig = last_migration_id(minicloud)
    proc = maintain(minicloud, c1, c2, c3, "--order", "given", "--hook", f'test "$NOVAMOVE_HOST" != {c2}',
                    "--gate", "heartbeat", "-f", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["host"], r["outcome"]) for r in data["results"]] == [(c1, "done"), (c2, "failed"), (c3, "not-started")]
    assert "stop-loss" in data["summary"]
    status, state, reason, _ = minicloud.services()[c2]
    assert status == "disabled" and "FAILED hook" in reason and data["run_id"] in reason
    assert minicloud.services()[c3][0] == "enabled" and minicloud.host_of(third.id) == c3
    assert not moved_count(minicloud, {third.id}, first_mig)
    # The failed host's reason is a novamove drain's: undrain gives it back.
    back = minicloud.cli("undrain", c2)
    assert back.returncode == 0, back.stdout + back.stderr
    assert minicloud.services()[c2][0] == "enabled"


def _wait_line(proc, needle, timeout=120):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"never saw {needle!r}:\n{''.join(lines)}")


def test_sigkill_during_drain_and_during_hook_then_rerun(minicloud, servers, tmp_path):
    c1, c2 = minicloud.computes[:2]
    vms = servers(2, host=c1, prefix="mt-k1") + servers(1, host=c2, prefix="mt-k2")
    ids = {v.id for v in vms}
    first_mig = last_migration_id(minicloud)
    minicloud.set_fakevirt(live_migration_seconds=4)
    marker = tmp_path / "hook.log"
    hook = f'echo "$NOVAMOVE_HOST start" >> {marker}; sleep 6; echo "$NOVAMOVE_HOST end" >> {marker}'
    args = [c1, c2, "--order", "given", "--hook", hook, "--gate", "heartbeat", "--max-parallel", "1"]
    # 1. killed during c1's drain (a move in flight)
    p = popen(minicloud, *args)
    _wait_line(p, "started (1 in flight)")
    p.send_signal(signal.SIGKILL)
    p.wait()
    # 2. rerun: continues the same campaign; killed during c1's hook
    p = popen(minicloud, *args)
    lines = _wait_line(p, "hook started")
    assert any("continuing campaign" in ln for ln in lines), "".join(lines)
    p.send_signal(signal.SIGKILL)
    p.wait()
    minicloud.set_fakevirt(live_migration_seconds=0.5)
    # 3. rerun at once: the killed run's hook is still running (its own process group): refused,
    # nothing changed; once it ended, a rerun without a flag is refused too (nobody saw it end)
    busy = maintain(minicloud, *args)
    assert busy.returncode == 4 and ("is still running" in busy.stderr           # (the hook sleeps 6 s:
                                     or "--rerun-hook" in busy.stderr), busy.stderr  # it may be over)
    wait_until(lambda: f"{c1} end" in marker.read_text(), timeout=60, what="the killed run's hook to end")
    refused = maintain(minicloud, *args)
    assert refused.returncode == 4 and "--rerun-hook" in refused.stderr, refused.stderr
    status = minicloud.cli("campaign", "status")
    assert status.returncode == 0 and "killed" in status.stdout, status.stdout
    # 4. rerun with --rerun-hook: finishes; nothing moved twice
    done = maintain(minicloud, *args, "--rerun-hook", "-f", "json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert [r["outcome"] for r in data["results"]] == ["done", "done"] and data["resumed"]
    assert max(moved_count(minicloud, ids, first_mig).values()) == 1
    where = {v.name: minicloud.host_of(v.id) for v in vms}
    assert all(h != c2 for h in where.values()), (where, data["results"])   # c2 emptied, nothing back
    assert minicloud.services()[c1][0] == "enabled" and minicloud.services()[c2][0] == "enabled"


def test_sigkill_during_a_shared_drain_then_rerun(minicloud, servers):
    """K=2: killed while both hosts' moves are in flight in their one drain; the rerun (the
    same command) continues the campaign, both hosts held by it go first, together again, and it
    finishes: both done, both enabled, every server off them, nothing moved twice."""
    c1, c2 = minicloud.computes[:2]
    vms = servers(2, host=c1, prefix="mt-sk1") + servers(2, host=c2, prefix="mt-sk2")
    ids = {v.id for v in vms}
    first_mig = last_migration_id(minicloud)
    minicloud.set_fakevirt(live_migration_seconds=4)
    args = [c1, c2, "--max-hosts", "2", "--max-per-host", "1", "--hook", "true", "--gate", "heartbeat"]
    p = popen(minicloud, *args)
    _wait_line(p, "started (2 in flight)")
    p.send_signal(signal.SIGKILL)
    p.wait()
    minicloud.set_fakevirt(live_migration_seconds=0.5)
    done = maintain(minicloud, *args, "-f", "json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["resumed"] and {r["host"]: r["outcome"] for r in data["results"]} == {c1: "done", c2: "done"}
    assert all(minicloud.host_of(sid) not in (c1, c2) for sid in ids)
    assert max(moved_count(minicloud, ids, first_mig).values()) == 1
    assert minicloud.services()[c1][0] == "enabled" and minicloud.services()[c2][0] == "enabled"


ASYNC_REBOOT_HOOK = """#!/bin/sh
# Like `systemd-run --on-active=6 systemctl reboot`: the restart comes after the hook returned.
( sleep {delay}; exec {novamove} minicloud restart-compute "$NOVAMOVE_HOST" ) >/dev/null 2>&1 </dev/null &
echo "$NOVAMOVE_HOST $(date +%s)" >> {record}
"""


def test_restart_gate_waits_for_a_reboot_that_comes_after_the_hook_returned(minicloud, servers, tmp_path):
    """The hook schedules the compute's restart and returns at once: the old nova-compute keeps
    reporting meanwhile. The campaign must wait for the new process (a boot after the hook
    began, from the fake hypervisor's uptime), or fail the host; it never returns the host on
    the old process's heartbeat. With a reboot that never comes, the host fails at the gate."""
    c1 = minicloud.computes[0]
    novamove = Path(sys.executable).parent / "novamove"
    record = tmp_path / "record"
    hook = tmp_path / "hook.sh"
    hook.write_text(ASYNC_REBOOT_HOOK.format(delay=6, novamove=novamove, record=record))
    hook.chmod(0o755)
    proc = maintain(minicloud, c1, "--hook", str(hook), "--gate-timeout", "240", "-f", "json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    [r] = data["results"]
    assert r["outcome"] == "done" and r["gate"].startswith("restarted: booted after"), r
    hook_ended = int(record.read_text().split()[1])
    # The host came back only after the restart the hook scheduled (6 s after it returned),
    # never on the heartbeat of the process that was still running when the hook ended.
    up = minicloud.conn().compute.get(f"/os-hypervisors?hypervisor_hostname_pattern={c1}",
                                      microversion="2.53").json()["hypervisors"][0]
    uptime = minicloud.conn().compute.get(f"/os-hypervisors/{up['id']}", microversion="2.88").json()
    assert " up " in uptime["hypervisor"]["uptime"]
    assert time.time() - hook_ended >= 6
    assert minicloud.services()[c1][:2] == ("enabled", "up")
    # A "reboot" that never comes: the gate fails the host, which stays out with the reason.
    # (60 s: past the 20 s gate, and the sleeping shell does not outlive the test run by a day)
    hook.write_text(ASYNC_REBOOT_HOOK.format(delay=60, novamove="true", record=record))
    failed = maintain(minicloud, c1, "--hook", str(hook), "--gate-timeout", "20", "-f", "json")
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    [r] = json.loads(failed.stdout)["results"]
    assert r["outcome"] == "failed" and "restart gate" in r["detail"], r
    status, state, reason, _ = minicloud.services()[c1]
    assert status == "disabled" and "FAILED gate" in reason
    back = minicloud.cli("undrain", c1)
    assert back.returncode == 0, back.stdout + back.stderr


OTHER_OPERATOR_HOOK = """#!/bin/sh
# Another operator, on another machine (another journal), tries the host while its hook runs.
for verb in drain undrain "maintain --gate heartbeat"; do
  NOVAMOVE_JOURNAL={other} {novamove} $verb "$NOVAMOVE_HOST" >{out}.${{verb%% *}} 2>&1
  echo "${{verb%% *}} $?" >> {out}
done 2>/dev/null
"""


def test_another_operators_drain_and_undrain_during_a_hook_are_refused(minicloud, servers, tmp_path):
    c1 = minicloud.computes[0]
    servers(1, host=c1, prefix="mt-op")
    novamove = Path(sys.executable).parent / "novamove"
    out = tmp_path / "tries"
    hook = tmp_path / "hook.sh"
    hook.write_text(OTHER_OPERATOR_HOOK.format(other=tmp_path / "other.sqlite", novamove=novamove, out=out))
    hook.chmod(0o755)
    proc = maintain(minicloud, c1, "--hook", str(hook), "--gate", "heartbeat", "-f", "json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_id = json.loads(proc.stdout)["run_id"]
    codes = dict(line.split() for line in out.read_text().splitlines())
    # drain and undrain: refused (4); maintain: the host is not serviced (8); each names the campaign
    assert codes == {"drain": "4", "undrain": "4", "maintain": "8"}, codes
    for verb in codes:
        text = Path(f"{out}.{verb}").read_text()
        assert f"maintenance campaign {run_id} holds it" in text, (verb, text)
    assert minicloud.services()[c1][:2] == ("enabled", "up")


def test_capacity_refusal_dry_run_and_run(minicloud, servers):
    hosts = minicloud.computes[:4]
    bigs = []
    for h in hosts:
        bigs += servers(1, host=h, flavor="m1.large", prefix="mt-big", wait=False)
    conn = minicloud.conn()
    bigs = [conn.compute.wait_for_server(s, wait=180, interval=1) for s in bigs]
    first_mig = last_migration_id(minicloud)
    dry = maintain(minicloud, hosts[0], "--dry-run")
    assert dry.returncode == 4, dry.stdout + dry.stderr
    assert "does not fit" in dry.stdout and "MB RAM" in dry.stdout
    run = maintain(minicloud, hosts[0], "--hook", "true")
    assert run.returncode == 4 and "N+K" in run.stderr and "nothing changed" in run.stderr, run.stderr
    assert "MB RAM" in run.stderr and "Traceback" not in run.stderr
    assert minicloud.services()[hosts[0]][0] == "enabled"
    assert last_migration_id(minicloud) == first_mig


def test_rolling_maintenance_playbook(minicloud, servers, tmp_path):
    """playbooks/rolling_maintenance.yml with the collection from this checkout: serial 1,
    host_drain delegated to localhost, the operator's task (restart the compute), the wait
    module, undrain."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    c1, c2 = minicloud.computes[:2]
    vms = servers(1, host=c1, prefix="mt-ans1") + servers(1, host=c2, prefix="mt-ans2")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"""all:
  children:
    computes:
      hosts:
        {c1}:
        {c2}:
      vars:
        ansible_connection: local
        ansible_python_interpreter: {sys.executable}
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {sys.executable}
""")
    tasks = tmp_path / "restart.yml"
    tasks.write_text(f"""---
- name: Restart this compute (the minicloud's stand-in for a reboot)
  ansible.builtin.command: {bin_dir / 'novamove'} minicloud restart-compute {{{{ inventory_hostname }}}}
  delegate_to: localhost
  changed_when: true
- name: Record how many servers the host holds now
  ansible.builtin.shell: >-
    {sys.executable} -c "import openstack; c = openstack.connect(cloud='minicloud');
    print(len(list(c.compute.servers(all_projects=True, compute_host='{{{{ inventory_hostname }}}}'))))"
    >> {tmp_path}/held-{{{{ inventory_hostname }}}}
  delegate_to: localhost
  changed_when: false
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(minicloud.env, OS_CLOUD="minicloud", ANSIBLE_COLLECTIONS_PATH=str(REPO), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    playbook = REPO / "ansible_collections/novamove/openstack/playbooks/rolling_maintenance.yml"
    proc = subprocess.run([str(bin_dir / "ansible-playbook"), str(playbook), "-i", str(inventory),
                           "-e", "cloud=minicloud", "-e", f"novamove_tasks={tasks}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for h in (c1, c2):
        assert (tmp_path / f"held-{h}").read_text().strip() == "0"     # empty while maintained
        assert minicloud.services()[h][0] == "enabled"
    assert all(minicloud.server(v.id).status == "ACTIVE" for v in vms)
