"""Lease expiry: taking jobs back from runners that stopped renewing their claims.

The lease sweeper (``runql.tasks.lease_sweeper``) first asks, with a plain read, whether any
lease has expired (:func:`expired_leases_exist`), and only then ends those claims in a
write transaction (:func:`requeue_expired`). What an ended claim sets off (a retry, aborted
downstream jobs, the run's status) is the same as for a runner's completion:
:class:`~runql.db.job_effects.FinishedJobs`. The sweep keeps the lock order of every writer
(runs, then jobs, each in id order; the rule is in ``runql.db.locking``), taking its runs
with ``SKIP LOCKED`` so it never waits.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, cast

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.enums import EventKind, JobStatus, TerminationReason
from runql.db.events import EventBatch
from runql.db.job_effects import (
    LEASED_SQL,
    FinishedJobs,
    FinishingJob,
    retry_limit_column,
    status_in,
)
from runql.db.models import Job, LogicalJob, Run, submission_of

LEASE_EXPIRED_MESSAGE = "lease expired: the runner stopped renewing its claim"


class ExpiredLease(FinishingJob, Protocol):
    """A row of an expired claim: how it ends, and whether its policy retries it."""

    retry_on_lease_expiry: bool


def _expired(now: dt.datetime) -> ColumnElement[bool]:
    return and_(status_in(Job.status, *LEASED_SQL), Job.lease_expires_at < now)


async def expired_leases_exist(session: AsyncSession, now: dt.datetime) -> bool:
    """A plain read (no write lock): is there anything for the sweeper to do?"""
    return (await session.scalar(select(Job.id).where(_expired(now)).limit(1))) is not None


async def requeue_expired(session: AsyncSession, *, now: dt.datetime, limit: int) -> int:
    """End up to ``limit`` claims whose lease expired before ``now``; returns how many.

    The submission ends ``FAILED`` with reason ``LEASE_EXPIRED`` and its claim token is
    cleared (a late completion is refused as stale). With retries left and
    ``retry_on_lease_expiry`` a new submission is queued; otherwise downstream jobs are
    aborted. A job of a stopping run just ends ``TERMINATED``. Loads only the columns it
    decides on. On PostgreSQL runs are locked first with ``SKIP LOCKED``, so several
    server replicas sweep side by side without waiting for or doubling each other.
    A ``JOB_REQUEUED`` event per ended claim, then the events of what they set off
    (``JOB_RETRIED`` for the new submissions, ...), in one more statement.
    """
    expired_runs = select(Job.run_id).where(_expired(now))
    run_ids = list(
        await session.scalars(
            select(Run.id)
            .where(Run.id.in_(expired_runs))
            .order_by(Run.id)
            # At most ``limit`` runs: each has an expired lease, so no more are needed to
            # end ``limit`` claims, and the id list below stays short after an outage.
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not run_ids:
        return 0
    rows = (
        await session.execute(
            select(  # the columns of ExpiredLease
                Job.id,
                Job.run_id,
                Job.submission_num,
                Job.status,
                Run.status.label("run_status"),
                retry_limit_column(),
                LogicalJob.retry_on_lease_expiry,
            )
            .join(Run, Run.id == Job.run_id)
            .join(LogicalJob, submission_of(Job, LogicalJob))
            # ``+ 0``: start from the expired leases (ix_jobs_lease), not every job of the runs.
            .where((Job.run_id + 0).in_(run_ids), _expired(now))
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(of=Job)
        )
    ).all()
    if not rows:
        return 0
    finished = FinishedJobs()
    for row in cast("list[ExpiredLease]", rows):
        finished.add(row, succeeded=False, may_retry=row.retry_on_lease_expiry)
    for ids, status in (
        (finished.failed, JobStatus.FAILED),
        (finished.stopped, JobStatus.TERMINATED),
    ):
        if ids:
            await session.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(
                    status=status,
                    termination_reason=TerminationReason.LEASE_EXPIRED.value,
                    termination_message=LEASE_EXPIRED_MESSAGE,
                    finished_at=now,
                    lease_expires_at=None,
                    claim_token_hash=None,
                )
                .execution_options(synchronize_session=False)
            )
    events = EventBatch()
    events.jobs(EventKind.JOB_REQUEUED, [row.id for row in rows])
    await finished.apply(session, now, events=events)
    await events.flush(session, now)
    return len(rows)
