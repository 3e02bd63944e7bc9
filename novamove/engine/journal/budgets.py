"""Cloud-wide move budgets: "at most N moves in flight, at most M per destination host", shared
by every run on the same journal and cloud (docs/journal.md "Budgets").

A run takes a slot before it starts a move and gives it back when the move ends or the run
does. Taking is a compare-and-swap on the budget row's `version` in the same transaction as
the slot's insert: of two runs counting the same free slot, exactly one commits (no row lock,
as claims.py). Only moves that runs on this journal claimed are counted: other people's
migrations are Nova's business. Slots of dead runs (leases.run_alive) are taken back.

Fairness is first come, first served: a run that cannot start its next move gets a "waiting"
row; its id is its place in line, and a run behind it starts nothing while it waits, so no run
starves (a waiter held only by its destination's cap holds the line until that host frees up).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import sqlalchemy as sa

from novamove import errors
from novamove.engine import events
from novamove.engine.journal.leases import run_alive, user_name, machine_name
from novamove.engine.journal.schema import budgets, runs, slots
from novamove.engine.journal.store import Duplicate, autocommit

MOVING, WAITING = "moving", "waiting"


@dataclass(frozen=True)
class Budget:
    cloud: str
    max_in_flight: Optional[int]
    max_per_host: Optional[int]
    version: int = 0
    set_at: Optional[str] = None
    set_by: Optional[str] = None

    @property
    def limits(self) -> bool:
        return bool(self.max_in_flight or self.max_per_host)


def cloud_key(cloud: Optional[str]) -> str:
    """The cloud as runs record it (clouds.yaml name); "" for a cloud without a name."""
    return cloud or ""


def validate(max_in_flight: Optional[int], max_per_host: Optional[int]) -> None:
    for name, value in (("--max-in-flight", max_in_flight), ("--max-per-host", max_per_host)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise errors.UsageError(f"budget: {name} must be a whole number of at least 1, not {value!r}")
    if max_in_flight is None and max_per_host is None:
        raise errors.UsageError("budget set: give --max-in-flight N and/or --max-per-host M")


def get(journal: Any, cloud: Optional[str]) -> Optional[Budget]:
    rows = journal._read(sa.select(budgets).where(budgets.c.cloud == cloud_key(cloud)))
    if not rows:
        return None
    r = rows[0]
    return Budget(r["cloud"], r["max_in_flight"], r["max_per_host"], r["version"], r["set_at"], r["set_by"])


def set_budget(journal: Any, cloud: Optional[str], max_in_flight: Optional[int],
               max_per_host: Optional[int]) -> Budget:
    """Set (replace) the cloud's budget. Slots in flight stay; new moves obey the new limits."""
    validate(max_in_flight, max_per_host)
    key = cloud_key(cloud)
    stamp = dict(max_in_flight=max_in_flight, max_per_host=max_per_host,
                 set_at=_now(), set_by=f"{user_name()}@{machine_name()}")
    for _ in range(8):
        old = get(journal, key)
        if old is None:
            try:
                journal._write(budgets.insert().values(cloud=key, version=0, **stamp))
                break
            except Duplicate:     # set by another at the same moment (or our own lost answer): look again
                continue
        w = journal._write(budgets.update().where(budgets.c.cloud == key, budgets.c.version == old.version)
                           .values(version=old.version + 1, **stamp))
        if w.rowcount == 1:
            break
    else:
        raise errors.PreconditionFailed(f"budget set: other processes kept changing the budget of {key or 'the cloud'}"
                                        "; try again")
    result = get(journal, key)
    assert result is not None
    return result


def clear(journal: Any, cloud: Optional[str]) -> bool:
    """Remove the cloud's budget (runs start moves as if none was ever set). True if one was set."""
    key = cloud_key(cloud)
    w = journal._write(budgets.delete().where(budgets.c.cloud == key))
    journal._write(slots.delete().where(slots.c.cloud == key))
    return w.rowcount > 0


def in_flight(journal: Any, cloud: Optional[str]) -> list[dict]:
    return journal._read(sa.select(slots).where(slots.c.cloud == cloud_key(cloud)).order_by(slots.c.id))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Lost(Exception):
    """A slot write found this process no longer holds the run (rolled back, then Fenced)."""


