"""The CLI's connection options, output and diagnostics against the minicloud."""

from __future__ import annotations

import csv
import io
import json
import re

import yaml


def one_line(proc) -> bool:
    return proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_global_options_after_the_verb_and_os_variables_on_a_named_cloud(minicloud):
    # --os-cloud after the verb, no OS_CLOUD at all.
    proc = minicloud.cli("hosts", "-f", "value", "-c", "host", "--os-cloud", minicloud.cloud, cloud=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == sorted(minicloud.computes)
    # OS_INTERFACE counts on top of the named cloud (clouds.yaml says public): the minicloud has
    # no admin compute endpoint, so honouring it is a one-line error naming the catalog.
    # (openstacksdk reports it as a configuration error; the adapter maps that to exit 5.)
    proc = minicloud.cli("hosts", env={"OS_INTERFACE": "admin"})
    assert proc.returncode in (5, 6) and one_line(proc), proc.stderr
    assert "admin endpoint" in proc.stderr
    # ... and an option beats the variable.
    proc = minicloud.cli("hosts", "--os-interface", "internal", env={"OS_INTERFACE": "admin"})
    assert proc.returncode == 0, proc.stderr
    # OS_REGION_NAME too: an unknown region is a one-line configuration error.
    proc = minicloud.cli("--os-cloud", minicloud.cloud, "hosts", env={"OS_REGION_NAME": "Nowhere"})
    assert proc.returncode == 5 and one_line(proc) and "Nowhere" in proc.stderr


def test_unknown_cloud_is_one_line_exit_5(minicloud):
    proc = minicloud.cli("migrations", "--os-cloud", "no-such-cloud")
    assert proc.returncode == 5 and one_line(proc) and "no-such-cloud" in proc.stderr


def test_compute_api_version_is_a_ceiling(minicloud, servers, tmp_path):
    vm = servers(1, host=minicloud.computes[0])[0]
    target = minicloud.computes[1]
    # Below 2.30 the API cannot target a host for a live migration: the native strategy refuses.
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--live", "--strategy", "native", "--dry-run",
                         "--os-compute-api-version", "2.29")
    assert proc.returncode == 4 and one_line(proc) and "2.30" in proc.stderr
    # compute_api_version in clouds.yaml is a ceiling too; the option lifts it.
    config = yaml.safe_load(open(minicloud.env["OS_CLIENT_CONFIG_FILE"]))
    config["clouds"][minicloud.cloud]["compute_api_version"] = "2.29"
    pinned = tmp_path / "clouds.yaml"
    pinned.write_text(yaml.safe_dump(config))
    pinned.chmod(0o600)
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--live", "--strategy", "native", "--dry-run",
                         env={"OS_CLIENT_CONFIG_FILE": str(pinned)})
    assert proc.returncode == 4 and "2.30" in proc.stderr
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--live", "--strategy", "native", "--dry-run", "-q",
                         "--os-compute-api-version", "2.30", env={"OS_CLIENT_CONFIG_FILE": str(pinned)})
    assert proc.returncode == 0, proc.stderr
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--live", "--strategy", "native", "--dry-run",
                         "-f", "value", "-c", "microversion", env={"OS_COMPUTE_API_VERSION": "latest"})
    assert proc.returncode == 0, proc.stderr
    # The old variable: still honoured, with a one-line deprecation warning; "latest" works.
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--dry-run", "-q",
                         env={"NOVAMOVE_MAX_MICROVERSION": "latest"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("NOVAMOVE_MAX_MICROVERSION is deprecated") == 1
    proc = minicloud.cli("migrate", vm.id, "--to", target, "--dry-run", "-q",
                         env={"NOVAMOVE_MAX_MICROVERSION": "2.x"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert minicloud.host_of(vm.id) == minicloud.computes[0]     # nothing moved


def test_migrate_outputs_exit_codes_and_if_needed(minicloud, servers):
    vm = servers(1, host=minicloud.computes[0])[0]
    target = minicloud.computes[1]
    proc = minicloud.cli("migrate", vm.id, "--to", target, "-q", "-f", "json", "--noindent")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert proc.stdout.count("\n") == 1
    assert doc["source_compute"] == minicloud.computes[0] and doc["dest_compute"] == target
    assert doc["after"]["compute_host"] == target == minicloud.host_of(vm.id)
    # Already there: exit 9, one line; --if-needed: 0.
    proc = minicloud.cli("migrate", vm.id, "--to", target, "-q")
    assert proc.returncode == 9 and one_line(proc) and "already on" in proc.stderr
    proc = minicloud.cli("migrate", vm.id, "--to", target, "-q", "--if-needed", "-f", "value", "-c", "changed")
    assert proc.returncode == 0 and proc.stdout.strip() == "False"
    # The move is in Nova's records, with openstacksdk's key names.
    proc = minicloud.cli("migrations", vm.id, "-f", "csv", "-c", "server_id", "-c", "migration_type",
                         "-c", "source_compute", "-c", "dest_compute")
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["server_id", "migration_type", "source_compute", "dest_compute"]
    assert rows[1] == [vm.id, "live-migration", minicloud.computes[0], target]
    proc = minicloud.cli("history", "-f", "yaml", "-c", "server_id", "-c", "dest_compute", "-c", "status")
    assert {"server_id": vm.id, "dest_compute": target, "status": "ok"} in yaml.safe_load(proc.stdout)


def test_debug_logs_http_without_secrets(minicloud):
    password = re.search(r"password:\s*(\S+)", open(minicloud.env["OS_CLIENT_CONFIG_FILE"]).read()).group(1)
    proc = minicloud.cli("--debug", "hosts", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert "REQ: curl" in proc.stderr and "RESP" in proc.stderr
    assert "novamove/" in proc.stderr                           # app_name in the User-Agent
    assert password.strip("'\"") not in proc.stderr
    for header in re.findall(r"X-(?:Auth|Subject)-Token: (\S+)", proc.stderr):
        assert header.startswith("{SHA256}"), header
    assert json.loads(proc.stdout)                              # stdout stays clean JSON


def test_verbose_and_log_file(minicloud, tmp_path):
    log = tmp_path / "novamove.log"
    proc = minicloud.cli("hosts", "-v", "--log-file", str(log), "-f", "value", "-c", "host")
    assert proc.returncode == 0, proc.stderr
    assert log.exists() and (log.stat().st_mode & 0o777) == 0o600
    assert "REQ: curl" not in log.read_text() + proc.stderr     # HTTP only with --debug
