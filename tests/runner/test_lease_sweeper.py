"""The lease sweeper as a background task: it outlives database errors (logging each
outage once, backing off, logging the recovery), and only a bug in its own code stops it
(``tests/test_periodic.py``, for every periodic task).

What a single sweep does to jobs is guarded in ``tests/runner/test_leases.py``.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from runql.db.engine import Database
from runql.db.enums import JobStatus
from runql.db.lifecycle import JobDefinition
from runql.tasks.lease_sweeper import LeaseSweeper
from tests.background import (
    assert_one_outage_logged,
    impatient_database,
    lock_failure,
    run_through_an_outage,
)
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim, job_rows

LOGGER = "runql.tasks.lease_sweeper"


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
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", retry_limit=1)])
    (lost,) = await claim(gql, alice.token, limit=1, leaseSeconds=5)
    expired = dt.datetime.fromisoformat(lost["leaseExpiresAt"]) + dt.timedelta(seconds=1)

    async def requeued() -> bool:
        return len(await job_rows(db, run_id)) == 2

    async with impatient_database(db, monkeypatch) as sweeper_db:
        sweeper = LeaseSweeper(sweeper_db, interval_seconds=0.02, now=lambda: expired)
        # PostgreSQL: the expired job's row. Its run would not do: the sweeper takes runs
        # with SKIP LOCKED and would just skip it.
        job_row = "SELECT id FROM jobs WHERE id = :id FOR UPDATE"
        await run_through_an_outage(
            sweeper,
            caplog,
            db=db,
            postgres_lock=job_row,
            params={"id": int(lost["job"]["id"])},
            done=requeued,
        )

    assert_one_outage_logged(caplog, LOGGER, lock_failure(db))
    old, new = await job_rows(db, run_id)
    assert (old.status, old.termination_reason) == (JobStatus.FAILED, "LEASE_EXPIRED")
    assert new.status == JobStatus.SUBMITTED
