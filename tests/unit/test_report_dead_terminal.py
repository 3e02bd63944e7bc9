"""A verb's final report to a terminal that went away (SIGHUP: a closed window, its pipe gone)
is dropped, not a failure: the exit code still says how the run ended (novamove/report.py)."""

from __future__ import annotations

import io
import sys

from novamove import report


class _DeadPipe(io.TextIOWrapper):
    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8")

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_final_report_to_a_dead_terminal_is_dropped(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _DeadPipe())
    monkeypatch.setattr(sys, "stderr", _DeadPipe())
    report.emit_report(lambda: print('{"ok": false}'))          # no exception
    print("after")                                             # later writes go nowhere, quietly
    assert not isinstance(sys.stdout, _DeadPipe)


def test_final_report_to_a_live_terminal_is_printed(capsys):
    report.emit_report(lambda: print("the report"))
    assert capsys.readouterr().out == "the report\n"
