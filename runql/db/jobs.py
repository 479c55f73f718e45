"""Named read queries over job submissions.

The runs page asks for the latest N submissions of every logical job of up to 100 runs.
A plain ``ROW_NUMBER()`` window over those runs reads every past submission, so its cost
grows with history depth (see ``shared/notes/latest-submissions.md``). These queries start
from the page's rows in ``logical_jobs`` (a ``MATERIALIZED`` CTE, so SQLite drives the join
from the small side) and read, per logical job, only the slice of the unique index
``(run_id, replica_num, job_num, submission_num)`` at or above its N-th newest submission.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from runql.db.enums import JobStatus
from runql.db.models import HEAVY_JOB_COLUMNS, Job, LogicalJob, Run
from runql.db.visibility import Viewer, visible_projects

#: ``(run_id, replica_num, job_num)``
LogicalJobKey = tuple[int, int, int]


def _logical_jobs_cte(run_ids: Sequence[int] = (), keys: Sequence[LogicalJobKey] = ()) -> Any:
    where: ColumnElement[bool]
    if keys:
        where = tuple_(LogicalJob.run_id, LogicalJob.replica_num, LogicalJob.job_num).in_(keys)
    else:
        where = LogicalJob.run_id.in_(run_ids)
    return (
        select(
            LogicalJob.run_id,
            LogicalJob.replica_num,
            LogicalJob.job_num,
            LogicalJob.latest_submission_num,
        )
        .where(where)
        .cte("page_logical_jobs")
        .prefix_with("MATERIALIZED")
    )


def _same_logical_job(job: Any, lj: Any) -> ColumnElement[bool]:
    return and_(
        job.run_id == lj.c.run_id,
        job.replica_num == lj.c.replica_num,
        job.job_num == lj.c.job_num,
    )


async def latest_submissions(
    session: AsyncSession,
    *,
    limit: int,
    run_ids: Sequence[int] = (),
    keys: Sequence[LogicalJobKey] = (),
    statuses: Sequence[JobStatus] = (),
) -> list[Job]:
    """The newest ``limit`` submissions of each logical job of ``run_ids`` (or of the
    logical jobs ``keys``), ordered by logical job then newest first.

    ``statuses`` filters those latest submissions; it does not reach further back.
    Exact even when submission numbers have gaps: the lower bound is the N-th newest
    submission number, found by an index probe per logical job.
    """
    if limit < 1 or not (run_ids or keys):
        return []
    lj = _logical_jobs_cte(run_ids, keys)
    if session.get_bind().dialect.name == "postgresql":
        return await _latest_submissions_lateral(session, lj, limit, statuses)
    probe = aliased(Job)
    nth_newest = (
        select(probe.submission_num)
        .where(_same_logical_job(probe, lj))
        .order_by(probe.submission_num.desc())
        .limit(1)
        .offset(limit - 1)
        .correlate(lj)
        .scalar_subquery()
    )
    window = (
        select(
            Job.id,
            func.row_number()
            .over(
                partition_by=(Job.run_id, Job.replica_num, Job.job_num),
                order_by=Job.submission_num.desc(),
            )
            .label("rn"),
        )
        .select_from(lj)
        .join(
            Job,
            and_(
                _same_logical_job(Job, lj),
                Job.submission_num >= func.coalesce(nth_newest, literal(-1)),
            ),
        )
        .subquery("ranked")
    )
    stmt = (
        select(Job)
        .join(window, window.c.id == Job.id)
        .where(window.c.rn <= limit)
        .order_by(Job.run_id, Job.job_num, Job.replica_num, Job.submission_num.desc())
    )
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    return list(await session.scalars(stmt))


#: Job columns the list queries return: never the heavy JSON.
_LIGHT_JOB_COLUMNS = [c for c in Job.__table__.c if c.name not in HEAVY_JOB_COLUMNS]


async def _latest_submissions_lateral(
    session: AsyncSession, lj: Any, limit: int, statuses: Sequence[JobStatus]
) -> list[Job]:
    """PostgreSQL: ``JOIN LATERAL (... ORDER BY submission_num DESC LIMIT n)`` per logical
    job, which forces a bounded backward index scan for each one.

    The portable shape above puts the N-th-newest probe in the join condition, and
    PostgreSQL's planner then prefers hashing every submission in the table and
    running the probe once per submission: 2.4 s for a 50-run page at 1,000 retries per
    job, against ~3 ms for this shape (``bench/RESULTS.md``, scenario 1).
    """
    newest = (
        select(*_LIGHT_JOB_COLUMNS)
        .where(_same_logical_job(Job, lj))
        .order_by(Job.submission_num.desc())
        .limit(limit)
        .lateral("newest")
    )
    job = aliased(Job, newest)
    stmt = (
        select(job)
        .select_from(lj)
        .join(newest, true())
        .order_by(job.run_id, job.job_num, job.replica_num, job.submission_num.desc())
    )
    if statuses:
        stmt = stmt.where(job.status.in_(statuses))
    return list(await session.scalars(stmt))


async def latest_terminated(session: AsyncSession, run_ids: Sequence[int]) -> list[Job]:
    """Per logical job of ``run_ids``, its newest submission that has a termination reason.

    Uses the partial index ``ix_jobs_terminated`` (one probe per logical job), so the
    cost does not grow with history depth.
    """
    if not run_ids:
        return []
    lj = _logical_jobs_cte(run_ids)
    probe = aliased(Job)
    newest_terminated = (
        select(func.max(probe.submission_num))
        .where(_same_logical_job(probe, lj), probe.termination_reason.is_not(None))
        .correlate(lj)
        .scalar_subquery()
    )
    stmt = (
        select(Job)
        .select_from(lj)
        .join(Job, and_(_same_logical_job(Job, lj), Job.submission_num == newest_terminated))
        .order_by(Job.run_id, Job.replica_num, Job.job_num)
    )
    return list(await session.scalars(stmt))


async def job_counts(
    session: AsyncSession, run_ids: Sequence[int]
) -> dict[int, dict[JobStatus, int]]:
    """Logical jobs per status of their latest submission, per run: one grouped query."""
    counts: dict[int, dict[JobStatus, int]] = defaultdict(dict)
    if not run_ids:
        return counts
    stmt = (
        select(Job.run_id, Job.status, func.count())
        .select_from(LogicalJob)
        .join(
            Job,
            and_(
                Job.run_id == LogicalJob.run_id,
                Job.replica_num == LogicalJob.replica_num,
                Job.job_num == LogicalJob.job_num,
                Job.submission_num == LogicalJob.latest_submission_num,
            ),
        )
        .where(LogicalJob.run_id.in_(run_ids))
        .group_by(Job.run_id, Job.status)
    )
    for run_id, status, count in await session.execute(stmt):
        counts[run_id][JobStatus(status)] = count
    return counts


async def jobs_by_ids(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> dict[int, Job]:
    """Jobs of visible, non-deleted runs by id; others are absent."""
    rows = await session.scalars(
        select(Job)
        .join(Run, Run.id == Job.run_id)
        .where(Job.id.in_(ids), Run.deleted.is_(False), visible_projects(viewer, Run.project_id))
    )
    return {job.id: job for job in rows}


async def job_columns(
    session: AsyncSession, ids: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """Heavy columns of jobs already known to be visible, in one statement."""
    unknown = set(columns) - set(HEAVY_JOB_COLUMNS)
    if unknown:
        raise ValueError(f"not a heavy job column: {sorted(unknown)}")
    cols = [getattr(Job, name) for name in columns]
    rows = await session.execute(select(Job.id, *cols).where(Job.id.in_(ids)))
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}
