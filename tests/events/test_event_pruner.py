"""The event pruner as a background task: it outlives database errors like every periodic
task (``runql.tasks.periodic``): each outage logged once with its cause, retried with backoff,
its end logged; a bug stops it (``tests/test_periodic.py``).

What one prune does to the log and its watermark is guarded in ``test_retention.py``.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import update

from runql.db.engine import Database
from runql.db.events import oldest_retained
from runql.db.models import Event
from runql.db.types import utcnow
from runql.tasks.event_pruner import EventPruner
from tests.background import (
    assert_one_outage_logged,
    impatient_database,
    lock_failure,
    run_through_an_outage,
)
from tests.events.helpers import positions, settled
from tests.factories import Factory

LOGGER = "runql.tasks.event_pruner"


async def test_a_database_error_is_logged_once_and_the_pruner_carries_on(
    db: Database,
    factory: Factory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prune fails for as long as another connection holds what it needs: on
    PostgreSQL the events it would delete (its DELETE waits past the statement timeout),
    on SQLite the write lock (``database is locked``). The task keeps running, says so
    once, and prunes once the lock is gone."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    alice, project = await factory.user_in_project()
    await factory.run(project, alice)
    async with db.write() as session:  # the submission's events are two days old
        await session.execute(update(Event).values(at=utcnow() - dt.timedelta(days=2)))
    await settled(db)
    old = await positions(db)
    assert old

    async def pruned() -> bool:
        return await positions(db) == []

    async with impatient_database(db, monkeypatch) as pruner_db:
        pruner = EventPruner(pruner_db, interval_seconds=0.02, retention=dt.timedelta(days=1))
        # PostgreSQL: the events the prune would delete (its DELETE waits for them).
        events = "SELECT id FROM events FOR UPDATE"
        await run_through_an_outage(pruner, caplog, db=db, postgres_lock=events, done=pruned)

    assert_one_outage_logged(caplog, LOGGER, lock_failure(db))
    async with db.read() as session:
        assert await oldest_retained(session) == old[-1]
