"""Where the journal lives: an SQLite file (the default) or a database server named by a
SQLAlchemy URL (`mysql+pymysql://...`, `postgresql+psycopg://...`), shared by every machine
that names it.

The password of a URL never leaves this module: what novamove shows of a journal (`display`)
is the URL without it, and every error raised here is one line without it. A URL without a
password takes it from the file NOVAMOVE_JOURNAL_PASSWORD_FILE names (docs/journal.md).
"""

from __future__ import annotations

import inspect
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import QueuePool

from novamove import errors, retry

T = TypeVar("T")

PASSWORD_FILE_ENV = "NOVAMOVE_JOURNAL_PASSWORD_FILE"
# The drivers novamove is tested with (docs/journal.md "Backends").
DRIVERS = ("sqlite", "mysql+pymysql", "postgresql+psycopg")
ALIASES = {"mariadb+pymysql": "mysql+pymysql", "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql",
           "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class JournalUnreachable(errors.Unreachable):
    """The journal's database does not answer (exit 6): at once when it never answered this
    process (a wrong address, a server that is down); after patience() seconds of retries when
    it stopped answering mid-run. Either way the run stops before its next change: a change
    that cannot be journaled is not made."""
    transient = False


class Duplicate(errors.NovamoveError):
    """A row with the same unique key is there already (a claim or a budget another run wrote
    first): the caller looks again. Its own row, written by a try whose answer was lost, the
    caller looks for before it inserts again (claims.py, budgets.py)."""


class Fenced(errors.PreconditionFailed):
    """Another process took this run over (its lease expired): this one no longer writes as
    its holder (exit 4)."""


def is_url(location: Any) -> bool:
    return isinstance(location, str) and "://" in location


def has_inline_password(location: Any) -> bool:
    """Whether `location` is a URL carrying its password (refused on a command line)."""
    if not is_url(location):
        return False
    try:
        return bool(make_url(location).password)
    except sa_exc.ArgumentError:
        return False


INLINE_PASSWORD_REFUSED = ("--journal: a database URL with an inline password is refused on the command line "
                           "(it would show in the process list); give the URL in $NOVAMOVE_JOURNAL, or without "
                           f"the password and put the password in a file named by ${PASSWORD_FILE_ENV} "
                           "(--journal-password-file)")


def redact(text: str, secret: Optional[str]) -> str:
    return text.replace(secret, "***") if secret else text


@dataclass
class Store:
    """One journal's database: its engine, its dialect and how to name it without secrets."""
    engine: sa.Engine
    display: str
    dialect: str                  # sqlite | mysql | postgresql
    path: Optional[Path] = None   # the SQLite file
    secret: Optional[str] = None
    # A server's second pool, in autocommit: a write of one statement is committed as it is
    # executed (its answer says so), without a COMMIT round trip, and a read ends without a
    # ROLLBACK one. Transactions of several statements stay on `engine`. None for SQLite.
    quick: Optional[sa.Engine] = None

    def fail(self, exc: BaseException, doing: str) -> errors.NovamoveError:
        """The one-line error for a database error: never the password, never a traceback."""
        return _classify(exc, self.display, doing, self.secret)

    # Whether this journal's database has answered this process (set once it is opened): a
    # database that never answered is a wrong address or a server that is down, said at once;
    # one that answered and then stops is a blip (a restart, a fail-over) to ride out.
    answered: bool = False

    def run(self, call: Callable[[], T], what: str) -> T:
        """`call()` (one whole transaction), tried again on a transient fault: a deadlock, a
        serialization failure or a lock wait (another writer won the race), a lost connection
        or a database that stops answering once it has answered. Bounded (patience(), from
        50 ms, doubling): then one line naming `novamove recover`. Any other database error is
        a one-line NovamoveError at once."""
        def once() -> T:
            try:
                return call()
            except sa_exc.DBAPIError as exc:
                if _is_conflict(exc):
                    raise _Transient("another process holds the file locked" if self.dialect == "sqlite" else
                                     "write conflict (deadlock, serialization failure or lock wait)") from None
                if self.answered and _is_disconnect(exc):
                    raise _Transient("the database does not answer (connection lost or refused)") from None
                failure = self.fail(exc, what)
                if _is_duplicate(exc):
                    raise Duplicate(str(failure)) from None
                raise failure from None
        limit = patience()
        try:
            return retry.patiently(once, f"journal {self.display}: {what}", patience=limit, first_delay=0.05)
        except _Transient as exc:
            raise JournalUnreachable(redact(
                f"journal {self.display}: {what}: {exc.why}, still after {limit:g} s of retries; the run stops "
                "here, writing nothing more: once the database answers, `novamove recover` finishes or undoes "
                "what it began", self.secret)) from None


PATIENCE_ENV = "NOVAMOVE_JOURNAL_PATIENCE"


def autocommit(function: T) -> T:
    """Mark a write function of a connection whose statements need no transaction together
    (a look-up, then an insert): Journal._write runs it on a server's autocommit pool."""
    function.autocommit = True     # type: ignore[attr-defined]
    return function


def patience() -> float:
    """Seconds of pauses a journal write rides out before giving up ($NOVAMOVE_JOURNAL_PATIENCE,
    30 by default: a MariaDB/PostgreSQL restart or fail-over)."""
    try:
        return max(0.0, float(os.environ.get(PATIENCE_ENV) or 30.0))
    except ValueError:
        return 30.0


class _Transient(errors.Unreachable):
    transient = True

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def open_store(location: str | os.PathLike) -> Store:
    if is_url(location):
        return _server_store(str(location))
    path = Path(location).expanduser()
    # Connections are kept (a pool, one per thread at a time): opening the file for every
    # statement cost more CPU than the statement. SQLite's own defaults are kept on purpose:
    # rollback journal, synchronous=FULL, so a committed intent is on disk (fsync) before the
    # cloud change it announces, power loss included; and no WAL (it needs shared memory, so
    # no journal on NFS and no reading it without write access). A file another process holds
    # locked is waited for up to 5 s per try (busy timeout), then tried again (Store.run).
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=QueuePool, pool_size=2, max_overflow=8,
                              connect_args={"timeout": min(5.0, max(0.1, patience() / 3)),
                                            "check_same_thread": False})
    _ENGINES.add(engine)
    return Store(engine, str(path), "sqlite", path=path)


