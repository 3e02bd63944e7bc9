"""report.BatchView: the progress bar of drain / undrain / apply on a terminal (rich, recorded
here with a forced terminal), plain lines everywhere else."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Optional

from rich.console import Console

from novamove import report


@dataclass(frozen=True)
class Snap:
    """What the engine sends (novamove.engine.batch.moves.BatchProgress), duck-typed."""
    verb: str = "drain"
    hosts: tuple = ("compute3",)
    total: int = 40
    moved: int = 12
    failed: int = 1
    in_flight: int = 3
    waiting: int = 25
    other: int = 0
    elapsed: float = 72.0
    eta: Optional[float] = 150.0
    in_flight_names: tuple = ("web-1", "web-2", "db-1")


def terminal(width: int = 160) -> Console:
    return Console(file=io.StringIO(), record=True, force_terminal=True, width=width, highlight=False)


def test_the_bar_shows_counts_time_eta_and_the_servers_in_flight():
    console = terminal()
    with report.BatchView(console=console) as view:
        assert view.live
        view.line("compute3 disabled ([novamove:ab12] drain: kernel)")
        view.update(Snap(moved=1, in_flight=2, waiting=36, failed=0, elapsed=5.0, eta=None))
        view.line("web-1: live migration compute3 -> compute1 started")
        view.update(Snap())
    # record=True keeps every redraw of the live area; the last two lines are what stays on screen
    text = console.export_text()
    bar_line, names_line = ("drain compute3" + text.rsplit("drain compute3", 1)[1]).splitlines()
    assert bar_line.startswith("drain compute3  ")
    assert bar_line.endswith(" 12/40 moved · 3 in flight · 1 failed · 25 waiting · 1m12s · ETA 2m30s")
    bar = re.search(r"[█░]+", bar_line).group()
    assert len(bar) == report.BatchView.BAR_WIDTH and bar.startswith("█") and bar.endswith("░")
    assert bar.count("█") == round(report.BatchView.BAR_WIDTH * 12 / 40) + 1     # moved + the failure
    assert names_line == "in flight: web-1, web-2, db-1"
    # the first redraw: no failure, no ETA yet
    assert "1/40 moved · 2 in flight · 36 waiting · 5s\n" in text
    # event lines scroll above the bar, stamped, brackets shown as they are (not markup)
    events = re.findall(r"\d\d:\d\d:\d\d (.*)", text)
    assert events == ["compute3 disabled ([novamove:ab12] drain: kernel)",
                      "web-1: live migration compute3 -> compute1 started"]


def test_the_list_of_servers_in_flight_is_capped():
    view = report.BatchView(console=terminal())
    names = tuple(f"vm-{i}" for i in range(10))
    view.update(Snap(in_flight=10, in_flight_names=names))
    console = terminal()
    console.print(view.render())
    last = console.export_text().splitlines()[-1]
    assert last == "in flight: vm-0, vm-1, vm-2, vm-3, vm-4, vm-5 and 4 more"


def test_the_bar_grows_with_a_replan_and_counts_other_outcomes():
    view = report.BatchView(console=terminal())
    console = terminal()
    console.print(view.render())
    assert console.export_text() == ""                               # nothing before the first snapshot
    view.update(Snap(total=50, moved=50, failed=0, in_flight=0, waiting=0, other=0, eta=0.0,
                     in_flight_names=()))
    console.print(view.render())
    text = console.export_text()
    assert "█" * report.BatchView.BAR_WIDTH in text and "50/50 moved · 0 in flight" in text
    assert "in flight:" not in text
    line = view.status_line(Snap(other=2, failed=0, waiting=0, elapsed=3725, eta=None))
    assert line == "12/40 moved · 3 in flight · 2 other · 1h02m"


def test_piped_output_is_one_plain_line_per_event(capsys):
    with report.BatchView(force_terminal=False) as view:
        assert not view.live
        view.line("compute3 disabled ([novamove:ab12] drain)")
        view.update(Snap())
        view.line("web-1: moved to compute1 in 20 s")
        view.update(Snap(moved=13))
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 2 and all(re.fullmatch(r"\d\d:\d\d:\d\d .+", line) for line in lines)
    assert [line[9:] for line in lines] == ["compute3 disabled ([novamove:ab12] drain)",
                                            "web-1: moved to compute1 in 20 s"]
    assert "█" not in out.err and "\x1b" not in out.err


def test_quiet_prints_nothing(capsys):
    console = terminal()
    with report.BatchView(enabled=False, console=console) as view:
        view.line("x")
        view.update(Snap())
    assert console.export_text() == "" and capsys.readouterr().err == ""


def test_durations():
    assert [report.duration(s) for s in (0, 9.6, 72, 3599, 3725, None)] == ["0s", "10s", "1m12s", "59m59s",
                                                                            "1h02m", "?"]


def test_a_narrow_terminal_gets_a_shorter_bar_not_a_cut_off_eta():
    console = terminal(width=100)
    view = report.BatchView(console=console)
    view.update(Snap())
    console.print(view.render())
    first = console.export_text().splitlines()[0]
    assert first.endswith("ETA 2m30s") and len(first) <= 100
    assert 8 <= len(re.search(r"[█░]+", first).group()) < report.BatchView.BAR_WIDTH
