"""The lease sweeper as a background task: it outlives database errors (logging each
outage once, backing off, logging the recovery), and only a bug in its own code stops it.

What a single sweep does to jobs is guarded in ``tests/runner/test_leases.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from runql.db import engine as engine_module
from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole
from runql.db.lifecycle import JobDefinition
from runql.lease_sweeper import MAX_BACKOFF_SECONDS, LeaseSweeper, backoff_seconds
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim, job_rows

LOGGER = "runql.lease_sweeper"


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for ``condition`` (polling; the bound only keeps a broken build from hanging)."""
    for _ in range(2000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"gave up waiting for {what}")


@contextlib.asynccontextmanager
async def _holding_the_sweeps_lock(db: Database, job_id: int) -> AsyncIterator[None]:
    """Another connection holds a lock the sweep needs, until the block ends.

    PostgreSQL: the expired job's row (``FOR UPDATE``). Its run would not do: the sweeper
    takes runs with ``SKIP LOCKED`` and would just skip it. SQLite: the database's write
    lock (``BEGIN IMMEDIATE``), which the sweeper's write transaction must take too.
    """
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(
                text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id}
            )
        try:
            yield
        finally:
            if db.is_sqlite:
                await conn.exec_driver_sql("ROLLBACK")
            else:
                await conn.rollback()


def _sweeper_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_a_database_error_is_logged_once_and_the_sweeper_carries_on(
    db: Database,
    factory: Factory,
    gql: GraphQLClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep fails for as long as another connection holds its lock: a statement
    timeout on PostgreSQL (a plain ``DBAPIError``, which once ended the task for good),
    ``database is locked`` on SQLite (which was logged at every retry). The task keeps
    running, says so once, and requeues the job once the lock is gone."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    alice = await factory.user("alice")
    project = await factory.project("vision", [(alice, MemberRole.USER)])
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", retry_limit=1)])
    (lost,) = await claim(gql, alice.token, limit=1, leaseSeconds=5)
    expired = dt.datetime.fromisoformat(lost["leaseExpiresAt"]) + dt.timedelta(seconds=1)
    # The sweeper's own database, quick to give up waiting for a lock.
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    sweeper_db = Database(db.url, statement_timeout_ms=200)
    sweeper = LeaseSweeper(sweeper_db, interval_seconds=0.02, now=lambda: expired)
    attempts = 0
    sweep_once = sweeper.sweep_once

    async def counted() -> int:
        nonlocal attempts
        attempts += 1
        return await sweep_once()

    monkeypatch.setattr(sweeper, "sweep_once", counted)

    async def failed_three_times() -> bool:
        return attempts >= 4 or not sweeper.running

    async def requeued() -> bool:
        return len(await job_rows(db, run_id)) == 2 or not sweeper.running

    try:
        async with _holding_the_sweeps_lock(db, int(lost["job"]["id"])):
            sweeper.start()
            await _until(failed_three_times, "three failed sweeps")
            assert sweeper.running, "a database error ended the sweeper"
        await _until(requeued, "the sweeper to requeue the expired job")
        assert sweeper.running
    finally:
        await sweeper.stop()
        await sweeper_db.dispose()

    (failure,) = _sweeper_records(caplog, logging.WARNING)
    cause = "database is locked" if db.is_sqlite else "statement timeout"
    assert cause in failure.getMessage()
    assert "SELECT" not in failure.getMessage()  # the cause, not the statement
    assert len(_sweeper_records(caplog, logging.DEBUG)) >= 2  # the retries, quietly
    recovered = [r for r in _sweeper_records(caplog, logging.INFO) if "recovered" in r.message]
    assert len(recovered) == 1
    assert not _sweeper_records(caplog, logging.ERROR)
    old, new = await job_rows(db, run_id)
    assert (old.status, old.termination_reason) == (JobStatus.FAILED, "LEASE_EXPIRED")
    assert new.status == JobStatus.SUBMITTED


async def test_a_bug_in_the_sweeper_stops_it_loudly(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sweeper = LeaseSweeper(db, interval_seconds=0.01)

    async def broken() -> Any:
        raise KeyError("not a database error")

    monkeypatch.setattr(sweeper, "sweep_once", broken)
    sweeper.start()

    async def stopped() -> bool:
        return not sweeper.running

    await _until(stopped, "the sweeper to stop")
    await sweeper.stop()
    (record,) = _sweeper_records(caplog, logging.ERROR)
    assert "unexpected error" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_backoff_doubles_from_the_interval_up_to_a_cap() -> None:
    assert [backoff_seconds(5, n) for n in range(1, 7)] == [5, 10, 20, 40, 50, 50]
    assert [backoff_seconds(30, n) for n in (1, 2, 3, 1000)] == [30, 60, 60, MAX_BACKOFF_SECONDS]
    assert backoff_seconds(0.1, 1000) == pytest.approx(1.0)  # ten intervals
    assert backoff_seconds(300, 5) == 300  # never below the interval
