"""`novamove report RUN --html`: a self-contained page, rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from novamove.cli import main
from novamove.engine.campaign import run_campaign
from novamove.engine.journal import Journal
from test_campaign import fast, fleet_with_servers, hooks_seen, opts  # noqa: F401 -- fixtures

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Where a reviewer opens the picture (build/ is ignored by git).
SHOTS = REPO / "build" / "report"


def chromium(*args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/system-deps.sh installs Debian's chromium)")
    # as root Chromium refuses to start without --no-sandbox; no GPU in CI
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=120)


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG, without an imaging library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def campaign_journal(tmp_path, hooks) -> tuple[Journal, str]:
    seen, popen = hooks
    f = fleet_with_servers()
    popen.cloud = f
    journal = Journal(tmp_path / "j.sqlite")
    rep = run_campaign(f, journal, ["c1", "c2", "c3"], options=opts(max_hosts=2))
    assert rep.ok, rep.summary
    return journal, rep.run_id


def test_campaign_report_renders_in_chromium_with_a_lane_per_host_and_every_server(tmp_path, hooks_seen):
    journal, run_id = campaign_journal(tmp_path, hooks_seen)
    page = tmp_path / "run.html"
    result = CliRunner().invoke(main, ["--journal", str(journal.path), "report", run_id[:8], "--html", str(page),
                                       "--svg", str(tmp_path / "run.svg")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "<svg" in text and not re.search(r"(src|href)=\"https?:", text)      # self-contained
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "campaign.png"
    shot.unlink(missing_ok=True)
    done = chromium(f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    width, height, raw = png_pixels(shot)
    assert (width, height) == (1280, 900)
    # non-blank: a white page decompresses to almost nothing but 0xff (and the filter bytes)
    assert sum(1 for b in raw if b not in (0, 0xFF)) > len(raw) // 100
    dom = chromium("--dump-dom", page.as_uri()).stdout
    hosts = re.findall(r'data-lane="host">([^<·]+)', dom)
    assert sorted(h.strip() for h in hosts) == ["c1", "c2", "c3"]                 # one lane per host
    for server in ("vm-a0", "vm-a1", "vm-a2", "vm-b0", "vm-b1", "vm-d0"):
        assert f'data-lane="move">{server}<' in dom                                # every server named
    assert (tmp_path / "run.svg").read_text().startswith("<svg")


def test_report_of_an_interrupted_run_draws_what_is_unfinished(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    journal.start_run("r1", "drain", source="c1")
    with journal.change("r1", "drain.disable", "c1"):
        pass
    journal.done(journal.intent("r1", "drain.move", "s1", name="vm-1", source="c1", dest="c2"), result="moved")
    journal.intent("r1", "drain.move", "s2", name="vm-2", source="c1", dest="c3")     # in flight
    journal.update_run("r1", status="interrupted")
    page = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["--journal", str(journal.path), "report", "r1", "--html", str(page)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "vm-1" in text and "vm-2" in text and "unfinished" in text and "(not finished)" in text
    assert 'data-lane="host">c1' in text and 'stroke-dasharray="3,2"' in text


def test_report_needs_an_output_and_a_known_run(tmp_path):
    Journal(tmp_path / "j.sqlite")
    result = CliRunner().invoke(main, ["--journal", str(tmp_path / "j.sqlite"), "report", "nope", "--html",
                                       str(tmp_path / "x.html")])
    assert result.exit_code != 0 and not (tmp_path / "x.html").exists()
    result = CliRunner().invoke(main, ["--journal", str(tmp_path / "j.sqlite"), "report", "nope"])
    assert result.exit_code != 0