class Gate:
    """A runner's door to the budget: `refresh()` once per round of starts (one cheap read
    when no budget is set), `take()` before each move, `release()` when it ends,
    `release_all()` when the run ends."""

    def __init__(self, journal: Any, run_id: str, cloud: Optional[str],
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.journal, self.run_id, self.cloud = journal, run_id, cloud_key(cloud)
        self.progress = progress
        self.budget: Optional[Budget] = None
        self.said: Optional[str] = None
        self.used = False                  # whether this run ever wrote a slot row

    def refresh(self) -> Optional[Budget]:
        if getattr(self.journal, "store", None) is None:
            return None                    # no journal (tests of the loop alone)
        self.budget = get(self.journal, self.cloud)
        return self.budget

    def take(self, server_id: str, dest: str) -> bool:
        """Whether the move of `server_id` to `dest` may start now (its slot taken). False: the
        run waits its turn (said once in its progress line); it asks again next round."""
        if self.budget is None or not self.budget.limits:
            return True
        for _ in range(16):
            budget = get(self.journal, self.cloud)
            if budget is None or not budget.limits:
                self.budget = budget
                return True
            rows = self._live_rows()
            why = self._why_wait(budget, rows, dest)
            if why:
                self._wait(rows, server_id, dest)
                if why != self.said:
                    self.progress(f"waiting for budget: {why}")
                    self.said = why
                return False
            if self._commit_take(budget, server_id, dest):
                self.said = None
                return True
        return False                       # others kept winning: ask again next round

    def _why_wait(self, budget: Budget, rows: list[dict], dest: str) -> Optional[str]:
        moving = [r for r in rows if r["state"] == MOVING]
        if budget.max_in_flight and len(moving) >= budget.max_in_flight:
            return f"{len(moving)} of {budget.max_in_flight} in flight cloud-wide"
        to_dest = sum(1 for r in moving if r["dest"] == dest)
        if budget.max_per_host and to_dest >= budget.max_per_host:
            return f"{to_dest} of {budget.max_per_host} in flight to {dest}"
        mine = next((r["id"] for r in rows if r["state"] == WAITING and r["run_id"] == self.run_id), None)
        ahead = [r for r in rows if r["state"] == WAITING and r["run_id"] != self.run_id
                 and (mine is None or r["id"] < mine)]
        if ahead:
            return f"{len(ahead)} run(s) ahead in line"
        return None

    def _live_rows(self) -> list[dict]:
        """The cloud's slots, after taking back those of runs that are over or dead."""
        rows = in_flight(self.journal, self.cloud)
        gone: set[str] = set()
        for run_id in {r["run_id"] for r in rows} - {self.run_id}:
            run = self.journal.get_run(run_id)
            if run is None or run["status"] != events.RUN_RUNNING or not run_alive(run):
                gone.add(run_id)
        for run_id in gone:
            self.journal._write(slots.delete().where(slots.c.cloud == self.cloud, slots.c.run_id == run_id))
        return [r for r in rows if r["run_id"] not in gone]

    def _held(self) -> Any:
        """This process still holds the run (the fence of every slot write)."""
        return sa.exists().where(runs.c.id == self.run_id, runs.c.holder == self.journal.holder)

    def _wait(self, rows: list[dict], server_id: str, dest: str) -> None:
        if any(r["state"] == WAITING and r["run_id"] == self.run_id for r in rows):
            return
        try:
            self._insert(WAITING, server_id, dest)
        except _Lost:
            raise self.journal._fenced(self.run_id) from None

    def _insert(self, state: str, server_id: str, dest: str, conn: Any = None) -> int:
        cols = ["cloud", "run_id", "holder", "server_id", "dest", "state", "taken_at"]
        values = sa.select(*[sa.literal(v, type_=slots.c[c].type) for c, v in zip(cols, (
            self.cloud, self.run_id, self.journal.holder, server_id, dest, state, _now()))]
        ).select_from(runs).where(runs.c.id == self.run_id, runs.c.holder == self.journal.holder)
        stmt = slots.insert().from_select(cols, values)
        if self.journal.store.dialect == "postgresql":
            stmt = stmt.returning(slots.c.id)     # psycopg counts no rows of INSERT ... SELECT
        self.used = True
        tries = []

        @autocommit
        def insert(c: Any) -> int:
            tries.append(1)
            if len(tries) > 1 and self._own_row(c, state, server_id):
                return 1                          # the first try's commit went through
            r = c.execute(stmt)
            return len(r.fetchall()) if r.returns_rows else r.rowcount
        n = self.journal._write(insert, ()) if conn is None else insert(conn)
        if n != 1:
            raise _Lost()
        return n

    def _own_row(self, c: Any, state: str, server_id: str) -> bool:
        """Whether this process already wrote this run's `state` row (for `server_id` when
        moving): a try tried again after its answer was lost may find its first try committed.
        Only a row of this run written by this process (its holder token) counts, never
        another run's: one move in flight holds one slot, a run waits in one place in line."""
        q = sa.select(slots.c.id).where(slots.c.cloud == self.cloud, slots.c.run_id == self.run_id,
                                        slots.c.holder == self.journal.holder, slots.c.state == state)
        if state == MOVING:
            q = q.where(slots.c.server_id == server_id)
        return c.execute(q.limit(1)).first() is not None

    def _commit_take(self, budget: Budget, server_id: str, dest: str) -> bool:
        """CAS on the budget's version and the slot's insert, in one transaction."""
        tries = []

        def call() -> bool:
            tries.append(1)
            with self.journal.store.engine.begin() as c:
                if len(tries) > 1 and self._own_row(c, MOVING, server_id):
                    return True            # committed, then the answer lost: the slot is ours
                w = c.execute(budgets.update().where(budgets.c.cloud == self.cloud,
                                                     budgets.c.version == budget.version)
                              .values(version=budget.version + 1))
                if w.rowcount != 1:
                    return False           # another run took a slot since we counted: count again
                self._insert(MOVING, server_id, dest, conn=c)   # (its own retry is this one's)
                c.execute(slots.delete().where(slots.c.cloud == self.cloud, slots.c.run_id == self.run_id,
                                               slots.c.state == WAITING))
                return True
        try:
            return self.journal.store.run(call, "budget slot")
        except _Lost:
            raise self.journal._fenced(self.run_id) from None

    def release(self, server_id: str) -> None:
        """The move of `server_id` ended: its slot is free (only while this process holds the run)."""
        if not self.used:
            return
        self.journal._write(slots.delete().where(slots.c.run_id == self.run_id, slots.c.server_id == server_id,
                                                 slots.c.state == MOVING, self._held()))

    def release_all(self) -> None:
        """The run ends: its slots and its place in line go."""
        if not self.used:
            return
        self.journal._write(slots.delete().where(slots.c.run_id == self.run_id, self._held()))
        self.said = None
