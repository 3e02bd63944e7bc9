"""A shared journal: who ran a run and from where, its holder's fencing token and lease, a
version for compare-and-swap, and the claims table."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "nm0004"
down_revision = "nm0003"
branch_labels = None
depends_on = None

RUN_COLUMNS = [
    ("started_ns", sa.BigInteger),
    ("user_name", sa.String(255)),
    ("machine", sa.String(255)),
    ("command", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")),
    ("holder", sa.String(64)),
    ("lease_until", sa.Double),
]


def upgrade() -> None:
    bind = op.get_bind()
    have = {c["name"] for c in sa.inspect(bind).get_columns("runs")}
    for name, type_ in RUN_COLUMNS:
        if name not in have:
            op.add_column("runs", sa.Column(name, type_))
    if "version" not in have:
        op.add_column("runs", sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    if bind.dialect.name == "sqlite":
        # runs started in the same second kept their order by rowid: keep it
        op.execute("UPDATE runs SET started_ns = rowid WHERE started_ns IS NULL")
    if "claims" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "claims",
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("holder", sa.String(64)),
            sa.Column("lease_until", sa.Double),
            sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        )


def downgrade() -> None:
    op.drop_table("claims")
    for name, _ in RUN_COLUMNS + [("version", None)]:
        op.drop_column("runs", name)
