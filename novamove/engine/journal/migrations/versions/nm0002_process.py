"""runs.process: boot id + pid + start time, so a reused pid never keeps a dead run running."""

import sqlalchemy as sa
from alembic import op

revision = "nm0002"
down_revision = "nm0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "process" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        op.add_column("runs", sa.Column("process", sa.String(128)))


def downgrade() -> None:
    op.drop_column("runs", "process")
