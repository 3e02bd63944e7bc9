"""`novamove minicloud up|down|status|env|boot|stop-compute|start-compute|restart-compute|
restart`: the embedded cloud for trying and testing (docs/minicloud.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from novamove.cli import main
from novamove.errors import NotFound, NovamoveError, UsageError


class MinicloudFailed(NovamoveError):
    pass


def _fail(exc: Exception) -> NovamoveError:
    """A MinicloudError as the CLI's one-line error (unknown host/component: exit 3)."""
    from novamove.minicloud.manager import UnknownComponent
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, UnknownComponent):
        return NotFound(first)
    return MinicloudFailed(first)


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
@click.option("--tls/--no-tls", default=None,
              help="Serve Keystone, Nova, Placement, Glance over HTTPS with a CA of the "
                   "minicloud's own (kept: the state directory remembers it).")
@click.option("--max-limit", type=click.IntRange(1), default=None, metavar="N",
              help="Nova [api] max_limit: the most items one list page returns (default 1000).")
@click.option("--report-interval", type=click.IntRange(1), default=None, metavar="S",
              help="Nova [DEFAULT] report_interval: seconds between service reports (default 5).")
@click.option("--service-down-time", type=click.IntRange(1), default=None, metavar="S",
              help="Nova [DEFAULT] service_down_time: a service silent this long is down "
                   "(default 20).")
@click.option("--token-expiration", type=click.IntRange(1), default=None, metavar="S",
              help="Keystone [token] expiration: token lifetime in seconds (default 3600).")
@click.option("--release", default=None, metavar="RELEASE",
              help="OpenStack release to run: 2025.2 (default) or 2024.1, the oldest tested "
                   "(default: $NOVAMOVE_OS_RELEASE, else the state directory's). Another release "
                   "than the state directory's starts it clean.")
def up(state_dir, computes, servers, base_port, tls, max_limit, report_interval,
       service_down_time, token_expiration, release):
    """Start the minicloud (succeeds, doing nothing, if it is already running).

    The options after --base-port are kept in the state directory, so a later `up` without them
    keeps them; given to a running minicloud they are applied at once, restarting only the
    components they affect."""
    from novamove.minicloud import MinicloudError
    try:
        _cloud(state_dir).up(computes=computes, servers=servers, base_port=base_port, tls=tls,
                             max_limit=max_limit, report_interval=report_interval,
                             service_down_time=service_down_time,
                             token_expiration=token_expiration, release=release)
    except MinicloudError as exc:
        raise _fail(exc) from exc
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
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
    click.echo(f"release: OpenStack {_cloud(state_dir).saved_release()}")
    options = _cloud(state_dir).options       # last: scripts read the options from the last line
    click.echo("options: " + ", ".join(f"{k}={'on' if v is True else 'off' if v is False else v}"
                                       for k, v in options.items()))
    if not all(r.up for r in rows):
        sys.exit(1)


@minicloud.command("journal-url")
@state_dir_option
def journal_url(state_dir):
    """Print the URL of a journal database on the minicloud's MariaDB (with its password: use it
    as NOVAMOVE_JOURNAL, e.g. `export NOVAMOVE_JOURNAL=$(novamove minicloud journal-url)`)."""
    from novamove.minicloud import MinicloudError
    try:
        click.echo(_cloud(state_dir).journal_url())
    except MinicloudError as exc:
        raise MinicloudFailed(str(exc)) from exc


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


def _component_command(state_dir: str | None, action: str, name: str, compute: bool) -> None:
    from novamove.minicloud import MinicloudError
    cloud = _cloud(state_dir)
    try:
        name = cloud.compute_component(name) if compute else cloud.component_name(name)
        if action == "stop":
            if not cloud.stop_component(name):
                click.echo(f"{name} was not running", err=True)
        elif action == "start":
            if not cloud.start_component(name):
                click.echo(f"{name} is already running", err=True)
        else:
            cloud.restart_component(name)
    except MinicloudError as exc:
        raise _fail(exc) from exc


@minicloud.command("stop-compute")
@state_dir_option
@click.argument("host")
def stop_compute(state_dir, host):
    """Stop HOST's nova-compute process (its servers stay as they are; Nova sees the service
    down after service_down_time)."""
    _component_command(state_dir, "stop", host, compute=True)


@minicloud.command("start-compute")
@state_dir_option
@click.argument("host")
def start_compute(state_dir, host):
    """Start HOST's nova-compute again and wait until its service reports up."""
    _component_command(state_dir, "start", host, compute=True)


@minicloud.command("restart-compute")
@state_dir_option
@click.argument("host")
def restart_compute(state_dir, host):
    """Stop and start HOST's nova-compute; waits until its service reports up again."""
    _component_command(state_dir, "restart", host, compute=True)


@minicloud.command("stop")
@state_dir_option
@click.argument("component")
def stop(state_dir, component):
    """Stop one COMPONENT (nova-api, nova-conductor, nova-scheduler, keystone, placement, glance,
    network, rabbitmq, epmd, mariadb, nova-compute-HOST or HOST)."""
    _component_command(state_dir, "stop", component, compute=False)


@minicloud.command("start")
@state_dir_option
@click.argument("component")
def start(state_dir, component):
    """Start one stopped COMPONENT and wait until it serves."""
    _component_command(state_dir, "start", component, compute=False)


@minicloud.command("restart")
@state_dir_option
@click.argument("component")
def restart(state_dir, component):
    """Restart one COMPONENT and wait until it serves."""
    _component_command(state_dir, "restart", component, compute=False)


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
