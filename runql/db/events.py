"""The event log: one row per change of a run or job, written in the transaction that
made the change, read in an order that never skips or repeats an event.

Appending. Every home of a change (``runql.db.lifecycle``, ``runql.db.claims``,
``runql.db.completions``, ``runql.db.job_effects``, ``runql.db.lease_expiry``) collects
what it changed in an :class:`EventBatch` and flushes it once, before its transaction
commits: one INSERT ... SELECT over bound lists (one parameter per column, as in
``runql.db.key_lists``), which finds each event's run and project by joining ``jobs`` and
``runs``. Set-based statements whose rows are not known in Python learn them with
``RETURNING``. So a transaction costs one statement more whatever it changed, and none
when it changed nothing.

Positions. An event's position is ``(txid, id)``. On SQLite ``txid`` is 0: writers hold
the database write lock for their whole transaction, so ids are handed out in commit
order. On PostgreSQL ids come from a sequence and become visible in commit order, not id
order: B (id 11) may commit while A (id 10) is still in flight, and a reader that took 11
and moved on would never see 10. So each row also carries its writer's transaction id
(``xid8``, ``pg_current_xact_id()``) and readers only return rows of transactions older
than the oldest one still in flight (``txid < pg_snapshot_xmin(pg_current_snapshot())``),
in ``(txid, id)`` order. Every transaction below that bound has ended, and no new one can
get an id below it, so the rows a reader returns can never be joined later by a row
sorting before them: a late commit is read late, never skipped, never twice. The price is
latency: an event waits until every writing transaction that started before its own has
ended (any database of the cluster; see docs/events.md).

Wake-ups. A flush marks its session with the newest id it appended; after the commit,
``Database.write()`` wakes this process's listener at once and has the other processes
woken with ``NOTIFY`` (``runql.db.wakeups``: sent after the commit, not in it, so the
write path never waits on the notification queue's lock). The log is the truth; a
wake-up only says "read it now". With ``RUNQL_LIVE_UPDATES=off`` the write sessions
carry ``wakeups.LOG_OFF`` and a flush writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import wakeups
from runql.db.dialect import dialect_of, is_sqlite
from runql.db.enums import EventKind
from runql.db.key_lists import JSONList, in_list
from runql.db.models import XID8, Event, EventsPruned
from runql.db.types import UTCDateTime
from runql.db.visibility import Viewer, visible_projects

#: Larger than any event id: ``(txid, MAX_ID)`` sorts after every event of ``txid``.
MAX_ID = 2**63 - 1


@dataclass(frozen=True, order=True, slots=True)
class EventPosition:
    """Where an event sits in the log; events are delivered in this order."""

    txid: int
    id: int


#: Before every event.
START = EventPosition(0, 0)


@dataclass(frozen=True, slots=True)
class EventRow:
    position: EventPosition
    kind: EventKind
    at: dt.datetime
    project_id: int
    run_id: int
    job_id: int | None


# --- appending -------------------------------------------------------------------------

# One statement per backend, its text fixed whatever the batch (prepared once per
# connection). Entries keep the order they were added in (``WITH ORDINALITY`` /
# ``json_each``'s key), so a transaction's events read back in the order of its changes.
# Runs and jobs are looked up with correlated scalar subqueries (PostgreSQL) or a forced
# join order (SQLite): one primary-key probe per event, whatever the planner thinks of
# the list's size (a hash join would scan every run per transaction).
_FLUSH_POSTGRESQL = text(
    """
WITH batch AS (
    SELECT * FROM unnest(
        CAST(:kinds AS varchar[]), CAST(:run_ids AS integer[]), CAST(:job_ids AS integer[])
    ) WITH ORDINALITY AS b(kind, run_id, job_id, ord)
), added AS (
    INSERT INTO events (txid, kind, at, project_id, run_id, job_id)
    SELECT pg_current_xact_id(), e.kind, CAST(:at AS timestamptz),
        (SELECT r.project_id FROM runs AS r WHERE r.id = e.run_id), e.run_id, e.job_id
    FROM (
        SELECT b.kind, b.job_id, b.ord,
            coalesce(b.run_id, (SELECT j.run_id FROM jobs AS j WHERE j.id = b.job_id)) AS run_id
        FROM batch AS b
    ) AS e
    ORDER BY e.ord
    RETURNING id
)
SELECT max(id) FROM added
"""
).bindparams(bindparam("at", type_=UTCDateTime))

# ``CROSS JOIN`` keeps SQLite's join order (entries, then one probe of jobs and of runs
# each); left to itself, without statistics, it may scan ``runs``.
_FLUSH_SQLITE = text(
    """
