"""A second, one-compute minicloud: up twice, status, down leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from novamove.minicloud import procs

pytestmark = pytest.mark.acceptance


# `make test` runs the cheap checks of the minicloud itself; the slow ones (a second start-up,
# TLS switched off and on, the control plane restarted, a failed start) run with
# NOVAMOVE_MINICLOUD_ACCEPTANCE=all: `make acceptance-minicloud` (docs/testing.md).
def full(test):
    """The test exists only under NOVAMOVE_MINICLOUD_ACCEPTANCE=all: a skipped test fails CI
    (CI=true, tests/conftest.py), so it is not defined at all otherwise."""
    return test if os.environ.get("NOVAMOVE_MINICLOUD_ACCEPTANCE") == "all" else None

# Throw-away miniclouds go 50 and 60 ports above the session cloud's base port, so parallel
# sessions with their own NOVAMOVE_MINICLOUD_BASE_PORT never collide.
_BASE = int(os.environ.get("NOVAMOVE_MINICLOUD_BASE_PORT") or 17000)
SPARE = _BASE + 50
BUSY = _BASE + 60


def _novamove(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "novamove", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=600)


@full
def test_up_again_status_and_down_leave_nothing(tmp_path, minicloud):
    # `minicloud` (the session cloud) is requested so both never start at the same time.
    state = tmp_path / "mc"
    env = {"NOVAMOVE_MINICLOUD_DIR": str(state)}
    up = _novamove("minicloud", "up", "--computes", "1", "--base-port", str(SPARE), env=env)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert "minicloud up in" in up.stderr
        sessions = set(procs.running(state / "run", state).values())
        assert len(sessions) >= 10     # db, broker, 4 APIs, network, conductor, scheduler, compute

        again = _novamove("minicloud", "up", "--computes", "1", "--base-port", str(SPARE), env=env)
        assert again.returncode == 0
        assert "already running" in again.stderr

        status = _novamove("minicloud", "status", env=env)
        assert status.returncode == 0, status.stdout
        assert "service compute1" in status.stdout and " up " in status.stdout
        booted = _novamove("minicloud", "boot", "1", env=env)
        assert booted.returncode == 0, booted.stderr[-2000:]
    finally:
        down = _novamove("minicloud", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert procs.leftover(state, sessions) == []
    for port in range(SPARE, SPARE + 9):
        assert not procs.port_open(port), f"port {port} still listening"
    status = _novamove("minicloud", "status", env=env)
    assert status.returncode != 0

    # The same state directory comes back up (computes keep their node identity) and goes down.
    again = _novamove("minicloud", "up", env=env)
    try:
        assert again.returncode == 0, again.stderr[-3000:]
        assert "minicloud up in" in again.stderr
        # The server outlived the restart, still running (the fake hypervisor adopts its guests).
        from novamove.minicloud import Minicloud
        conn = Minicloud(state, log=lambda m: None).connection()
        [server] = list(conn.compute.servers(all_projects=True))
        assert (server.status, server.power_state) == ("ACTIVE", 1)
    finally:
        down = _novamove("minicloud", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert procs.running(state / "run", state) == {}


def test_up_refuses_busy_port_and_starts_nothing(tmp_path):
    import socket
    state = tmp_path / "busy"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", BUSY))
        s.listen()
        out = _novamove("minicloud", "up", "--computes", "1", "--base-port", str(BUSY),
                        env={"NOVAMOVE_MINICLOUD_DIR": str(state)})
    assert out.returncode != 0
    lines = [l for l in out.stderr.splitlines() if l.startswith("novamove: error")]
    assert lines and f"port {BUSY}" in lines[0]
    assert not (state / "run").exists() or not list((state / "run").glob("*.pid"))


@full
def test_failed_start_names_the_component_shows_its_log_and_cleans_up(tmp_path, minicloud):
    """A compute that cannot start (its fake driver gets a nonsense inventory) fails `up`:
    the error names it, its log tail is shown, and nothing the start began is left running."""
    state = tmp_path / "broken"
    env = {"NOVAMOVE_MINICLOUD_DIR": str(state), "NOVAMOVE_FAKE_VCPUS": "not-a-number"}
    out = _novamove("minicloud", "up", "--computes", "1", "--base-port", str(BUSY), env=env)
    assert out.returncode != 0
    assert "minicloud start failed in nova-compute-compute1" in out.stderr
    assert "--- last lines of nova-compute-compute1's log ---" in out.stderr
    assert "not-a-number" in out.stderr          # the log tail shows the cause
    errors = [line for line in out.stderr.splitlines() if line.startswith("novamove: error:")]
    assert len(errors) == 1
    assert procs.running(state / "run", state) == {}
    for port in range(BUSY, BUSY + 9):
        assert not procs.port_open(port), f"port {port} still listening"