# A forked child (a hook's process before its exec, a test's subprocess) must not use its
# parent's pooled connections: it drops them (without closing them under the parent).
_ENGINES: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _server_store(location: str) -> Store:
    try:
        url = make_url(location)
    except sa_exc.ArgumentError:
        raise errors.UsageError("journal: not a database URL or path (see docs/journal.md: "
                                "mysql+pymysql://USER@HOST/DB, postgresql+psycopg://USER@HOST/DB)") from None
    url = _with_password(url)
    driver = ALIASES.get(url.drivername, url.drivername)
    display = url.render_as_string(hide_password=True)
    if driver == "sqlite":
        return open_store(url.database or "")
    if driver not in DRIVERS:
        raise errors.UsageError(f"journal {display}: unknown database driver {url.drivername!r} "
                                f"(novamove knows: {', '.join(DRIVERS)}, or a file path)")
    url = url.set(drivername=driver)
    if driver == "mysql+pymysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    connect_args: dict = {"connect_timeout": 10}
    try:
        # LIFO: the connection just given back is the next one taken (warm, not pinged).
        engine, quick = (sa.create_engine(url, pool_size=2, max_overflow=4, pool_use_lifo=True,
                                          connect_args=connect_args, hide_parameters=True, **options)
                         for options in ({}, dict(isolation_level="AUTOCOMMIT", **_SKIP_AUTOCOMMIT_ROLLBACK)))
        for e in (engine, quick):
            _ping_when_idle(e)
            _ENGINES.add(e)
    except (sa_exc.NoSuchModuleError, ImportError, ModuleNotFoundError):
        extra = "mysql" if driver.startswith("mysql") else "postgresql"
        raise errors.UsageError(f"journal {display}: the {driver} driver is not installed "
                                f"(pip install 'novamove[{extra}]')") from None
    return Store(engine, display, engine.dialect.name, secret=url.password, quick=quick)


# A pooled connection idle longer than this is pinged before it is used again (a round trip);
# one used more recently is not. (SQLAlchemy's pool_pre_ping pinged at every checkout: a round
# trip more for every journal write and read.)
# A connection that went bad meanwhile is no danger either way: its statement fails as a lost
# connection, which Store.run retries on a fresh one (an insert whose commit may have gone
# through is looked for first), so the ping only spares that one failed try and its warning.
PING_AFTER_IDLE = 5.0
# SQLAlchemy >= 2.0.43 can leave out the ROLLBACK a connection in autocommit does not need.
_SKIP_AUTOCOMMIT_ROLLBACK = ({"skip_autocommit_rollback": True} if "skip_autocommit_rollback" in
                             inspect.signature(sa.engine.default.DefaultDialect.__init__).parameters else {})
_IDLE_SINCE = "novamove_idle_since"


