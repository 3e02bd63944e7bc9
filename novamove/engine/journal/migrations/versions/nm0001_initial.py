"""The journal as novamove first wrote it (runs and events; no `process`, no `ended_at`).

An SQLite journal from before the migrations already has these tables: they are kept.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "nm0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "runs" not in tables:
        op.create_table(
            "runs",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("verb", sa.String(64), nullable=False),
            sa.Column("started_at", sa.String(40), nullable=False),
            sa.Column("finished_at", sa.String(40)),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("cloud", sa.Text),
            sa.Column("server_id", sa.String(64)),
            sa.Column("server_name", sa.Text),
            sa.Column("source", sa.Text),
            sa.Column("dest", sa.Text),
            sa.Column("mode", sa.String(32)),
            sa.Column("strategy", sa.String(32)),
            sa.Column("pid", sa.Integer),
            sa.Column("summary", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")),
            sa.Column("error", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")),
        )
    if "events" not in tables:
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("at", sa.String(40), nullable=False),
            sa.Column("kind", sa.String(64), nullable=False),
            sa.Column("target", sa.Text),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("data", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")),
        )
        op.create_index("events_run", "events", ["run_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("runs")
