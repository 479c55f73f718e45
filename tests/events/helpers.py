"""Reading the whole event log back, and spotting its statements, for tests/events/."""

from __future__ import annotations

from sqlalchemy import select

from runql.db.engine import Database, StatementRecorder
from runql.db.enums import EventKind
from runql.db.events import START, EventPosition, read_events
from runql.db.models import Event
from runql.db.visibility import Viewer
from tests.waiting import until

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

    async def all_readable() -> bool:
        everything = await positions(db)
        async with db.read() as session:
            readable = await read_events(session, ADMIN, after=START, limit=len(everything) + 1)
        return len(readable) == len(everything)

    await until(all_readable, "every committed event to become readable")


async def read_until(
    db: Database, after: EventPosition, count: int, *, limit: int = 100
) -> list[EventPosition]:
    """Read on from ``after``, ``limit`` events a page, until ``count`` events came (a
    commit may take a moment to become final: see ``settled``); their positions."""
    seen: list[EventPosition] = []

    async def enough() -> bool:
        async with db.read() as session:
            page = await read_events(session, ADMIN, after=seen[-1] if seen else after, limit=limit)
        seen.extend(e.position for e in page)
        return len(seen) >= count

    await until(enough, f"{count} readable events after {after}")
    return seen
