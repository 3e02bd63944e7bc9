"""The event stream and the metrics of a real drain (the minicloud): the stream validates
against its schema and matches the journal event for event; promtool accepts the textfile
and its counters equal the journal's."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from cloudtest import check_stream
from novamove.engine.journal import Journal
from novamove.observe import stream
from novamove.observe.metrics import MOVE_KINDS

pytestmark = pytest.mark.acceptance


def test_drain_event_stream_and_metrics_match_the_journal(minicloud, servers, tmp_path):
    source = minicloud.computes[0]
    made = servers(2, host=source, prefix="obs")
    journal_file, textfile = tmp_path / "j.sqlite", tmp_path / "novamove.prom"
    t0 = time.monotonic()
    proc = minicloud.cli("--journal", str(journal_file), "drain", source, "-f", "json", "--events", "-",
                         "--metrics-textfile", str(textfile))
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        lines = [json.loads(x) for x in proc.stdout.splitlines()]      # stdout: the stream alone
        report = json.loads(proc.stderr[proc.stderr.index("{"):])       # -f json went to stderr
        assert report["ok"] and report["run_id"] in {x["run_id"] for x in lines}
        journal = Journal(journal_file)
        assert check_stream(journal, lines) >= 4                        # disable, plan, 2 moves
        moves = [e for e in journal.events(report["run_id"]) if e.kind in MOVE_KINDS]
        assert sorted(e.target for e in moves) == sorted(s.id for s in made)
        assert all(e.state == "done" and e.ended_at for e in moves)

        promtool = shutil.which("promtool")
        if promtool:
            with open(textfile, "rb") as f:
                check = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, timeout=60)
            assert check.returncode == 0, check.stdout + check.stderr
        text = textfile.read_text()
        assert 'novamove_moves_total{kind="drain.move",result="done",verb="drain"} 2.0' in text
        assert "novamove_hosts_out_of_service 1.0" in text
        print(f"drain of 2 servers with --events and --metrics-textfile: {time.monotonic() - t0:.1f} s")
    finally:
        back = minicloud.cli("--journal", str(journal_file), "undrain", source, "--events",
                             str(tmp_path / "undrain.jsonl"))
        assert back.returncode == 0, back.stdout + back.stderr
    check_stream(Journal(journal_file), stream.read(str(tmp_path / "undrain.jsonl")))
