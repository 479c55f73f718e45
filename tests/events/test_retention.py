"""The cursor of a listed page (``safe_position``), pruning and its watermark."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from runql.db.engine import Database
from runql.db.enums import EventKind
from runql.db.events import (
    START,
    EventBatch,
    EventPosition,
    oldest_retained,
    prune_events,
    read_events,
    safe_position,
)
from runql.db.models import Event
from runql.db.types import utcnow
from tests.events.helpers import ADMIN, positions, read_until, settled
from tests.factories import Factory


async def _run(factory: Factory) -> tuple[int, Factory]:
    alice, project = await factory.user_in_project()
    return await factory.run(project, alice), factory


async def _safe(db: Database) -> EventPosition:
    async with db.read() as session:
        return await safe_position(session)


async def _append(db: Database, run: int, at: dt.datetime | None = None) -> None:
    async with db.write() as session:
        batch = EventBatch()
        batch.runs(EventKind.RUN_STATUS_CHANGED, [run])
        await batch.flush(session, at or utcnow())


async def test_safe_position_is_after_every_finished_change(db: Database, factory: Factory) -> None:
    run, _ = await _run(factory)
    await settled(db)  # no transaction older than the submission is still in flight
    cursor = await _safe(db)
    assert cursor >= (await positions(db))[-1]
    async with db.read() as session:
        assert await read_events(session, ADMIN, after=cursor, limit=10) == []
    await _append(db, run)
    [new] = await read_until(db, cursor, 1)
    assert new == (await positions(db))[-1]


async def test_safe_position_keeps_the_changes_still_in_flight(
    db: Database, factory: Factory
) -> None:
    """PostgreSQL: taken while a writer is in flight, the cursor still gets that writer's
    events once it commits (SQLite has no writer in flight beside a reader's snapshot)."""
    if db.is_sqlite:
        pytest.skip("SQLite writers are serial: no writer is in flight beside a reader")
    run, _ = await _run(factory)
    # Else a transaction older than the submission (another database's) may still be in
    # flight, and the submission come again after the cursor (at least once, by design).
    await settled(db)
    async with db.write() as writer:
        batch = EventBatch()
        batch.runs(EventKind.RUN_STATUS_CHANGED, [run])
        await batch.flush(writer, utcnow())
        cursor = await _safe(db)
    [late] = await read_until(db, cursor, 1)
    assert late == (await positions(db))[-1]


async def test_pruning_deletes_old_events_and_records_the_watermark(
    db: Database, factory: Factory
) -> None:
    run, _ = await _run(factory)
    old = utcnow() - dt.timedelta(days=2)
    async with db.write() as session:  # the submission is two days old too
        await session.execute(update(Event).values(at=old))
    await _append(db, run, old)
    await _append(db, run)
    before = await positions(db)
    await read_until(db, START, 3)
    async with db.read() as session:
        assert await oldest_retained(session) is None

    async with db.write() as session:
        pruned = await prune_events(session, older_than=utcnow() - dt.timedelta(days=1))

    assert pruned == 2
    assert await positions(db) == before[2:]
    async with db.read() as session:
        watermark = await oldest_retained(session)
    assert watermark == before[1]
    # A cursor below the watermark lost events (expired); at or after it, none.
    assert watermark > START and before[0] < watermark and not before[1] < watermark
    assert await read_until(db, watermark, 1) == before[2:]


async def test_the_watermark_outlives_an_empty_log_and_ids_are_not_reused(
    db: Database, factory: Factory
) -> None:
    run, _ = await _run(factory)
    await _append(db, run)
    everything = await read_until(db, START, 2)
    async with db.write() as session:
        assert await prune_events(session, older_than=utcnow() + dt.timedelta(seconds=1)) == 2
        assert await prune_events(session, older_than=utcnow() + dt.timedelta(seconds=1)) == 0
    assert await positions(db) == []
    async with db.read() as session:
        assert await oldest_retained(session) == everything[-1]

    await _append(db, run)
    [new] = await positions(db)
    assert new > everything[-1]  # SQLite: AUTOINCREMENT, the pruned ids stay used
    assert await read_until(db, everything[-1], 1) == [new]


async def test_pruning_stops_before_events_not_final_yet(db: Database, factory: Factory) -> None:
    """PostgreSQL: an old event of a newer transaction that committed while an older one
    is still in flight is kept, so that older one's events still land after the
    watermark when it commits."""
    run, _ = await _run(factory)
    old = utcnow() - dt.timedelta(days=2)
    async with db.write() as session:
        await session.execute(update(Event).values(at=old))
    await read_until(db, START, 1)
    if db.is_sqlite:
        pytest.skip("SQLite writers are serial: no transaction is in flight beside another")
    async with db.write() as slow:
        await _append_in(slow, run, old)  # older transaction, in flight
        await _append(db, run, old)  # newer, committed, not final while `slow` runs
        async with db.write() as session:
            assert await prune_events(session, older_than=utcnow()) == 1  # the submission
    async with db.read() as session:
        watermark = await oldest_retained(session)
        kept = list(await session.scalars(select(Event.id).order_by(Event.txid, Event.id)))
    assert watermark is not None and len(kept) == 2
    assert len(await read_until(db, watermark, 2)) == 2


async def _append_in(session: object, run: int, at: dt.datetime) -> None:
    batch = EventBatch()
    batch.runs(EventKind.RUN_STATUS_CHANGED, [run])
    await batch.flush(session, at)  # type: ignore[arg-type]
