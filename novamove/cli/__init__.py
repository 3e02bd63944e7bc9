"""The `novamove` command line: parse arguments, call the library, render the result.

Each verb family lives in its own module and registers itself on `main`; this module only
holds the root group, the shared options and the error-to-exit-code mapping.
"""

from __future__ import annotations

import sys

import click

from novamove.errors import EXIT_INTERRUPTED, NovamoveError


class Context:
    """What every verb needs to reach a cloud: no secrets here, only names."""

    def __init__(self, os_cloud: str | None, region: str | None, journal: str | None, debug: bool):
        self.os_cloud = os_cloud
        self.region = region
        self.journal = journal
        self.debug = debug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--os-cloud", envvar="OS_CLOUD", metavar="NAME",
              help="clouds.yaml entry (default: $OS_CLOUD, else OS_* variables).")
@click.option("--os-region-name", "region", envvar="OS_REGION_NAME", metavar="REGION")
@click.option("--journal", envvar="NOVAMOVE_JOURNAL", metavar="PATH",
              help="SQLite journal of runs (default: ~/.local/state/novamove/journal.sqlite).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="novamove")
@click.pass_context
def main(ctx: click.Context, os_cloud, region, journal, debug):
    """Move OpenStack instances to the compute node you name."""
    ctx.obj = Context(os_cloud, region, journal, debug)


def run() -> None:
    """Console entry point: one-line errors and documented exit codes."""
    debug = "--debug" in sys.argv
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("novamove: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NovamoveError as exc:
        if debug:
            raise
        click.echo(f"novamove: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("novamove: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


# Verb families register themselves on `main` when imported.
from novamove.cli import minicloud as _minicloud  # noqa: E402,F401
from novamove.cli import move as _move  # noqa: E402,F401
from novamove.cli import drain as _drain  # noqa: E402,F401
from novamove.cli import hosts as _hosts  # noqa: E402,F401
from novamove.cli import maintain as _maintain  # noqa: E402,F401
