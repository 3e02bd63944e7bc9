"""events.ended_at: when a change became done or failed."""

import sqlalchemy as sa
from alembic import op

revision = "nm0003"
down_revision = "nm0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "ended_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("events")}:
        op.add_column("events", sa.Column("ended_at", sa.String(40)))


def downgrade() -> None:
    op.drop_column("events", "ended_at")
