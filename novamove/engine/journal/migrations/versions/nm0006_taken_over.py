"""Who took a run over: a run resumed on another machine (`maintain --resume`) keeps who
started it (`user_name`, `machine`, `command`) and records who took it over, from where, with
which command line and when (the latest take-over)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "nm0006"
down_revision = "nm0005"
branch_labels = None
depends_on = None

RUN_COLUMNS = [
    ("taken_over_user", sa.String(255)),
    ("taken_over_machine", sa.String(255)),
    ("taken_over_command", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")),
    ("taken_over_at", sa.String(40)),
]


def upgrade() -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}
    for name, type_ in RUN_COLUMNS:
        if name not in have:
            op.add_column("runs", sa.Column(name, type_))


def downgrade() -> None:
    for name, _ in RUN_COLUMNS:
        op.drop_column("runs", name)
