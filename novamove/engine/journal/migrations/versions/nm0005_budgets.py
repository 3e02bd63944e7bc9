"""Cloud-wide move budgets: a budget per cloud, and the slots runs take under it."""

import sqlalchemy as sa
from alembic import op

revision = "nm0005"
down_revision = "nm0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "budgets" not in tables:
        op.create_table(
            "budgets",
            sa.Column("cloud", sa.String(255), primary_key=True),
            sa.Column("max_in_flight", sa.Integer),
            sa.Column("max_per_host", sa.Integer),
            sa.Column("set_at", sa.String(40)),
            sa.Column("set_by", sa.String(255)),
            sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        )
    if "slots" not in tables:
        op.create_table(
            "slots",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("cloud", sa.String(255), nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("holder", sa.String(64)),
            sa.Column("server_id", sa.String(64)),
            sa.Column("dest", sa.String(255)),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("taken_at", sa.String(40)),
            sa.Index("slots_cloud", "cloud"),
        )


def downgrade() -> None:
    op.drop_table("slots")
    op.drop_table("budgets")
