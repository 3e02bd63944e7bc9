"""--metrics-push: the run's metrics reach a real Pushgateway (Debian's, on loopback)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from novamove.cli import main
from test_planner_cli import nova  # noqa: F401 -- fixture

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


@pytest.fixture
def pushgateway(tmp_path):
    """A Pushgateway of this test alone, on a free loopback port; stopped after it."""
    if PUSHGATEWAY is None:
        pytest.skip("prometheus-pushgateway not installed (scripts/system-deps.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "pushgateway.log", "wb")
    proc = subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the pushgateway did not start: " + (tmp_path / "pushgateway.log").read_text())
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_drain_pushes_its_metrics_to_the_pushgateway(nova, tmp_path, pushgateway):  # noqa: F811
    result = CliRunner().invoke(
        main, ["--journal", str(tmp_path / "j.sqlite"), "drain", "c1", "--poll-interval", "0.2", "-q",
               "--allow-unmovable", "--metrics-push", pushgateway], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = urllib.request.urlopen(pushgateway + "/metrics", timeout=5).read().decode()
    got = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("job") == "novamove":
                got[(s.name, s.labels.get("kind"), s.labels.get("result"))] = s.value
    assert got[("novamove_moves_total", "drain.move", "done")] == 10
    assert got[("novamove_hosts_out_of_service", None, None)] == 1
    assert got[("novamove_move_duration_seconds_count", None, "done")] == 10


def test_a_gone_pushgateway_does_not_fail_the_run(nova, tmp_path, caplog):  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]           # nobody listens there once closed
    result = CliRunner().invoke(
        main, ["--journal", str(tmp_path / "j.sqlite"), "drain", "c1", "--poll-interval", "0.2", "-q",
               "--allow-unmovable", "--metrics-push", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 0, result.output
    assert caplog.text.count("push failed") == 1          # warned once, then no more pushes
