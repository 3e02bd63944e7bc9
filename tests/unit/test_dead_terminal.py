"""SIGHUP from a closed terminal: writes to it fail (EIO); the run goes on and ends as its
journal says, instead of dying on a progress line (novamove.report)."""

from __future__ import annotations

import errno
import sys

import pytest

from novamove import report


class DeadTerminal:
    def write(self, text):
        raise OSError(errno.EIO, "Input/output error")

    def flush(self):
        raise OSError(errno.EIO, "Input/output error")

    def isatty(self):
        return True


@pytest.mark.parametrize("view", [report.BatchView, report.CampaignView])
def test_progress_to_a_terminal_that_went_away_is_dropped_not_fatal(monkeypatch, view):
    v = view(enabled=True, force_terminal=False)
    with v:
        v.line("compute1: disabled")
        # The window closes (SIGHUP): from now on every write to the terminal fails.
        monkeypatch.setattr(sys, "stderr", DeadTerminal())
        monkeypatch.setattr(sys, "stdout", DeadTerminal())
        v.line("compute1: drained")           # raises nothing
        v.line("compute1: moved")
    assert not v.enabled
    # What is printed afterwards (the final report, an error line) goes nowhere, without error.
    print("the report", file=sys.stdout)
    print("novamove: error: ...", file=sys.stderr)
