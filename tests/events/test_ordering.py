"""No event lost or doubled whatever the commit order.

On PostgreSQL event ids come from a sequence, so a transaction holding a smaller id can
commit after one holding a larger id. Readers stay below the oldest transaction still in
flight and read in ``(txid, id)`` order: these tests commit transactions in the reverse
order of their ids and check that a polling reader gets every event exactly once. SQLite
serialises writers, so there the same tests check the plain id order.

The PostgreSQL server may be shared (other databases' writers count too: transaction ids
are cluster-wide), so a committed event may take a moment to become final; the tests
poll for the events they expect instead of assuming an immediate read returns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.engine import Database
from runql.db.enums import EventKind
from runql.db.events import START, EventBatch, EventPosition, read_events
from runql.db.types import utcnow
from tests.events.helpers import ADMIN, positions, read_until
from tests.factories import Factory

ROUNDS = 20


async def _append(session: AsyncSession, run_id: int, count: int = 1) -> None:
    batch = EventBatch()
    batch.runs(EventKind.RUN_STATUS_CHANGED, [run_id] * count)
    await batch.flush(session, utcnow())


async def _read(db: Database, after: EventPosition, limit: int = 100) -> list[EventPosition]:
    async with db.read() as session:
        return [e.position for e in await read_events(session, ADMIN, after=after, limit=limit)]


async def _one_run(factory: Factory) -> int:
    alice, project = await factory.user_in_project()
    return await factory.run(project, alice)


def _postgresql_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite writers are serial: no two transactions are in flight at once")


async def test_a_late_commit_of_a_smaller_id_is_read_late_not_skipped(
    db: Database, factory: Factory
) -> None:
    _postgresql_only(db)
    run = await _one_run(factory)
    [submitted] = await read_until(db, START, 1)

    async with db.write() as a:
        await _append(a, run)  # A: the older transaction, the smaller id
        async with db.write() as b:
            await _append(b, run)  # B: a newer transaction, a larger id; commits first
        # B is committed, A is in flight: B's event sorts after A's, so nothing is final.
        assert await _read(db, submitted) == []
    # A committed: both, once each, A's first.
    first, second = await read_until(db, submitted, 2)
    assert first.txid < second.txid and first.id < second.id
    assert await _read(db, second) == []
    assert await positions(db) == [submitted, first, second]


async def test_a_smaller_id_of_a_newer_transaction_comes_after_an_older_one(
    db: Database, factory: Factory
) -> None:
    """B's transaction started first (older txid) but A took the smaller event id: B's
    event is delivered first, A's after it although its id is smaller, neither twice."""
    _postgresql_only(db)
    run = await _one_run(factory)
    [submitted] = await read_until(db, START, 1)

    async with db.write() as a:
        async with db.write() as b:
            await b.execute(text("SELECT pg_current_xact_id()"))  # B's txid first
            await _append(a, run)  # then A's txid, and the smaller event id
            await _append(b, run)
        [b_event] = await read_until(db, submitted, 1)  # B is older than A, in flight
        assert await _read(db, b_event) == []
    [a_event] = await read_until(db, b_event, 1)
    assert a_event.id < b_event.id and a_event.txid > b_event.txid
    assert await positions(db) == [submitted, b_event, a_event]


@pytest.mark.slow
async def test_a_polling_reader_gets_every_event_once_under_concurrent_writers(
    db: Database, factory: Factory
) -> None:
    """Writers take ids and commit in random order while a reader polls with small pages;
    over the rounds the reader's sequence must equal the final log: no gap, no double."""
    run = await _one_run(factory)
    rng = random.Random(14)
    writers, transactions = 4, 5

    async def writer() -> None:
        for _ in range(transactions):
            async with db.write() as session:
                await asyncio.sleep(rng.random() * 0.004)
                await _append(session, run, rng.randint(1, 3))
                await asyncio.sleep(rng.random() * 0.008)

    for _ in range(ROUNDS):
        seen = await read_until(db, START, len(await positions(db)), limit=10_000)
        cursor = seen[-1]
        tasks = [asyncio.create_task(writer()) for _ in range(writers)]
        while not all(task.done() for task in tasks):
            page = await _read(db, cursor, limit=rng.randint(1, 4))
            seen += page
            cursor = page[-1] if page else cursor
            await asyncio.sleep(rng.random() * 0.003)
        await asyncio.gather(*tasks)
        seen += await read_until(db, cursor, len(await positions(db)) - len(seen), limit=4)
        assert len(seen) == len(set(seen)), "an event was read twice"
        assert seen == await positions(db), "the reader's sequence differs from the log"


async def test_writers_commit_in_every_order_of_their_ids(db: Database, factory: Factory) -> None:
    """Deterministic interleavings: three transactions take ids 1, 2, 3 (in some order of
    their txids) and commit in every order; a reader polling between commits never
    skips or repeats one."""
    _postgresql_only(db)
    run = await _one_run(factory)
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    for commit_order in orders:
        for xid_order in orders:
            seen = await read_until(db, START, len(await positions(db)), limit=10_000)
            cursor = seen[-1]
            async with contextlib.AsyncExitStack() as stack:
                sessions = [await stack.enter_async_context(db.write()) for _ in range(3)]
                for i in xid_order:  # who gets a transaction id first
                    await sessions[i].execute(text("SELECT pg_current_xact_id()"))
                for session in sessions:  # ids in session order
                    await _append(session, run)
                for i in commit_order:
                    await sessions[i].commit()
                    page = await _read(db, cursor)
                    seen += page
                    cursor = page[-1] if page else cursor
            seen += await read_until(db, cursor, len(await positions(db)) - len(seen))
            assert seen == await positions(db), (commit_order, xid_order)
