"""Helpers for the tests of the periodic background tasks (``runql.tasks.periodic``: the lease
sweeper, the event pruner): make their database fail for real, wait for them, read their
log lines."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from runql.db import engine as engine_module
from runql.db.engine import Database
from runql.tasks.periodic import PeriodicTask
from tests.waiting import until

#: How long a task's own database waits for a lock before its step fails.
STATEMENT_TIMEOUT_MS = 200
SQLITE_BUSY_TIMEOUT_MS = 100


@contextlib.asynccontextmanager
async def impatient_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Database]:
    """A task's own connection to ``db``'s database, quick to give up waiting for a lock:
    a statement timeout on PostgreSQL, a short busy timeout on SQLite."""
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS)
    impatient = Database(db.url, statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    try:
        yield impatient
    finally:
        await impatient.dispose()


async def run_through_an_outage(
    task: PeriodicTask[Any],
    caplog: pytest.LogCaptureFixture,
    *,
    db: Database,
    postgres_lock: str,
    params: dict[str, Any] | None = None,
    done: Callable[[], Awaitable[bool]],
) -> None:
    """Start ``task`` while another connection is ``holding`` what its step needs, until
    it has logged three failed steps; let go, and wait until ``done()``. Fails if the task
    stopped on the way; stops it at the end. ``caplog`` must capture the task's DEBUG."""
    logger = task.log.name

    async def failed_three_times() -> bool:
        return failures_logged(caplog, logger) >= 3 or not task.running

    async def finished() -> bool:
        return await done() or not task.running

    try:
        async with holding(db, postgres_lock, **(params or {})):
            task.start()
            await until(failed_three_times, f"three failed steps of {task.name}")
            assert task.running, "a database error ended the task"
        await until(finished, f"{task.name} to do its work once the lock was gone")
        assert task.running
    finally:
        await task.stop()


@contextlib.asynccontextmanager
async def holding(db: Database, postgres_lock: str, **params: Any) -> AsyncIterator[None]:
    """Another connection holds a lock a step needs, until the block ends: on PostgreSQL
    what ``postgres_lock`` locks (in a transaction), on SQLite the database's write lock
    (``BEGIN IMMEDIATE``), which every write transaction must take."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text(postgres_lock), params)
        try:
            yield
        finally:
            if db.is_sqlite:
                await conn.exec_driver_sql("ROLLBACK")
            else:
                await conn.rollback()


def lock_failure(db: Database) -> str:
    """What the database says when a step gave up waiting for the lock ``holding`` holds."""
    return "database is locked" if db.is_sqlite else "statement timeout"


def records(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[logging.LogRecord]:
    """What ``logger`` logged at exactly ``level``."""
    return [r for r in caplog.records if r.name == logger and r.levelno == level]


def failures_logged(caplog: pytest.LogCaptureFixture, logger: str) -> int:
    """Failed steps logged so far: the outage's WARNING and the DEBUG line of each retry."""
    return len(records(caplog, logger, logging.WARNING) + records(caplog, logger, logging.DEBUG))


def assert_one_outage_logged(caplog: pytest.LogCaptureFixture, logger: str, cause: str) -> None:
    """The rule of ``runql.tasks.periodic``: an outage is one WARNING naming the database's own
    message (not the SQL), its retries DEBUG only, its end one INFO, and no ERROR."""
    (failure,) = records(caplog, logger, logging.WARNING)
    assert cause in failure.getMessage()
    assert "SELECT" not in failure.getMessage()  # the cause, not the statement
    assert "DELETE" not in failure.getMessage()
    assert len(records(caplog, logger, logging.DEBUG)) >= 2  # the retries, quietly
    recovered = [r for r in records(caplog, logger, logging.INFO) if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    assert not records(caplog, logger, logging.ERROR)
