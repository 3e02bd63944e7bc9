"""The journal's one schema, for SQLite, MariaDB/MySQL and PostgreSQL alike (the migrations in
migrations/versions/ build it; tests/unit/test_journal_backends.py checks they agree)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

# JSON and free text: MySQL's TEXT stops at 64 KiB.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("verb", sa.String(64), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("status", sa.String(32), nullable=False),   # running | ok | failed | noop | interrupted | recovered
    sa.Column("cloud", sa.Text),
    sa.Column("server_id", sa.String(64)),
    sa.Column("server_name", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("dest", sa.Text),
    sa.Column("mode", sa.String(32)),
    sa.Column("strategy", sa.String(32)),
    sa.Column("pid", sa.Integer),
    sa.Column("process", sa.String(128)),      # boot id + pid + start time: which process, exactly
    sa.Column("summary", LongText),
    sa.Column("error", LongText),
    # a shared journal (migration 0004): who ran it, from where, and who holds it now
    sa.Column("started_ns", sa.BigInteger),    # order of runs started in the same second
    sa.Column("user_name", sa.String(255)),
    sa.Column("machine", sa.String(255)),
    sa.Column("command", LongText),            # argv without secrets
    sa.Column("holder", sa.String(64)),        # fencing token of the process that holds the run
    sa.Column("lease_until", sa.Double),        # epoch seconds; renewed while the holder lives
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),   # compare-and-swap
    # the latest take-over (migration 0006): a run resumed by another process, maybe on another
    # machine; user_name, machine and command stay who started it
    sa.Column("taken_over_user", sa.String(255)),
    sa.Column("taken_over_machine", sa.String(255)),
    sa.Column("taken_over_command", LongText),  # argv without secrets
    sa.Column("taken_over_at", sa.String(40)),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),    # no foreign key: as SQLite always had it
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),      # service.disable | server.migrate | ...
    sa.Column("target", sa.Text),                          # service host, server id, migration id
    sa.Column("state", sa.String(16), nullable=False),     # intent | done | failed | note
    sa.Column("data", LongText),                           # JSON
    sa.Column("ended_at", sa.String(40)),                  # when the change became done or failed
    sa.Index("events_run", "run_id"),
)

# Names a run holds in the shared journal (a host a drain works on), taken by compare-and-swap.
claims = sa.Table(
    "claims", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("holder", sa.String(64)),
    sa.Column("lease_until", sa.Double),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

# Columns of `runs` that are the journal's own bookkeeping, not part of a run's record.
INTERNAL_RUN_COLUMNS = ("started_ns", "holder", "version")

# Cloud-wide move budgets (migration 0005): one row per cloud; `version` serializes slot takes.
budgets = sa.Table(
    "budgets", metadata,
    sa.Column("cloud", sa.String(255), primary_key=True),
    sa.Column("max_in_flight", sa.Integer),
    sa.Column("max_per_host", sa.Integer),
    sa.Column("set_at", sa.String(40)),
    sa.Column("set_by", sa.String(255)),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

# A move in flight under a budget (state "moving"), or a run waiting its turn ("waiting": one
# row per run, its id is its place in line).
slots = sa.Table(
    "slots", metadata,
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