def _ping_when_idle(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "checkin")
    def idle(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)          # none: a new connection
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:        # noqa: BLE001 -- any failure: this connection is not to be used
            # the pool drops its connections from before now and takes a new one
            raise sa_exc.InvalidatePoolError(f"journal connection idle {time.monotonic() - since:.0f} s: "
                                             f"{type(exc).__name__}") from None


def _with_password(url: URL) -> URL:
    """A URL with a user and no password takes it from $NOVAMOVE_JOURNAL_PASSWORD_FILE."""
    name = os.environ.get(PASSWORD_FILE_ENV)
    if url.password or not url.username or not name:
        return url
    try:
        password = Path(name).expanduser().read_text().strip("\r\n")
    except OSError as exc:
        raise errors.UsageError(f"{PASSWORD_FILE_ENV}: cannot read {name}: {exc.strerror}") from None
    return url.set(password=password)


# MySQL/MariaDB: deadlock (1213, also Galera's certification failure), lock wait timeout (1205);
# PostgreSQL: serialization_failure, deadlock_detected; SQLite: another writer holds the file.
_MYSQL_CONFLICTS = {1213, 1205}
_PG_CONFLICTS = {"40001", "40P01"}


def _is_conflict(exc: sa_exc.DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    if isinstance(code, int) and code in _MYSQL_CONFLICTS:
        return True
    if getattr(orig, "sqlstate", None) in _PG_CONFLICTS:
        return True
    return "database is locked" in str(orig)


def _is_duplicate(exc: sa_exc.DBAPIError) -> bool:
    """A unique key taken (MySQL 1062, PostgreSQL 23505, SQLite's UNIQUE/PRIMARY KEY failure)."""
    if not isinstance(exc, sa_exc.IntegrityError):
        return False
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None and getattr(orig, "args", None) else None
    return code == 1062 or getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(orig)


# A connection lost or refused: MySQL client errors (2002/2003 cannot connect, 2006 gone away,
# 2013 lost during a query), server shutdown (1053) and a killed connection (1927); PostgreSQL's
# class 08 (connection exception) and 57P01-57P03 (terminated by an administrator, crash
# shutdown, cannot connect now: pg_terminate_backend, a restart); and whatever SQLAlchemy
# itself took for a disconnect.
_MYSQL_DISCONNECTS = {2002, 2003, 2005, 2006, 2013, 2055, 1053, 1927, 4031}
_PG_DISCONNECTS = {"57P01", "57P02", "57P03"}


def _is_disconnect(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None and getattr(orig, "args", None) else None
    if isinstance(code, int) and code in _MYSQL_DISCONNECTS:
        return True
    state = getattr(orig, "sqlstate", None) or ""
    if state.startswith("08") or state in _PG_DISCONNECTS:
        return True
    text = str(orig).lower()
    return isinstance(exc, sa_exc.OperationalError) and (
        "server closed the connection" in text or "connection refused" in text or "connection failed" in text
        or "terminating connection" in text or "lost connection" in text or "gone away" in text)


_MYSQL_AUTH = {1045, 1044, 1698}
_MYSQL_UNREACHABLE = {2002, 2003, 2005, 2006, 2013}


def _classify(exc: BaseException, display: str, doing: str, secret: Optional[str]) -> errors.NovamoveError:
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "args", (None,))[0] if getattr(orig, "args", None) else None
    text = " ".join(str(orig).split())
    lowered = text.lower()
    if (isinstance(code, int) and code in _MYSQL_AUTH) or "password authentication failed" in lowered \
            or "authentication failed" in lowered or "access denied" in lowered:
        return errors.AuthError(redact(f"journal {display}: the database refused the user or password "
                                       "(check $NOVAMOVE_JOURNAL or the password file)", secret))
    # (PostgreSQL says it after "connection failed": before the unreachable words)
    if (isinstance(code, int) and code == 1049) or ("database" in lowered and "does not exist" in lowered):
        return errors.NotFound(redact(f"journal {display}: no such database (create it, empty, for novamove)",
                                      secret))
    if (isinstance(code, int) and code in _MYSQL_UNREACHABLE) or "connection refused" in lowered \
            or "could not connect" in lowered or "timeout" in lowered or "name or service not known" in lowered \
            or "can't connect" in lowered or "connection failed" in lowered:
        return JournalUnreachable(redact(f"journal {display}: the database does not answer ({doing})", secret))
    if "unable to open database file" in lowered:
        return errors.UsageError(f"journal {display}: cannot open the file ({doing})")
    first = redact(text, secret)[:200]
    return errors.NovamoveError(f"journal {display}: {doing} failed: {first}")