INSERT INTO events (txid, kind, at, project_id, run_id, job_id)
SELECT 0, json_extract(b.value, '$[0]'), :at, r.project_id, r.id, json_extract(b.value, '$[2]')
FROM json_each(:entries) AS b
LEFT JOIN jobs AS j ON j.id = json_extract(b.value, '$[2]')
CROSS JOIN runs AS r
WHERE r.id = coalesce(json_extract(b.value, '$[1]'), j.run_id)
ORDER BY b.key
"""
).bindparams(bindparam("at", type_=UTCDateTime), bindparam("entries", type_=JSONList()))


@dataclass(slots=True)
class EventBatch:
    """Collects a transaction's events; :meth:`flush` writes them all with one statement.

    Create one per write transaction in the home of the change, add events as the ids
    become known, flush once before the transaction commits.
    """

    kinds: list[str] = field(default_factory=list)
    run_ids: list[int | None] = field(default_factory=list)
    job_ids: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kinds)

    def runs(self, kind: EventKind, run_ids: Iterable[int]) -> None:
        """An event of ``kind`` for each of ``run_ids``, in that order."""
        for run_id in run_ids:
            self.kinds.append(kind.value)
            self.run_ids.append(run_id)
            self.job_ids.append(None)

    def jobs(self, kind: EventKind, job_ids: Iterable[int]) -> None:
        """An event of ``kind`` for each of ``job_ids`` (their runs found at flush)."""
        for job_id in job_ids:
            self.kinds.append(kind.value)
            self.run_ids.append(None)
            self.job_ids.append(job_id)

    async def flush(self, session: AsyncSession, at: dt.datetime) -> None:
        """Append every collected event (time ``at``) in one statement; nothing when
        empty or when the event log is off. The batch is empty again afterwards."""
        if not self.kinds or session.info.get(wakeups.LOG_OFF):
            self.kinds, self.run_ids, self.job_ids = [], [], []
            return
        if is_sqlite(session):
            entries = [list(e) for e in zip(self.kinds, self.run_ids, self.job_ids, strict=True)]
            await session.execute(_FLUSH_SQLITE, {"entries": entries, "at": at})
            newest = 0  # nobody to NOTIFY on SQLite; the local listener reads anyway
        else:
            params = {
                "kinds": self.kinds,
                "run_ids": self.run_ids,
                "job_ids": self.job_ids,
                "at": at,
            }
            newest = int((await session.execute(_FLUSH_POSTGRESQL, params)).scalar() or 0)
        session.info[wakeups.APPENDED] = max(session.info.get(wakeups.APPENDED, 0), newest)
        self.kinds, self.run_ids, self.job_ids = [], [], []


# --- reading ---------------------------------------------------------------------------


def _txid_param(session: AsyncSession, name: str, value: int) -> Any:
    if is_sqlite(session):
        return bindparam(name, value, type_=BigInteger())
    return bindparam(name, value, type_=XID8())


def _final_rows(session: AsyncSession) -> Any:
    """Rows no later commit can sort before (all of them on SQLite)."""
    if is_sqlite(session):
        return literal(True)
    return Event.txid < func.pg_snapshot_xmin(func.pg_current_snapshot())


async def read_events(
    session: AsyncSession,
    viewer: Viewer,
    *,
    after: EventPosition,
    project_ids: Sequence[int] | None = None,
    run_ids: Sequence[int] | None = None,
    limit: int,
) -> list[EventRow]:
    """Up to ``limit`` events after ``after``, oldest first, of projects ``viewer`` may
    see now (membership is checked in the statement: a user removed from a project stops
    getting its events), optionally only of ``project_ids`` / ``run_ids``.

    One statement, so one snapshot: on PostgreSQL the in-flight bound and the rows agree.
    Pass the last returned position as the next ``after``.
    """
    dialect = dialect_of(session)
    after_key = tuple_(
        _txid_param(session, "after_txid", after.txid),
        bindparam("after_id", after.id, type_=BigInteger()),
    )
    stmt = (
        select(
            Event.txid,
            Event.id,
            Event.kind,
            Event.at,
            Event.project_id,
            Event.run_id,
            Event.job_id,
        )
        .where(
            tuple_(Event.txid, Event.id) > after_key,
            _final_rows(session),
            visible_projects(viewer, Event.project_id),
        )
        .order_by(Event.txid, Event.id)
        .limit(limit)
    )
    if project_ids is not None:
        stmt = stmt.where(in_list(Event.project_id, dialect, values=project_ids))
    if run_ids is not None:
        stmt = stmt.where(in_list(Event.run_id, dialect, values=run_ids))
    rows = await session.execute(stmt)
    return [
        EventRow(
            position=EventPosition(int(row.txid), row.id),
            kind=EventKind(row.kind),
            at=row.at,
            project_id=row.project_id,
            run_id=row.run_id,
            job_id=row.job_id,
        )
        for row in rows
    ]


async def safe_position(session: AsyncSession) -> EventPosition:
    """A position below which the log is final now: reading after it later returns every
    event of every transaction that had not ended when it was taken.

    PostgreSQL: ``(xmin - 1, MAX_ID)``, just before the oldest transaction in flight.
    Transactions that committed while an older one was still in flight are above it
    too, so their events may come again after a page that already shows their effect
    (at least once at the boundary, never lost). With no writer in flight it is exact.
    SQLite: ``(0, newest id)``, exact (writes are serial).

    Take it before reading a page (list-then-watch): the page's ``eventCursor``.
    """
    if is_sqlite(session):
        newest = await session.scalar(select(func.coalesce(func.max(Event.id), 0)))
        return EventPosition(0, int(newest or 0))
    xmin = await session.scalar(select(func.pg_snapshot_xmin(func.pg_current_snapshot())))
    assert xmin is not None
    return EventPosition(int(xmin) - 1, MAX_ID)


# --- retention -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogBounds:
    """Where the log a cursor may resume from begins and ends (:func:`log_bounds`)."""

    #: The prune watermark (``None``: nothing pruned yet); see :func:`oldest_retained`.
    oldest_retained: EventPosition | None
    #: No event of this log was ever read past it (its :func:`safe_position`, or the
    #: watermark when pruning emptied the log): a cursor after it comes from elsewhere.
    newest: EventPosition


async def log_bounds(session: AsyncSession) -> LogBounds:
    """The prune watermark and the end of the log, with one statement: what a cursor is
    checked against before a subscription resumes from it."""
    if is_sqlite(session):
        end = select(func.coalesce(func.max(Event.id), 0)).scalar_subquery()
    else:
        end = select(func.pg_snapshot_xmin(func.pg_current_snapshot())).scalar_subquery()
    pruned_txid = select(EventsPruned.txid).where(EventsPruned.id == 1).scalar_subquery()
    pruned_id = select(EventsPruned.event_id).where(EventsPruned.id == 1).scalar_subquery()
    row = (
        await session.execute(
            select(end.label("end"), pruned_txid.label("txid"), pruned_id.label("event_id"))
        )
    ).one()
    oldest = None if row.txid is None else EventPosition(int(row.txid), int(row.event_id))
    if is_sqlite(session):
        newest = EventPosition(0, int(row.end or 0))
    else:
        newest = EventPosition(int(row.end) - 1, MAX_ID)
    return LogBounds(oldest, max(newest, oldest) if oldest is not None else newest)


async def oldest_retained(session: AsyncSession) -> EventPosition | None:
    """The prune watermark: the position of the newest event pruned so far (``None``
    when nothing was ever pruned). Every event after it is still in the log; a cursor
    strictly below it (``after < oldest_retained(...)``) has lost events: expired."""
    row = (await session.execute(select(EventsPruned.txid, EventsPruned.event_id))).first()
    return None if row is None else EventPosition(int(row.txid), int(row.event_id))


async def prune_events(session: AsyncSession, *, older_than: dt.datetime) -> int:
    """Delete the oldest events, up to the first one (in position order) written at or
    after ``older_than`` or not final yet; record the newest deleted position as the
    watermark. Returns how many were deleted. Call it in a write transaction.

    Pruning a prefix of the log (not every old row) keeps the watermark exact: every
    event after it is retained. An event slightly older than ``older_than`` behind a
    newer one stays until the next prune.
    """
    position = tuple_(Event.txid, Event.id)
    keep_from = (
        select(Event.txid, Event.id)
        .where((Event.at >= older_than) | ~_final_rows(session))
        .order_by(Event.txid, Event.id)
        .limit(1)
    )
    first_kept = (await session.execute(keep_from)).first()
    newest = select(Event.txid, Event.id).order_by(Event.txid.desc(), Event.id.desc()).limit(1)
    if first_kept is not None:
        bound = tuple_(
            _txid_param(session, "kept_txid", int(first_kept.txid)),
            bindparam("kept_id", first_kept.id, type_=BigInteger()),
        )
        newest = newest.where(position < bound)
    last = (await session.execute(newest)).first()
    if last is None:
        return 0
    watermark = EventPosition(int(last.txid), int(last.id))
    upto = tuple_(
        _txid_param(session, "w_txid", watermark.txid),
        bindparam("w_id", watermark.id, type_=BigInteger()),
    )
    deleted = await session.execute(delete(Event).where(position <= upto))
    values = {"id": 1, "txid": watermark.txid, "event_id": watermark.id}
    insert = sqlite_insert if is_sqlite(session) else pg_insert
    stmt = insert(EventsPruned).values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[EventsPruned.id],
            set_={"txid": stmt.excluded.txid, "event_id": stmt.excluded.event_id},
        )
    )
    return int(getattr(deleted, "rowcount", 0) or 0)
