"""Reading the whole event log back, and spotting its statements, for tests/events/."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from runql.db.engine import Database, StatementRecorder
from runql.db.enums import EventKind
from runql.db.events import START, EventPosition, read_events
from runql.db.models import Event
from runql.db.visibility import Viewer

#: Sees every project (no user row needed: admins skip the membership subquery).
ADMIN = Viewer(user_id=0, name="root", is_admin=True)

Entry = tuple[EventKind, int, int | None]


async def log(db: Database) -> list[Entry]:
    """Every event, in position order, as ``(kind, run_id, job_id)``."""
    async with db.read() as session:
        rows = await session.execute(
            select(Event.kind, Event.run_id, Event.job_id).order_by(Event.txid, Event.id)
        )
        return [(EventKind(kind), run_id, job_id) for kind, run_id, job_id in rows]


async def positions(db: Database) -> list[EventPosition]:
    """Every event's position, in position order."""
    async with db.read() as session:
        rows = await session.execute(select(Event.txid, Event.id).order_by(Event.txid, Event.id))
        return [EventPosition(int(txid), event_id) for txid, event_id in rows]


def event_writes(recorder: StatementRecorder) -> list[str]:
    """The statements that appended events."""
    return [s for s in recorder.statements if "INSERT INTO events" in s]


async def settled(db: Database) -> None:
    """Wait until every committed event is final (readable). On a PostgreSQL server that
    other databases share, their writers hold back the oldest in-flight transaction too,
    so a commit may take a moment to become readable; negative checks wait for this."""
    for _ in range(1000):
        everything = await positions(db)
        async with db.read() as session:
            readable = await read_events(session, ADMIN, after=START, limit=len(everything) + 1)
        if len(readable) == len(everything):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("committed events did not become readable within 10 s")
