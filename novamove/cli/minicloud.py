"""`novamove minicloud up|down|status|env|boot`: the embedded cloud for trying and testing."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from novamove.cli import main
from novamove.errors import NovamoveError


class MinicloudFailed(NovamoveError):
    pass


def _cloud(state_dir: str | None):
    from novamove.minicloud import Minicloud
    return Minicloud(Path(state_dir) if state_dir else None,
                     log=lambda msg: click.echo(msg, err=True))


state_dir_option = click.option(
    "--dir", "state_dir", envvar="NOVAMOVE_MINICLOUD_DIR", metavar="PATH",
    help="State directory (default: ~/.local/state/novamove/minicloud).")


@main.group()
def minicloud():
    """A real Nova control plane on loopback (Keystone, Placement, Glance, Nova, fake computes)."""


@minicloud.command()
@state_dir_option
@click.option("--computes", default=None, type=click.IntRange(1, 16),
              help="Number of nova-compute hosts (default 3, or what the state directory has).")
@click.option("--servers", default=0, show_default=True, type=click.IntRange(0, 200),
              help="Boot this many small servers spread over the computes.")
@click.option("--base-port", type=int, default=None, help="First of 9 consecutive ports (default 17000).")
def up(state_dir, computes, servers, base_port):
    """Start the minicloud (succeeds, doing nothing, if it is already running)."""
    from novamove.minicloud import MinicloudError
    try:
        _cloud(state_dir).up(computes=computes, servers=servers, base_port=base_port)
    except MinicloudError as exc:
        raise MinicloudFailed(str(exc).splitlines()[0]) from exc
    except Exception as exc:
        raise MinicloudFailed(f"minicloud start failed: {exc}") from exc
    click.echo(_exports(_cloud(state_dir).env()))


@minicloud.command()
@state_dir_option
def down(state_dir):
    """Stop every process the minicloud started."""
    _cloud(state_dir).down()


@minicloud.command()
@state_dir_option
def status(state_dir):
    """Each component and each compute service, up or down (exit 1 if anything is down)."""
    from novamove.minicloud import MinicloudError
    try:
        rows = _cloud(state_dir).status()
    except MinicloudError as exc:
        raise MinicloudFailed(str(exc)) from exc
    width = max(len(r.name) for r in rows)
    for r in rows:
        state = "up" if r.up else "down"
        pid = f"pid {r.pid}" if r.pid else ""
        click.echo(f"{r.name:<{width}}  {state:<4}  {pid:<10}  {r.detail}")
    if not all(r.up for r in rows):
        sys.exit(1)


@minicloud.command()
@state_dir_option
def env(state_dir):
    """Print the shell exports that point clients at the minicloud."""
    from novamove.minicloud import MinicloudError
    try:
        click.echo(_exports(_cloud(state_dir).env()))
    except MinicloudError as exc:
        raise MinicloudFailed(str(exc)) from exc


@minicloud.command()
@state_dir_option
@click.argument("count", type=click.IntRange(1, 200))
def boot(state_dir, count):
    """Boot COUNT more small servers spread over the computes."""
    _cloud(state_dir).boot(count)


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
