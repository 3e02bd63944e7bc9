"""The `novamove` command line: parse arguments, call novamove.api, render with novamove.report.

Each verb family lives in its own module and registers itself on `main`; this module holds the
root group, the global options (connection and diagnostics, accepted before *and* after the
verb, as osc-lib names them), the output options, and the error-to-exit-code mapping.
Nothing heavy is imported at module level: `novamove --help` must stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from novamove import errors
from novamove.errors import EXIT_INTERRUPTED, NovamoveError

EPILOG = """\b
Global options (connection and diagnostics) are accepted before or after the verb.
OS_* variables count on top of --os-cloud / $OS_CLOUD, as with the openstack client.
\b
Exit codes:
  0    done: the cloud, read back, shows the outcome asked for
  1    the move (or a step of a batch) was attempted and did not land
  2    bad arguments or input; nothing was changed
  3    unknown or ambiguous server or host
  4    precondition failed: wrong state, disabled/down target, no capacity
  5    no usable credentials, unknown cloud, or forbidden
  6    cloud API unreachable (network, TLS, catalog)
  7    gave up waiting (--timeout)
  8    a drain ended with servers still on the host
  9    already on the target: nothing to do (--if-needed makes it 0)
  10   doctor: drift found and left (not repaired, or not repairable)
  130  interrupted (Ctrl-C)
"""

META_OPTIONS = "novamove.options"
META_OUTPUT = "novamove.output"
INTERFACES = ("public", "internal", "admin")


class Context:
    """What every verb needs besides its own arguments: no secrets here, only names."""

    @property
    def journal(self) -> Optional[str]:
        return _settings().get("journal")

    # Older names, kept for verb modules written against them.
    @property
    def os_cloud(self) -> Optional[str]:
        return _settings().get("os_cloud")

    @property
    def region(self) -> Optional[str]:
        return _settings().get("os_region_name")

    @property
    def debug(self) -> bool:
        return bool(_settings().get("debug"))


def _settings(ctx: Optional[click.Context] = None) -> dict:
    ctx = ctx or click.get_current_context()
    return ctx.meta.setdefault(META_OPTIONS, {})


# ---------------------------------------------------------------------------- global options

def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option's value where every verb finds it; given after the verb, it wins
    over the same option before the verb (or its variable)."""
    from click.core import ParameterSource
    if value is None or value is False or value == 0 or value == ():
        return value
    if ctx.get_parameter_source(param.name) == ParameterSource.DEFAULT:
        return value
    settings = _settings(ctx)
    if param.name == "verbose":
        value = settings.get("verbose", 0) + value
    settings[param.name] = value
    return value


