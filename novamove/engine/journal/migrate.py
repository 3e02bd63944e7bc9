"""Bring a journal's database to the schema this novamove writes (alembic, migrations/).

Opening a journal reads its version first (one query): only a journal behind is migrated, in
place, SQLite files from before the migrations included. A database that holds tables of
another application (and no journal) is refused, not written into.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from novamove import errors
from novamove.engine.journal.store import Store

VERSION_TABLE = "novamove_journal_version"
HEAD = "nm0005"          # the newest migration (tests check it is alembic's head)
MIGRATIONS = Path(__file__).parent / "migrations"


def current(store: Store) -> str | None:
    try:
        with store.engine.connect() as c:
            return c.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sa_exc.ProgrammingError:
        return None                 # no version table (PostgreSQL, MySQL)
    except sa_exc.OperationalError as exc:
        if "no such table" in str(exc.orig):       # SQLite
            return None
        raise


def ensure(store: Store) -> None:
    """Upgrade the journal to HEAD unless it is there already."""
    try:
        version = current(store)
        if version == HEAD:
            return
        if version is not None and not version.startswith("nm"):
            raise _foreign(store, f"its journal version {version!r} is not novamove's")
        if version is not None and version > HEAD:
            raise errors.PreconditionFailed(f"journal {store.display} was written by a newer novamove "
                                            f"(schema {version}, this one knows up to {HEAD}): upgrade novamove")
        if version is None:
            _refuse_foreign(store)
        try:
            upgrade(store)
        except sa_exc.DBAPIError:
            if current(store) != HEAD:     # not another process migrating at the same moment
                raise
    except sa_exc.DBAPIError as exc:
        raise store.fail(exc, "opening") from None


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
