"""--metrics-textfile: node_exporter's textfile format, accepted by promtool, equal to the journal."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from novamove.cli import main
from novamove.engine.campaign import run_campaign
from novamove.engine.journal import Journal
from novamove.observe import metrics as metrics_mod
from novamove.observe.metrics import MOVE_KINDS, RunMetrics
from test_campaign import fast, fleet_with_servers, opts  # noqa: F401 -- fast: autouse fixture
from test_planner_cli import nova  # noqa: F401 -- fixture

PROMTOOL = shutil.which("promtool")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def journal_move_counts(journal: Journal, run_ids) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for run_id in run_ids:
        verb = journal.get_run(run_id)["verb"]
        for e in journal.events(run_id):
            if e.kind in MOVE_KINDS and e.state in ("done", "failed"):
                key = (verb, e.kind, e.state)
                counts[key] = counts.get(key, 0) + 1
    return counts


def promtool_check(path) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool not installed (scripts/system-deps.sh installs Debian's prometheus)")
    with open(path, "rb") as f:
        done = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_campaign_textfile_passes_promtool_and_counts_equal_the_journal(tmp_path):
    textfile = tmp_path / "novamove.prom"
    metrics = RunMetrics(textfile=str(textfile))
    runs: set[str] = set()
    journal = Journal(tmp_path / "j.sqlite",
                      observers=[metrics, lambda r: runs.add(r["run"]["id"] if r["record"] == "run" else r["event"].run_id)])
    f = fleet_with_servers()
    rep = run_campaign(f, journal, ["c1", "c2", "c3"], options=opts(hook=None, gate=None, max_hosts=2))
    assert rep.ok, rep.summary
    promtool_check(textfile)
    got = samples(textfile.read_text())
    expected = journal_move_counts(journal, runs)
    assert expected and sum(expected.values()) == 6            # every server of c1..c3 moved once
    for (verb, kind, result), n in expected.items():
        assert got[("novamove_moves_total", (("kind", kind), ("result", result), ("verb", verb)))] == n
    assert sum(v for (name, _), v in got.items() if name == "novamove_moves_total") == sum(expected.values())
    assert got[("novamove_move_duration_seconds_count", (("result", "done"), ("verb", "drain")))] == 6
    assert got[("novamove_moves_in_flight", ())] == 0
    assert got[("novamove_hosts_out_of_service", ())] == 0
    assert got[("novamove_campaign_hosts", (("result", "done"),))] == 3
    assert got[("novamove_campaign_hosts", (("result", "failed"),))] == 0
    assert got[("novamove_stalls_total", ())] == 0


def test_textfile_is_written_while_the_run_goes(tmp_path, monkeypatch):
    """Hosts out of service and moves in flight show mid-run, not only at the end."""
    textfile = tmp_path / "m.prom"
    metrics = RunMetrics(textfile=str(textfile), clock=lambda: 0.0)
    monkeypatch.setattr(metrics_mod, "WRITE_EVERY", 0.0)
    journal = Journal(tmp_path / "j.sqlite", observers=[metrics])
    journal.start_run("r1", "drain")
    with journal.change("r1", "drain.disable", "c1"):
        pass
    journal.intent("r1", "drain.move", "s1")
    got = samples(textfile.read_text())
    assert got[("novamove_hosts_out_of_service", ())] == 1 and got[("novamove_moves_in_flight", ())] == 1
    promtool_check(textfile)


def test_doctor_findings_by_class(tmp_path):
    metrics = RunMetrics(textfile=str(tmp_path / "m.prom"))
    metrics.doctor_findings(["verify_resize", "verify_resize", "leaked_allocation"])
    metrics.flush()
    got = samples((tmp_path / "m.prom").read_text())
    assert got[("novamove_doctor_findings", (("class", "verify_resize"),))] == 2
    promtool_check(tmp_path / "m.prom")


def test_cli_metrics_textfile(nova, tmp_path):  # noqa: F811
    textfile = tmp_path / "m.prom"
    result = CliRunner().invoke(
        main, ["--journal", str(tmp_path / "j.sqlite"), "drain", "c1", "--poll-interval", "0.2", "-q",
               "--allow-unmovable", "--metrics-textfile", str(textfile)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = samples(textfile.read_text())
    assert got[("novamove_moves_total", (("kind", "drain.move"), ("result", "done"), ("verb", "drain")))] == 10
    assert got[("novamove_hosts_out_of_service", ())] == 1          # a drain leaves its host disabled
    promtool_check(textfile)


def test_grafana_dashboard_uses_only_series_novamove_writes():
    import json
    import re
    from pathlib import Path
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "contrib" / "grafana" /
                            "novamove-dashboard.json").read_text())
    written = set()
    for line in RunMetrics().text().splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            written |= {name + s for s in ("_bucket", "_count", "_sum")} if kind == "histogram" else {name}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bnovamove_[a-z_]+", e)}
    assert used and used <= written, used - written


def test_moves_total_never_goes_down_when_a_failure_is_reopened(tmp_path):
    """A Prometheus counter only grows: a move journaled failed, then reopened and done, counts
    once as failed and once as done (it is not taken back from `failed`).
    Break it: count from each move's last state, as before, and `failed` drops to 0."""
    textfile = tmp_path / "m.prom"
    metrics = RunMetrics(textfile=str(textfile), clock=lambda: 0.0)
    journal = Journal(tmp_path / "j.sqlite", observers=[metrics])
    journal.start_run("r1", "drain")
    kind = sorted(MOVE_KINDS)[0]
    eid = journal.intent("r1", kind, "s1")
    journal.failed(eid, error="provisional")
    before = samples(metrics.text())
    journal.done(eid)           # the read-back found it landed after all
    after = samples(metrics.text())
    for (name, labels), v in before.items():
        if name == "novamove_moves_total":
            assert after[(name, labels)] >= v, (labels, v, after[(name, labels)])
    assert after[("novamove_moves_total", (("kind", kind), ("result", "done"), ("verb", "drain")))] == 1
    assert after[("novamove_moves_total", (("kind", kind), ("result", "failed"), ("verb", "drain")))] == 1
