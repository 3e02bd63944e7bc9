"""The statements a journaled change writes (its intent, then its outcome), built once: SQLAlchemy
then finds their compiled SQL in its cache, and a change costs two statements' execution, not
the construction of two expression trees (issue 22: bench/journal_cost.py). The fence (the run's
holder is this process's token) is part of the very statement that writes."""

from __future__ import annotations

import sqlalchemy as sa

from novamove.engine.journal.schema import events as events_t, runs as runs_t

EVENT_COLUMNS = ("run_id", "at", "kind", "target", "state", "data")
_FENCE = sa.and_(runs_t.c.id == sa.bindparam("fence_run"), runs_t.c.holder == sa.bindparam("fence_holder"))
INSERT_EVENT = events_t.insert().values({c: sa.bindparam(c) for c in EVENT_COLUMNS})
INSERT_EVENT_FENCED = events_t.insert().from_select(
    list(EVENT_COLUMNS),
    sa.select(*[sa.cast(sa.bindparam(c, type_=events_t.c[c].type), events_t.c[c].type) for c in EVENT_COLUMNS])
    .where(_FENCE))
INSERT_EVENT_FENCED_RETURNING = INSERT_EVENT_FENCED.returning(events_t.c.id)   # psycopg counts no rows
READ_EVENT = sa.select(events_t).where(events_t.c.id == sa.bindparam("event_id"))
MARK_EVENT = events_t.update().where(events_t.c.id == sa.bindparam("event_id")).values(
    state=sa.bindparam("new_state"), data=sa.bindparam("new_data"), ended_at=sa.bindparam("new_ended_at"))
MARK_EVENT_FENCED = MARK_EVENT.where(sa.exists().where(_FENCE))
# After a lost connection an insert is tried again, but its first try may have been committed
# (the connection was lost after the COMMIT went out): it is looked for first, so an intent is
# not written twice. Newer than any event this journal wrote before, and the same in every
# column (`at` included, taken once): nothing else can match.
FIND_EVENT = sa.select(events_t.c.id).where(
    events_t.c.id > sa.bindparam("after"), events_t.c.run_id == sa.bindparam("run_id"),
    events_t.c.at == sa.bindparam("at"), events_t.c.kind == sa.bindparam("kind"),
    events_t.c.target.is_not_distinct_from(sa.bindparam("target", type_=events_t.c.target.type)),
    events_t.c.state == sa.bindparam("state"), events_t.c.data == sa.bindparam("data")).order_by(events_t.c.id)
