"""The lock order every writer keeps, and the locking reads of the jobs runners hold
(renewals and completions).

Locking (PostgreSQL; on SQLite the caller's ``Database.write()`` already excludes other
writers and the locking clauses compile to nothing). One order for every writer that
waits for a row lock: **runs before jobs, each in id order**. A transaction locks every
run it will touch, in id order, before it locks or changes any job of them, and locks the
jobs it reads in id order. Claims aside (they never wait, below), a job is then only
locked by transactions that hold its run: exclusively, or shared by renewals that lock
jobs in id order too. No two writers can wait for each other in a cycle, whatever order a
later statement updates a run's jobs in:

* Stops, deletes (``runql.db.lifecycle.lock_runs``), completions and the lease sweeper
  (``runql.db.lease_expiry``) lock their runs ``FOR UPDATE``, then the jobs they read, in
  id order; unblocking, aborting and stopping then update other jobs of those runs in plan
  order, which is safe because no other waiting writer can hold them. Two completions of
  the same run serialise, which is what makes unblocking exact (each sees the other's
  finished upstream jobs). The sweeper takes runs with ``SKIP LOCKED``: it never waits for
  a run, and leaves a busy one to its next sweep.
* Renewals lock their runs ``FOR SHARE``, then the renewed jobs. Share locks do not
  conflict, so renewals of one run go side by side, but a renewal and a stop, completion
  or sweep of the run (``FOR UPDATE``) wait for each other at the run, never halfway
  through the jobs. (Renewals once locked only the jobs: one holding half of a run's jobs
  met a stop holding the run and updating the other half, and PostgreSQL aborted one of
  them with ``deadlock detected``.) ``FOR SHARE`` rather than ``FOR KEY SHARE``: it also
  conflicts with a plain ``UPDATE`` of the run, so no writer changes a run under a renewal.
* Claims never wait, so they cannot close a cycle: they lock only ready jobs
  (``FOR UPDATE SKIP LOCKED``) and flip their runs to ``RUNNING`` through ``SKIP LOCKED``
  too (the roll-up after the next completion repairs a skipped flip).

Times written under a lock (``startedAt``, lease expiries) are taken after the locking read:
a claim or renewal that waited for other writers must not hand out a lease partly spent
while it waited.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.dialect import is_sqlite
from runql.db.enums import JobStatus, RunStatus
from runql.db.job_effects import retry_limit_column
from runql.db.models import Job, LogicalJob, Run, submission_of
from runql.db.visibility import Viewer, viewer_params, visible_projects_bound


class LockedJob(Protocol):
    """A row of :func:`locked_jobs`: the job's columns deciding needs, with its run's
    status and attempt (a plain row, no ORM object per item)."""

    id: int
    run_id: int
    job_num: int
    submission_num: int
    status: JobStatus
    claim_token_hash: str | None
    run_attempt: int
    run_status: RunStatus
    attempt: int


class LockedCompletion(LockedJob, Protocol):
    """A row of :func:`locked_completions`: a locked job with its retry policy."""

    retry_limit: int
    retry_on_failure: bool


@functools.cache
def _lock_runs_statement(is_admin: bool, share: bool) -> Any:
    runs = select(Job.run_id).where(Job.id.in_(bindparam("job_ids", expanding=True)))
    return (
        select(Run.id)
        .where(Run.id.in_(runs), visible_projects_bound(is_admin, Run.project_id))
        .order_by(Run.id)
        .with_for_update(read=share)
    )


async def lock_runs_of_jobs(
    session: AsyncSession, viewer: Viewer, job_ids: Sequence[int], *, share: bool = False
) -> None:
    """PostgreSQL: lock the runs of ``job_ids`` in id order before any of their jobs, the
    order every waiting writer keeps (``FOR UPDATE``, or ``FOR SHARE`` for renewals).
    SQLite holds the database write lock already."""
    if is_sqlite(session):
        return
    stmt = _lock_runs_statement(viewer.is_admin, share)
    await session.execute(stmt, {"job_ids": job_ids, **viewer_params(viewer)})


@functools.cache
def _locking_read(is_admin: bool, with_policy: bool) -> Any:
    """The jobs of ``job_ids`` of visible, live runs, locked in id order, with the columns
    of :class:`LockedJob` (and of :class:`LockedCompletion` ``with_policy``)."""
    extra = (retry_limit_column(), LogicalJob.retry_on_failure) if with_policy else ()
    stmt = (
        select(
            Job.id,
            Job.run_id,
            Job.job_num,
            Job.submission_num,
            Job.status,
            Job.claim_token_hash,
            Job.run_attempt,
            Run.status.label("run_status"),
            Run.attempt,
            *extra,
        )
        .join(Run, Run.id == Job.run_id)
        .where(
            Job.id.in_(bindparam("job_ids", expanding=True)),
            Run.deleted.is_(False),
            visible_projects_bound(is_admin, Run.project_id),
        )
        .order_by(Job.id)
        .with_for_update(of=Job)
    )
    if with_policy:
        stmt = stmt.join(LogicalJob, submission_of(Job, LogicalJob))
    return stmt


async def locked_jobs(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, LockedJob]:
    """The requested jobs, locked, by id; absent ids are unknown or not visible."""
    return await _locked(session, viewer, ids, with_policy=False)


async def locked_completions(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, LockedCompletion]:
    """As :func:`locked_jobs`, with each job's retry policy."""
    return await _locked(session, viewer, ids, with_policy=True)


async def _locked(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int], *, with_policy: bool
) -> dict[int, Any]:
    stmt = _locking_read(viewer.is_admin, with_policy)
    rows = await session.execute(stmt, {"job_ids": ids, **viewer_params(viewer)})
    return {row.id: row for row in rows}
