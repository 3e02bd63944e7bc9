"""Bad input, verb by verb (docs/testing.md, "Bad input"): each case is one line on stderr, its
documented exit code, and nothing changed in the cloud (the fake below records every call that
is not a read: there must be none). The table in docs/testing.md lists the same cases."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from novamove import errors
from novamove.model import (ConsumerAllocations, Flavor, Host, Migration, ResourceProvider, Resources, Server,
                            ServerState, Service)

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
LONG = "x" * 300
NOT_EXEC = "/tmp/novamove-bad-input-not-executable.sh"

READS = {"compute_hosts", "list_compute_services", "list_servers_on_host", "get_server", "find_servers",
         "list_server_groups", "hypervisors", "aggregate_hosts", "cloud_now", "supports", "close",
         "list_migrations", "list_migrations_changed_since", "list_server_migrations", "server_fault",
         "list_evacuations", "compute_service_heartbeat", "server_ids_tagged", "provider_traits",
         "host_resources", "host_usage", "provider_inventories", "provider_usages", "get_flavor", "hypervisor_uptime",
         "request_mark", "request_ids_since", "last_request_id",
         # doctor's scan
         "list_resource_providers", "provider_allocations", "list_all_servers", "list_all_migrations",
         "consumer_allocations"}

# (command line, exit code, what the one line says)
CASES = [
    # maintain
    ("maintain", 2, "name the hosts to maintain"),
    ("maintain compute1 compute1 --dry-run", 2, "compute1 is named twice"),
    ("maintain compute1 compute1.fake.local --dry-run", 2, "named twice ('compute1' and 'compute1.fake.local')"),
    ("maintain nosuch", 3, "no compute host named 'nosuch'"),
    ("maintain ''", 3, "no compute host named ''"),
    ("maintain compute1 --hook /nonexistent/hook.sh", 2, "--hook: /nonexistent/hook.sh does not exist"),
    (f"maintain compute1 --hook {NOT_EXEC}", 2, "is not an executable file"),
    ("maintain compute1 --hook 'if then'", 2, "--hook: sh rejects the command"),
    ("maintain compute1 --hook 'ssh {host} reboot'", 2, 'use "$NOVAMOVE_HOST"'),
    ("maintain compute1 --check /nonexistent", 2, "--check: /nonexistent does not exist"),
    ("maintain --resume abc --rerun-hook --hook-done", 2, "--rerun-hook or --hook-done"),
    ("maintain compute1 --resume abc", 2, "--resume RUN takes the hosts and options of RUN"),
    ("maintain --resume nosuchrun", 3, "no maintain run 'nosuchrun'"),
    ("maintain --resume 'a%'", 3, "no maintain run 'a%'"),
    ("maintain compute1 --max-hosts 0", 2, "--max-hosts"),
    ("maintain compute1 --gate reboot", 2, "--gate"),
    ("maintain --aggregate nosuch", 3, "no host aggregate named 'nosuch'"),
    (f"maintain compute1 --reason {LONG} --dry-run", 2, "--reason is 300 characters"),
    ("maintain compute1 --hook-timeout -5", 2, "--hook-timeout"),
    # evacuate
    ("evacuate", 2, "Missing argument 'HOST'"),
    ("evacuate nosuch --fenced", 3, "no compute host 'nosuch'"),
    ("evacuate compute1", 4, "compute1 is not fenced"),
    ("evacuate compute1 --fenced --fence-cmd true", 2, "either --fence-cmd or --fenced"),
    ("evacuate compute1 --fence-cmd /nonexistent/fence", 2, "--fence-cmd: /nonexistent/fence does not exist"),
    ("evacuate compute1 --fence-cmd 'ipmitool -H {host} off'", 2, "does not substitute {host}"),
    ("evacuate compute1 --fenced --max-down-percent 150", 2, "--max-down-percent"),
    ("evacuate compute1 --fenced --quiet-period 0", 2, "--quiet-period"),
    ("evacuate compute1 --fenced --to compute1", 2, "the failed host and a --to destination"),
    ("evacuate compute1 --fenced --to nosuch", 3, "no compute host 'nosuch'"),
    ("evacuate compute1 --fenced --power maybe", 2, "--power"),
    ("evacuate compute1 --fenced --max-parallel 0", 2, "--max-parallel"),
    (f"evacuate compute1 --fenced --reason {LONG}", 2, "--reason is 300 characters"),
    # unfence
    ("unfence", 2, "Missing argument 'HOST'"),
    ("unfence nosuch", 3, "no compute host 'nosuch'"),
    ("unfence compute1 --wait -1", 2, "--wait"),
    # drain / undrain
    ("drain", 2, "Missing argument 'HOST'"),
    ("drain nosuch", 3, "no compute host 'nosuch'"),
    ("drain compute1 compute1", 2, "unexpected extra argument"),
    ("drain compute1 --to compute1", 2, "both drained and a --to destination"),
    ("drain compute1 --to nosuch", 3, "no compute host 'nosuch'"),
    ("drain compute1 --max-parallel 0", 2, "--max-parallel"),
    (f"drain compute1 --reason {LONG} --dry-run", 2, "--reason is 300 characters"),
    ("undrain nosuch", 3, "no compute host 'nosuch'"),
    ("drain compute1 --mode live --on-stall cold", 2, "--on-stall cold contradicts a live-only move"),
    ("drain compute1 --on-stall later", 2, "'later' is not one of"),
    # rebalance
    ("rebalance --goal tidy", 2, "'tidy' is not one of"),
    ("rebalance --max-moves 0", 2, "--max-moves must be a whole number of at least 1"),
    ("rebalance --min-gain -1", 2, "--min-gain must be a number of percentage points >= 0"),
    ("rebalance --disable-emptied", 2, "--disable-emptied goes with --goal pack"),
    ("rebalance --aggregate rack1 compute1", 2, "--aggregate selects the hosts"),
    ("rebalance compute1", 2, "a rebalance needs at least two hosts in scope"),
    ("rebalance compute1 nosuch", 3, "no compute host 'nosuch'"),
    ("rebalance --zone mars", 3, "no compute host in availability zone 'mars'"),
    ("rebalance --aggregate nope", 3, "no host aggregate named 'nope'"),
    # migrate
    ("migrate", 2, "Missing argument 'SERVER'"),
    ("migrate vm1 --strategy isolate", 2, "--strategy isolate needs a target"),
    ("migrate vm1 --to compute2 --live --on-stall cold", 2, "--on-stall cold contradicts a live-only move"),
    ("migrate vm1 --to nosuch", 3, "nosuch"),
    ("migrate nosuch --to compute2", 3, "nosuch"),
    ("migrate vm1 --to compute2 --live --cold", 2, "--live"),
    ("migrate vm1 --to compute2 --timeout -1", 2, "--timeout"),
    # output options (OpenStackClient's spellings)
    ("hosts -f shell", 2, "-f shell prints one object"),
    ("hosts --sort-column nosuch", 2, "unknown column 'nosuch' (--sort-column)"),
    ("hosts --sort-ascending --sort-descending", 2, "--sort-ascending and --sort-descending exclude each other"),
    # campaign, recover
    ("campaign status 'a%'", 3, "no maintain run 'a%'"),
    ("campaign stop nosuchrun", 3, "no maintain run 'nosuchrun'"),
    ("recover --run nosuchrun", 3, "no run 'nosuchrun'"),
    # doctor
    ("doctor --fix nosuch-class", 2, "unknown drift class 'nosuch-class'"),
    ("doctor --fix migration-allocation-leaked nosuch-class", 2, "unknown drift class 'nosuch-class'"),
    ("doctor --fix migration-stuck", 2, "that class is repaired by an operator"),
    ("doctor --fix compute-held", 2, "that class is repaired by an operator"),
    ("doctor verify-resize-forgotten", 2, "CLASS names choose repairs: add --fix"),
    ("doctor --older-than -5", 2, "--older-than must be a number of seconds >= 0"),
    ("doctor --fix --older-than -0.5", 2, "--older-than must be a number of seconds >= 0"),
    ("doctor --older-than nan", 2, "--older-than must be a number of seconds >= 0"),
    ("doctor --older-than soon", 2, "'soon' is not a valid float"),
    ("doctor --older-than ''", 2, "is not a valid float"),
    ("doctor --fix --host nosuch", 3, "no compute host 'nosuch' (--host); nothing changed"),
    ("doctor --fix verify-resize-forgotten --host compute1 --host nosuch", 3, "no compute host 'nosuch'"),
    ("doctor --fix --server nosuch", 3, "no server 'nosuch' (--server)"),
    ("doctor -f yaml --fix --sort-column nosuch", 2, "nosuch"),
]


class TableCloud:
    """Three computes, two servers; every call that is not a read is recorded as a change."""
    cloud_name = identity = "table"
    microversion = "2.96"
    compute_max_microversion = (2, 96)

    class requests:  # noqa: N801  (the adapter's request counter, as read by the engine)
        count = 0

    def __init__(self):
        self.changes: list[str] = []
        flavor = Flavor("m1", 1, 512, 1)
        self.hosts = [Host(f"compute{i}", Service(f"s{i}", f"compute{i}", updated_at="2026-12-02T10:00:00"),
                           f"compute{i}.fake.local", Resources(16, 16384, 200), Resources()) for i in (1, 2, 3)]
        self.servers = {sid: Server(sid, f"vm{sid[1]}", "ACTIVE", f"compute{sid[1]}", flavor=flavor)
                        for sid in ("v1", "v2")}

    def supports(self, microversion):
        return True

    def compute_hosts(self, with_resources=True):
        return list(self.hosts)

    def list_compute_services(self):
        return [h.service for h in self.hosts]

    def list_servers_on_host(self, host):
        return [s for s in self.servers.values() if s.host == host]

    def get_server(self, sid):
        if sid not in self.servers:
            raise errors.NotFound(f"no server {sid!r}")
        return self.servers[sid]

    def find_servers(self, ref):
        return [s for s in self.servers.values() if ref in (s.id, s.name)]

    def list_server_groups(self):
        return []

    # doctor's scan: whole-cloud listings. One piece of drift that plain `doctor --fix` would
    # repair (a completed migration whose consumer still holds compute3), so that a bad input
    # refused too late would show up as a change.
    LEAKED = {"rp3": {"mig-1": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}}

    def hypervisors(self):
        return [{"id": f"rp{i}", "hypervisor_hostname": h.hypervisor_hostname, "host": h.name, "state": "up",
                 "status": "enabled"} for i, h in enumerate(self.hosts, 1)]

    def list_resource_providers(self):
        return [ResourceProvider(f"rp{i}", h.hypervisor_hostname, 1, f"rp{i}") for i, h in enumerate(self.hosts, 1)]

    def provider_allocations(self, provider_uuid):
        held = {sid: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1} for sid, s in self.servers.items()
                if f"rp{s.host[-1]}" == provider_uuid}
        return {**held, **self.LEAKED.get(provider_uuid, {})}

    def consumer_allocations(self, consumer):
        held = {rp: dict(c[consumer]) for rp, c in self.LEAKED.items() if consumer in c}
        return ConsumerAllocations(consumer, held, 2 if held else None, "p1", "u1")

    def list_all_servers(self):
        return [ServerState(id=s.id, name=s.name, status=s.status, host=s.host, node=f"{s.host}.fake.local",
                            vm_state="active", task_state=None, power_state=1, updated="2026-01-01T00:00:00Z")
                for s in self.servers.values()]

    def list_all_migrations(self):
        return [Migration(id="1", server_id="v1", source_host="compute3", dest_host="compute1", status="completed",
                          migration_type="live-migration", uuid="mig-1", created_at="2026-01-01T00:00:00.000000",
                          updated_at="2026-01-01T00:00:00.000000")]

    def aggregate_hosts(self, name):
        raise errors.NotFound(f"no host aggregate named {name!r}")

    def cloud_now(self):
        return None

    def close(self):
        pass

    def __getattr__(self, name):
        if name.startswith("_") or name in READS:
            raise AttributeError(name)

        def change(*args, **kwargs):
            self.changes.append(name)
        return change


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    from novamove import api
    fake = TableCloud()
    monkeypatch.setattr(api.cloud_adapter, "connect", lambda *a, **kw: fake)
    monkeypatch.setenv("NOVAMOVE_JOURNAL", str(tmp_path / "journal.sqlite"))
    for var in ("OS_CLOUD", "NOVAMOVE_FAULT"):
        monkeypatch.delenv(var, raising=False)
    Path(NOT_EXEC).write_text("#!/bin/sh\n")
    os.chmod(NOT_EXEC, 0o644)
    return fake


@pytest.mark.parametrize("line, code, says", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_one_line_its_exit_code_and_nothing_changed(cloud, line, code, says):
    from novamove.cli import run
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        run(shlex.split(line))
    text = err.getvalue().strip()
    assert exc.value.code == code, (exc.value.code, text)
    assert len(text.splitlines()) == 1 and text.startswith("novamove: error: "), text
    assert says in text, text
    assert cloud.changes == [], cloud.changes


def test_good_doctor_input_does_repair_the_table_clouds_drift(cloud):
    """The doctor cases above could fail: the same cloud, asked right, is changed."""
    from novamove.cli import run
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            pytest.raises(SystemExit):
        run(shlex.split("doctor --fix --host compute3"))
    assert cloud.changes == ["delete_consumer_allocations"]


def test_the_table_in_the_docs_lists_every_case():
    doc = DOC.read_text()
    rows = re.findall(r"^\| `novamove ([^`]*)` \| (\d+) \|", doc, re.M)
    documented = {(cmd, int(code)) for cmd, code in rows}
    want = {(line.replace(LONG, "<300 characters>").replace(NOT_EXEC, "<a file without x>"), code)
            for line, code, _ in CASES}
    assert want <= documented, sorted(want - documented)
    assert len(CASES) >= 40
