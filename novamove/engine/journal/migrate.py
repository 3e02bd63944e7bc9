"""Bring a journal's database to the schema this novamove writes (alembic, migrations/).

Opening a journal reads its version first (one query): only a journal behind is migrated, in
place, SQLite files from before the migrations included. A database that holds tables of
another application (and no journal) is refused, not written into.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from novamove import errors
from novamove.engine.journal.store import Store

VERSION_TABLE = "novamove_journal_version"
HEAD = "nm0006"          # the newest migration (tests check it is alembic's head)
MIGRATIONS = Path(__file__).parent / "migrations"


def current(store: Store) -> str | None:
    try:
        # (a server's autocommit pool: the connection the journal's writes use next, not one
        # more with its TLS handshake)
        with (store.quick or store.engine).connect() as c:
            return c.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sa_exc.ProgrammingError:
        return None                 # no version table (PostgreSQL, MySQL)
    except sa_exc.OperationalError as exc:
        if "no such table" in str(exc.orig):       # SQLite
            return None
        raise


def ensure(store: Store) -> None:
    """Upgrade the journal to HEAD unless it is there already. Several processes (or threads)
    opening a brand-new journal at once: one migrates, under a lock of the database itself
    (_migrating), the others wait for it and find the journal at HEAD."""
    try:
        if current(store) == HEAD:
            return
        with _migrating(store):
            version = current(store)          # again: another opener may have migrated meanwhile
            if version == HEAD:
                return
            if version is not None and not version.startswith("nm"):
                raise _foreign(store, f"its journal version {version!r} is not novamove's")
            if version is not None and version > HEAD:
                raise errors.PreconditionFailed(f"journal {store.display} was written by a newer novamove "
                                                f"(schema {version}, this one knows up to {HEAD}): upgrade novamove")
            if version is None:
                _refuse_foreign(store)
            upgrade(store)
    except sa_exc.DBAPIError as exc:
        raise store.fail(exc, "opening") from None


# alembic keeps its migration context in module globals: one migration at a time per process.
_PROCESS_LOCK = threading.Lock()
LOCK_WAIT = 120.0          # seconds an opener waits for another one's migration
_LOCK_NAME = "novamove_journal_migration"
_PG_LOCK_KEY = 7_411_965_301        # any constant: advisory locks are per database in PostgreSQL


@contextmanager
def _migrating(store: Store) -> Iterator[None]:
    """The one migration of a journal at a time, across processes and machines: MariaDB's
    GET_LOCK (named after the database: its names are server-wide), PostgreSQL's advisory lock
    (per database), an flock on the SQLite file's directory (not on the file: closing another
    descriptor of it would drop SQLite's own locks of this process). A lock dies with the
    session or process that holds it: a killed migrator blocks nobody."""
    with _PROCESS_LOCK:
        if store.dialect == "sqlite":
            with _directory_lock(store):
                yield
            return
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            _take_server_lock(store, c)
            try:
                yield
            finally:
                if store.dialect == "mysql":
                    c.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _mysql_lock_name(c)})
                else:
                    c.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


def _mysql_lock_name(c: sa.Connection) -> str:
    return f"{_LOCK_NAME}:{c.execute(sa.text('SELECT DATABASE()')).scalar()}"[:64]


def _take_server_lock(store: Store, c: sa.Connection) -> None:
    if store.dialect == "mysql":
        got = c.execute(sa.text("SELECT GET_LOCK(:name, :wait)"),
                        {"name": _mysql_lock_name(c), "wait": int(LOCK_WAIT)}).scalar()
    else:
        deadline = time.monotonic() + LOCK_WAIT
        while not (got := c.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}).scalar()) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
    if not got:
        raise _busy(store)


@contextmanager
def _directory_lock(store: Store) -> Iterator[None]:
    assert store.path is not None
    fd = os.open(store.path.parent, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _busy(store) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)            # drops the flock


def _busy(store: Store) -> errors.NovamoveError:
    return errors.NovamoveError(f"journal {store.display}: another process has been creating or upgrading it for "
                                f"{LOCK_WAIT:.0f} s; try again once it is done")


def upgrade(store: Store, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def _refuse_foreign(store: Store) -> None:
    """An unversioned database is either empty, an SQLite journal from before the migrations
    (runs and events), or somebody else's."""
    inspector = sa.inspect(store.engine)
    tables = set(inspector.get_table_names())
    if not tables:
        return
    if "runs" in tables and {"id", "verb", "status", "started_at"} <= {c["name"] for c in inspector.get_columns("runs")}:
        return
    raise _foreign(store, f"it holds tables of another application ({', '.join(sorted(tables)[:5])})")


def _foreign(store: Store, why: str) -> errors.PreconditionFailed:
    return errors.PreconditionFailed(f"journal {store.display} is not a novamove journal: {why}; "
                                     "give novamove an empty database of its own")
