"""`novamove drain` on a terminal and through a pipe, on the minicloud (a real Nova on loopback).

On a terminal (a pseudo-terminal here, so stdout and stderr are ttys) the drain draws
report.BatchView's live bar under the event lines: "drain HOST  ████░░ moved/total · in flight
· ... · ETA", and the servers moving now. Through a pipe the same drain prints one plain
timestamped line per event and no terminal control sequence at all.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from novamove.engine.batch.drain import is_our_drain_reason

pytestmark = pytest.mark.acceptance

SOURCE, DEST = "compute3", "compute2"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
STAMP = r"\d\d:\d\d:\d\d"


def _env(minicloud, journal) -> dict:
    env = {**os.environ, **minicloud.env, "OS_CLOUD": "minicloud", "NOVAMOVE_JOURNAL": str(journal),
           "TERM": "xterm-256color"}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"):
        env.pop(name, None)
    return env


def run_on_a_terminal(argv: list[str], env: dict, timeout: float = 300,
                      columns: int = 160) -> tuple[int, str]:
    """Run argv with stdin, stdout and stderr on a new pseudo-terminal of `columns` columns;
    returns (exit code, everything it wrote to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv} still running after {timeout}s: "
                                     + b"".join(chunks).decode(errors="replace")[-2000:])
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:          # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def _undrain(minicloud, journal, *extra):
    out = minicloud.cli("undrain", SOURCE, "-q", *extra, env={"NOVAMOVE_JOURNAL": str(journal)})
    assert out.returncode == 0, out.stdout + out.stderr


def test_drain_draws_a_live_bar_on_a_terminal_and_plain_lines_in_a_pipe(minicloud, servers, tmp_path):
    vms = servers(2, host=SOURCE, prefix="tty")
    names = sorted(s.name for s in vms)
    journal = tmp_path / "journal.sqlite"
    argv = [sys.executable, "-m", "novamove", "drain", SOURCE, "--to", DEST, "--reason", "tty test"]
    # 1. On a terminal: the live bar. The moves last long enough that it is drawn while both
    # are in flight.
    minicloud.set_fakevirt(live_migration_seconds=1.5)
    try:
        code, raw = run_on_a_terminal(argv, _env(minicloud, journal))
        landed = {minicloud.host_of(s.id) for s in vms}
    finally:
        minicloud.set_fakevirt(live_migration_seconds=0.5)
        _undrain(minicloud, journal, "--move-back")
    assert code == 0 and landed == {DEST}, (landed, raw)
    # Frames and event lines apart: rich returns the cursor (CR) before each redraw.
    text = ANSI.sub("", raw).replace("\r\n", "\n").replace("\r", "\n")
    # Rich redraws the live area in place: cursor up / erase line between frames.
    assert "\x1b[1A" in raw and "\x1b[2K" in raw, raw[-2000:]
    bars = re.findall(rf"drain {SOURCE}  ([█░]+) (\d+)/(\d+) moved · (\d+) in flight", text)
    assert bars, text
    assert all(len(bar) == 24 for bar, *_ in bars)
    counts = [(int(m), int(t), int(f)) for _, m, t, f in bars]
    assert (0, 2, 2) in counts, counts               # both started, none landed yet
    assert counts[-1] == (2, 2, 0), counts           # the last frame: all moved
    assert bars[-1][0] == "█" * 24
    assert f"in flight: {', '.join(names)}" in text, text
    final = [line for line in text.splitlines() if re.search(rf"drain {SOURCE}  [█░]", line)][-1]
    assert re.search(r"2/2 moved · 0 in flight · \d+s · ETA 0s$", final.rstrip()), final
    # The event lines scroll above the bar, stamped; the report and summary follow.
    for name in names:
        assert re.search(rf"^{STAMP} {name}: moved \(live migration completed\) in \d+ s$", text,
                         re.M), text
    assert f"drain {SOURCE}: 2 moved" in text

    # 2. Through a pipe: one plain line per event, no control sequence, no bar.
    try:
        piped = subprocess.run(argv, env=_env(minicloud, journal), capture_output=True, text=True,
                               timeout=300)
    finally:
        svc = [s for s in minicloud.conn().compute.services()
               if s.binary == "nova-compute" and s.host == SOURCE][0]
        ours = svc.status == "disabled" and is_our_drain_reason(svc.disabled_reason)
        _undrain(minicloud, journal)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert ours, "the piped drain did not disable its host with its own reason"
    assert "\x1b" not in piped.stderr + piped.stdout
    assert "█" not in piped.stderr and "░" not in piped.stderr
    events = piped.stderr.splitlines()
    assert events and all(re.fullmatch(rf"{STAMP} \S.*", line) for line in events), events
    for name in names:
        assert sum(bool(re.fullmatch(rf"{STAMP} {name}: moved \(live migration completed\) in \d+ s", line))
                   for line in events) == 1, events
    assert f"drain {SOURCE}: 2 moved" in piped.stdout
    assert {minicloud.host_of(s.id) for s in vms} == {DEST}
