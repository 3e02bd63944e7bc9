"""The command line's side of observe_options (novamove.cli): build the observers once per
command, and close them when the command ends."""

from __future__ import annotations

import sys
from typing import Any

import click


def attach(ctx: click.Context, settings: dict, option: str, value: str) -> None:
    observers = settings.setdefault("_observers", [])
    if option == "events":
        from novamove.observe.stream import EventStream
        if value == "-":
            # The stream owns stdout: tables, progress and results go to stderr.
            stream = EventStream(sys.stdout)
            saved = sys.stdout
            sys.stdout = sys.stderr
            ctx.call_on_close(lambda: setattr(sys, "stdout", saved))
        else:
            try:
                stream = EventStream.open(value)
            except OSError as exc:
                raise click.BadParameter(f"cannot open {value!r}: {exc.strerror}", ctx) from None
            ctx.call_on_close(stream.close)
        observers.append(stream)
        return
    metrics = settings.get("_metrics")
    if metrics is None:
        from novamove.observe.metrics import RunMetrics
        metrics = settings["_metrics"] = RunMetrics()
        observers.append(metrics)
        ctx.call_on_close(metrics.flush)
    if option == "metrics_textfile":
        metrics.textfile = value
    elif option == "metrics_push":
        metrics.push_url = value


def observers_of(settings: dict) -> list[Any]:
    return list(settings.get("_observers") or [])


def doctor_findings(ctx: click.Context, classes: list[str]) -> None:
    """doctor's findings left (its report, not journal changes) into the metrics, if any."""
    from novamove.cli import _settings
    metrics = _settings(ctx).get("_metrics")
    if metrics is not None:
        metrics.doctor_findings(classes)
