"""Names a run holds in the journal (a host a drain works on), taken by compare-and-swap.

The cloud's tags stay the source of truth for who holds a host (operators without this journal
do not see it); a claim adds what the tags cannot: two novamove runs on different machines that
share the journal are told apart before either writes a tag. A claim of a run that is over (or
dead: leases.run_alive) is taken over with `UPDATE ... WHERE version = v`, so of two runs racing
for it exactly one wins, without a row lock (docs/journal.md "Why no row locks").
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import sqlalchemy as sa

from novamove import errors
from novamove.engine import events
from novamove.engine.journal.leases import run_alive
from novamove.engine.journal.schema import claims
from novamove.engine.journal.store import Duplicate, autocommit


def claim(journal: Any, name: str, run_id: str, own: Iterable[str] = ()) -> Optional[dict]:
    """Take `name` for `run_id`. None when taken; else the live run that holds it (untouched).
    `own`: runs whose claims count as this run's (the runs it continues)."""
    mine = {run_id, *own}
    for _ in range(8):
        rows = journal._read(sa.select(claims).where(claims.c.name == name))
        if not rows:
            try:
                _insert(journal, name, run_id)
                return None
            except Duplicate:                 # another run inserted it first: look again
                continue
        row = rows[0]
        if row["run_id"] not in mine:
            other = journal.get_run(row["run_id"])
            if other is not None and other["status"] == events.RUN_RUNNING and run_alive(other):
                return other
        w = journal._write(claims.update().where(claims.c.name == name, claims.c.version == row["version"])
                           .values(run_id=run_id, holder=journal.holder, version=row["version"] + 1), ())
        if w.rowcount == 1:
            return None
    raise errors.PreconditionFailed(f"could not claim {name} in the journal: other runs keep taking it")


def _insert(journal: Any, name: str, run_id: str) -> None:
    """A new claim of `name` for `run_id`, once: tried again after a lost connection, the first
    try may have been committed (the answer was lost, not the COMMIT), so the retry looks for
    this run's row from this process first and takes it for its own. A row of another run (or
    of this run from another process) is not ours: Duplicate, and the caller looks again."""
    tries = []

    @autocommit
    def insert(c: Any) -> None:
        tries.append(1)
        if len(tries) > 1 and c.execute(sa.select(claims.c.name).where(
                claims.c.name == name, claims.c.run_id == run_id, claims.c.holder == journal.holder)).first():
            return
        c.execute(claims.insert().values(name=name, run_id=run_id, holder=journal.holder, version=0))
    journal._write(insert, ())


def release(journal: Any, name: str, run_id: str) -> None:
    """Let `name` go, if `run_id` still holds it."""
    journal._write(claims.delete().where(claims.c.name == name, claims.c.run_id == run_id), ())


def holder(journal: Any, name: str) -> Optional[str]:
    rows = journal._read(sa.select(claims.c.run_id).where(claims.c.name == name))
    return rows[0]["run_id"] if rows else None
