"""Reading the whole event log back, and spotting its statements, for tests/events/."""

from __future__ import annotations

from sqlalchemy import select

from runql.db.engine import Database, StatementRecorder
from runql.db.enums import EventKind
from runql.db.events import EventPosition
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