def _store_journal(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A database URL with its password is refused on the command line (ps shows argv to every
    user of the machine): $NOVAMOVE_JOURNAL or a password file carry it instead."""
    from click.core import ParameterSource
    if value and "://" in value and ctx.get_parameter_source(param.name) != ParameterSource.ENVIRONMENT:
        from novamove import api
        api.refuse_inline_journal_password(value)
    return _store(ctx, param, value)


def _store_password_file(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The journal opens where the api is called: the file's name goes through the variable
    (a path, no secret; hooks read no journal password from it unless they read the file)."""
    if value:
        os.environ["NOVAMOVE_JOURNAL_PASSWORD_FILE"] = os.path.expanduser(value)
    return value


def _check_api_version(ctx, param, value):
    if value is None:
        return None
    from novamove.api import ConnectionSpec
    try:
        value = ConnectionSpec.check_compute_api_version(value, "")
    except errors.UsageError:
        raise click.BadParameter(f"{value!r} is not 2.NN (e.g. 2.79) or 'latest'", ctx, param) from None
    return _store(ctx, param, value)


def _global_options(root: bool) -> list[click.Option]:
    """Fresh Option objects for the root group (with their variables, shown in --help) or for
    a verb (hidden, no variables: the root already read them)."""
    def opt(*decls: str, envvar: Optional[str] = None, callback=_store, **kw: Any) -> click.Option:
        return click.Option(decls, envvar=envvar if root else None, show_envvar=root, hidden=not root,
                            expose_value=False, callback=callback, is_eager=False, **kw)
    connection = [
        opt("--os-cloud", envvar="OS_CLOUD", metavar="NAME",
            help="Cloud name in clouds.yaml (default: $OS_CLOUD, else the OS_* variables)."),
        opt("--os-region-name", envvar="OS_REGION_NAME", metavar="REGION",
            help="Region of the cloud to use (default: the cloud's region_name)."),
        opt("--os-interface", envvar="OS_INTERFACE", type=click.Choice(INTERFACES),
            help="Endpoint interface in the service catalog (default: public)."),
        opt("--os-cacert", envvar="OS_CACERT", metavar="PATH",
            help="CA bundle to verify the API's TLS certificates."),
        opt("--os-cert", envvar="OS_CERT", metavar="PATH", help="Client certificate (PEM) for TLS."),
        opt("--os-key", envvar="OS_KEY", metavar="PATH", help="Client certificate key (PEM)."),
        opt("--insecure", is_flag=True, default=False,
            help="Do not verify the API's TLS certificates (OS_INSECURE=true does the same)."),
        opt("--os-compute-api-version", envvar="OS_COMPUTE_API_VERSION", metavar="2.NN|latest",
            callback=_check_api_version,
            help="Highest compute microversion to use (default: clouds.yaml compute_api_version, "
                 "else the cloud's highest)."),
        opt("--os-api-timeout", envvar="OS_API_TIMEOUT", metavar="SECONDS",
            type=click.FloatRange(min=0, min_open=True),
            help="Timeout of each HTTP request (default: clouds.yaml api_timeout, else 60)."),
    ]
    diagnostics = [
        opt("--journal", envvar="NOVAMOVE_JOURNAL", metavar="PATH|URL", callback=_store_journal,
            help="Journal of runs: an SQLite file (default: ~/.local/state/novamove/journal.sqlite) or a "
                 "database URL shared by several machines (mysql+pymysql://USER@HOST/DB, "
                 "postgresql+psycopg://USER@HOST/DB; docs/journal.md). A URL with its password only "
                 "from the variable or with --journal-password-file."),
        opt("--journal-password-file", envvar="NOVAMOVE_JOURNAL_PASSWORD_FILE", metavar="PATH",
            callback=_store_password_file,
            help="File holding the password of the --journal URL's user (never on the command line)."),
        opt("--debug", is_flag=True, default=False,
            help="Log every HTTP request and response (secrets redacted) and show tracebacks."),
        opt("-v", "--verbose", count=True, default=0, help="More log lines on stderr (-vv: debug)."),
        opt("-q", "--quiet", is_flag=True, default=False,
            help="No progress display or lines (every verb's --quiet), as `openstack -q`."),
        opt("--log-file", metavar="PATH", help="Also write the log to PATH (mode 0600)."),
    ]
    return connection + diagnostics


CONNECTION_OPTION_NAMES = ("os_cloud", "os_region_name", "os_interface", "os_cacert", "os_cert", "os_key",
                           "insecure", "os_compute_api_version", "os_api_timeout")


def _attach(cmd: click.Command) -> None:
    if getattr(cmd, "_novamove_globals", False):
        return
    names = {p.name for p in cmd.params}
    for p in _global_options(root=False):
        if p.name not in names:
            p._novamove_global = True
            cmd.params.append(p)
    cmd._novamove_globals = True
    if not cmd.epilog and not isinstance(cmd, click.Group):
        cmd.epilog = ("Global options (--os-cloud, --os-region-name, --insecure, --debug, ...: see "
                      "`novamove --help`) are accepted here too.")


class _CompletesGlobals:
    """Shell completion offers the global options after a verb too (they are hidden from the
    verb's --help only)."""

    def shell_complete(self, ctx: click.Context, incomplete: str):
        results = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            from click.shell_completion import CompletionItem
            seen = {r.value for r in results}
            for p in self.params:
                if getattr(p, "_novamove_global", False):
                    for opt in p.opts + p.secondary_opts:
                        if opt.startswith(incomplete) and opt not in seen:
                            results.append(CompletionItem(opt, help=p.help))
        return results


class NovamoveCommand(_CompletesGlobals, click.Command):
    """A verb: sets up logging once every option (before and after it) is parsed; the root -q
    is the verb's own --quiet; -f shell only where the verb prints one object (shows_one)."""

    shows_one = False     # set on the verbs whose output is one object (cliff's ShowOne)

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.params.get("fmt") == "shell" and not self.shows_one:
            raise click.UsageError("-f shell prints one object (migrate, back, wait, abort, force-complete, "
                                   f"confirm, revert); {ctx.command_path} lists rows: use -f value, csv or json",
                                   ctx)
        if "quiet" in ctx.params and _settings(ctx).get("quiet"):
            ctx.params["quiet"] = True
        setup_logging(ctx)
        return super().invoke(ctx)


class NovamoveGroup(_CompletesGlobals, click.Group):
    """Groups whose commands (and sub-groups) accept the global options too."""

    command_class = NovamoveCommand
    group_class = type   # sub-groups are NovamoveGroups

    def add_command(self, cmd: click.Command, name: Optional[str] = None) -> None:
        _attach(cmd)
        super().add_command(cmd, name)


@click.group(cls=NovamoveGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(package_name="novamove")
@click.pass_context
def main(ctx: click.Context):
    """Move OpenStack instances to the compute node you name."""
    ctx.obj = Context()


main.params.extend(_global_options(root=True))
main._novamove_globals = True


# ---------------------------------------------------------------------------- what verbs use

def journal_path(ctx: Optional[click.Context] = None):
    """The --journal path; with --events or --metrics-* (observe_options), the Journal itself,
    carrying those observers (every api verb takes a path or a Journal)."""
    s = _settings(ctx)
    observers = s.get("_observers")
    if not observers:
        return s.get("journal")
    if "_journal" not in s:
        from novamove import api
        s["_journal"] = api.open_journal(s.get("journal"), observers=observers)
    return s["_journal"]


def _store_observe(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return value
    from novamove.observe import cli as observe_cli
    observe_cli.attach(ctx, _settings(ctx), param.name, value)
    return value


# novamove.engine.stall's choices, spelled out here so that `novamove --help` does not import it.
ON_STALL_CHOICES = ("force-complete", "abort", "cold", "leave")

on_stall_option = click.option(
    "--on-stall", type=click.Choice(ON_STALL_CHOICES), default="force-complete", show_default=True,
    help="What to do with a live migration that stops converging (no memory progress over "
         "NOVAMOVE_STALL_WINDOW seconds): force-complete (the guest pauses for the last copy, or "
         "post-copy where the cloud permits it), abort (a drain retries once on another host), "
         "cold (abort, then move it cold), leave. Servers tagged novamove:maintenance=live are "
         "never moved cold; =live-strict are never force-completed (aborted, they stay). "
         "--timeout/--on-timeout still bound the whole wait.")


def observe_options(f):
    """--events, --metrics-textfile, --metrics-push: on every verb that changes the cloud, the
    observers of its journal (novamove.observe; docs/events.md, docs/observability.md)."""
    f = click.option("--metrics-push", metavar="URL", expose_value=False, callback=_store_observe,
                     help="Push the run's metrics to this Prometheus Pushgateway while it runs and at "
                          "its end (job novamove).")(f)
    f = click.option("--metrics-textfile", metavar="PATH", expose_value=False, callback=_store_observe,
                     help="Write the run's Prometheus metrics to PATH (node_exporter textfile format, "
                          "replaced atomically) while it runs and at its end.")(f)
    return click.option("--events", metavar="FILE|-", expose_value=False, callback=_store_observe,
                        help="Append every journal state change to FILE as one JSON object per line "
                             "(docs/events.md); '-': to stdout, every other output then goes to "
                             "stderr.")(f)


def connection_spec(ctx: Optional[click.Context] = None):
    """The one ConnectionSpec of this command line (options, else their OS_* variables)."""
    from novamove.api import ConnectionSpec
    s = _settings(ctx)
    version = s.get("os_compute_api_version")
    if version is None and os.environ.get("NOVAMOVE_MAX_MICROVERSION"):
        version = ConnectionSpec.check_compute_api_version(os.environ["NOVAMOVE_MAX_MICROVERSION"],
                                                           "NOVAMOVE_MAX_MICROVERSION")
        if not s.get("_warned_max_microversion"):
            s["_warned_max_microversion"] = True
            click.echo("novamove: warning: NOVAMOVE_MAX_MICROVERSION is deprecated; use "
                       "--os-compute-api-version or OS_COMPUTE_API_VERSION", err=True)
    return ConnectionSpec.build(
        s.get("os_cloud"), region_name=s.get("os_region_name"), interface=s.get("os_interface"),
        cacert=s.get("os_cacert"), cert=s.get("os_cert"), key=s.get("os_key"),
        verify=False if s.get("insecure") else None, api_timeout=s.get("os_api_timeout"),
        compute_api_version=version)


def conn(ctx: Optional[click.Context] = None) -> dict:
    """Keyword arguments that connect an api call: {"cloud": ConnectionSpec}."""
    import logging
    spec = connection_spec(ctx)
    logging.getLogger("novamove.cli").info("connecting with %r (OS_* variables fill what it leaves unset)",
                                           spec)   # the repr shows no secret
    return {"cloud": spec}


def _store_output(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(META_OUTPUT, {})[param.name] = value
    return value


def output_options(f):
    """-f/--format (passed to the verb as `fmt`), -c/--column (repeatable), --noindent, and as
    cliff has them --prefix (-f shell), --sort-column (repeatable), --sort-ascending/-descending."""
    from novamove.report import FORMATS
    f = click.option("--sort-descending", "sort_descending", is_flag=True, expose_value=False,
                     callback=_store_output, help="Sort --sort-column descending.")(f)
    f = click.option("--sort-ascending", "sort_ascending", is_flag=True, expose_value=False,
                     callback=_store_output, help="Sort --sort-column ascending (the default).")(f)
    f = click.option("--sort-column", "sort_columns", multiple=True, metavar="COLUMN", expose_value=False,
                     callback=_store_output,
                     help="Sort the rows by this column (repeatable, first one first), as cliff does.")(f)
    f = click.option("--prefix", metavar="PREFIX", default="", expose_value=False, callback=_store_output,
                     help="-f shell: add PREFIX to every variable name.")(f)
    f = click.option("--noindent", is_flag=True, expose_value=False, callback=_store_output,
                     help="Compact JSON (no indentation).")(f)
    f = click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN", expose_value=False,
                     callback=_store_output,
                     help="Only this column (repeatable): novamove's name (source_compute) or the "
                          "`openstack` plugin's (\"Source Compute\"); see docs/cli.md.")(f)
    return click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(f)


def output(fmt: str, available=None, ctx: Optional[click.Context] = None):
    """The Output of this command line; unknown -c columns are refused here, before any call."""
    from novamove.report import Output
    ctx = ctx or click.get_current_context()
    from novamove.report import output_from
    out = output_from(fmt, ctx.meta.get(META_OUTPUT, {}))
    return out.check(available) if available is not None else out


# ---------------------------------------------------------------------------- diagnostics

def setup_logging(ctx: Optional[click.Context] = None) -> None:
    """-v / -vv / --debug / --log-file. --debug also turns on openstacksdk's and keystoneauth's
    HTTP logging (REQ/RESP: they redact tokens and passwords themselves)."""
    s = _settings(ctx)
    if s.get("_logging"):
        return
    s["_logging"] = True
    debug, verbose, log_file = bool(s.get("debug")), int(s.get("verbose") or 0), s.get("log_file")
    if not (debug or verbose or log_file):
        return
    import logging
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = []
    if debug or verbose:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(fmt)
        handlers.append(err)
    if log_file:
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fh = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
        fh.setFormatter(fmt)
        handlers.append(fh)
    novamove_log = logging.getLogger("novamove")
    novamove_log.setLevel(level)
    for h in handlers:
        h.setLevel(level)
        novamove_log.addHandler(h)
    novamove_log.propagate = False
    if debug:
        # The HTTP requests and responses, as `openstack --debug` shows them.
        for name in ("keystoneauth", "openstack"):
            lg = logging.getLogger(name)
            lg.setLevel(logging.DEBUG)
            for h in handlers:
                lg.addHandler(h)
            lg.propagate = False


# ---------------------------------------------------------------------------- entry point

def _debug_requested(argv) -> bool:
    return "--debug" in argv


def run(argv: Optional[list] = None) -> None:
    """Console entry point: one-line errors and documented exit codes."""
    argv = sys.argv[1:] if argv is None else argv
    debug = _debug_requested(argv)
    try:
        main.main(args=argv, prog_name="novamove", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("novamove: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as exc:   # click >= 8.2: `novamove` alone
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "novamove"
        click.echo(f"novamove: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"novamove: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except NovamoveError as exc:
        if debug:
            raise
        click.echo(f"novamove: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("novamove: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:   # a bug, or a library error nobody mapped: still one line
        if debug:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        click.echo(f"novamove: error: unexpected {type(exc).__name__}: {text} (--debug shows the "
                   "traceback)", err=True)
        sys.exit(errors.EXIT_FAILED)


# Verb families register themselves on `main` when imported.
from novamove.cli import minicloud as _minicloud  # noqa: E402,F401
from novamove.cli import move as _move  # noqa: E402,F401
from novamove.cli import drain as _drain  # noqa: E402,F401
from novamove.cli import hosts as _hosts  # noqa: E402,F401
from novamove.cli import evacuate as _evacuate  # noqa: E402,F401
from novamove.cli import maintain as _maintain  # noqa: E402,F401
from novamove.cli import doctor as _doctor  # noqa: E402,F401
from novamove.cli import runreport as _runreport  # noqa: E402,F401
from novamove.cli import rebalance as _rebalance  # noqa: E402,F401
from novamove.cli import budget as _budget  # noqa: E402,F401
