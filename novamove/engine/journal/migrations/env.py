"""Alembic's environment for the journal: the connection comes from novamove.engine.journal
.migrate (no alembic.ini, no URL here)."""

from alembic import context

from novamove.engine.journal.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
