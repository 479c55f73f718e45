"""Named read queries over job submissions.

The runs page asks for the latest N submissions of every logical job of up to 100 runs.
A plain ``ROW_NUMBER()`` window over those runs reads every past submission, so its cost
grows with history depth (measured in docs/measurements.md). These queries start
from the page's rows in ``logical_jobs`` (a ``MATERIALIZED`` CTE, so SQLite drives the join
from the small side) and read, per logical job, only the slice of the unique index
``(run_id, replica_num, job_num, submission_num)`` at or above its N-th newest submission.

Lists of ids and keys come from loaders and can be long (tens of thousands): they are bound
as one parameter per column (``runql.db.key_lists``), never as one parameter per value.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from runql.db.dialect import dialect_of
from runql.db.enums import JobStatus
from runql.db.heavy_columns import heavy_columns
from runql.db.key_lists import in_list, key_params, key_table
from runql.db.models import Job, JobDependency, LogicalJob, Run, submission_of
from runql.db.visibility import Viewer, visible_projects

#: ``(run_id, replica_num, job_num)``
LogicalJobKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job submission's light columns, as the list queries return them.

    Lists of submissions (a runs page has one per logical job of every run) skip the
    ORM: hydrating an entity costs about 30 us a row, several times the query itself.
    Field names match the ``Job`` model, so readers accept either.
    """

    id: int
    run_id: int
    replica_num: int
    job_num: int
    submission_num: int
    name: str
    status: JobStatus
    termination_reason: str | None
    termination_message: str | None
    exit_status: int | None
    runner_name: str | None
    run_attempt: int
    lease_expires_at: dt.datetime | None
    submitted_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


#: A submission as a resolver may hold it: an ORM entity (lookups) or a list row.
AnyJob = Job | JobRow

_ROW_COLUMNS = [Job.__table__.c[f.name] for f in fields(JobRow)]


_KEY_COLUMNS = ("run_id", "replica_num", "job_num")


def _logical_jobs_cte(dialect: str, by_keys: bool) -> Any:
    """The page's logical jobs, by the list parameter ``run_ids`` or by ``keys``.

    Keys are a joined list (``key_lists.key_table``), not a row-value ``IN`` list: that
    one costs PostgreSQL's planner quadratic time and fails past ~12,000 keys, and a page
    of 100 runs of 5,000 jobs asks for 500,000.
    """
    stmt = select(
        LogicalJob.run_id,
        LogicalJob.replica_num,
        LogicalJob.job_num,
        LogicalJob.latest_submission_num,
    )
    if by_keys:
        keys = key_table("keys", dialect, _KEY_COLUMNS)
        stmt = stmt.select_from(keys).join(
            LogicalJob,
            and_(*(getattr(LogicalJob, column) == keys.c[column] for column in _KEY_COLUMNS)),
        )
    else:
        stmt = stmt.where(in_list(LogicalJob.run_id, dialect, name="run_ids"))
    return stmt.cte("page_logical_jobs").prefix_with("MATERIALIZED")


def _same_logical_job(job: Any, lj: Any) -> ColumnElement[bool]:
    return and_(
        job.run_id == lj.c.run_id,
        job.replica_num == lj.c.replica_num,
        job.job_num == lj.c.job_num,
    )


@functools.cache
def _latest_statement(dialect: str, by_keys: bool, with_statuses: bool) -> Any:
    """Built once per shape: building and cache-keying this statement costs more than
    running it (about 4 ms a call), and the runs page asks for it on every request.

    PostgreSQL gets ``JOIN LATERAL (... ORDER BY submission_num DESC LIMIT n)`` per
    logical job. The portable shape puts the N-th-newest probe in the join condition, and
    PostgreSQL's planner then prefers hashing every submission in the table and running
    the probe once per submission: 2.4 s for a 50-run page at 1,000 retries per job,
    against ~3 ms for the lateral shape (``bench/RESULTS.md``, scenario 1). SQLite keeps
    the bounded ``ROW_NUMBER()`` window, which its planner runs flat.
    """
    lj = _logical_jobs_cte(dialect, by_keys)
    if dialect == "postgresql":
        newest = (
            select(*_ROW_COLUMNS)
            .where(_same_logical_job(Job, lj))
            .order_by(Job.submission_num.desc())
            .limit(bindparam("limit"))
            .lateral("newest")
        )
        c = newest.c
        stmt = (
            select(*(c[column.name] for column in _ROW_COLUMNS))
            .select_from(lj)
            .join(newest, true())
            .order_by(c.run_id, c.job_num, c.replica_num, c.submission_num.desc())
        )
        status: Any = c.status
    else:
        probe = aliased(Job)
        nth_newest = (
            select(probe.submission_num)
            .where(_same_logical_job(probe, lj))
            .order_by(probe.submission_num.desc())
            .limit(1)
            .offset(bindparam("nth_offset"))
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
            select(*_ROW_COLUMNS)
            .join(window, window.c.id == Job.id)
            .where(window.c.rn <= bindparam("limit"))
            .order_by(Job.run_id, Job.job_num, Job.replica_num, Job.submission_num.desc())
        )
        status = Job.status
    if with_statuses:
        stmt = stmt.where(status.in_(bindparam("statuses", expanding=True)))
    return stmt


async def latest_submissions(
    session: AsyncSession,
    *,
    limit: int,
    run_ids: Sequence[int] = (),
    keys: Sequence[LogicalJobKey] = (),
    statuses: Sequence[JobStatus] = (),
) -> list[JobRow]:
    """The newest ``limit`` submissions of each logical job of ``run_ids`` (or of the
    logical jobs ``keys``), ordered by logical job then newest first.

    ``statuses`` filters those latest submissions; it does not reach further back.
    Exact even when submission numbers have gaps: the bound is the N-th newest
    submission number (SQLite: an index probe per logical job; PostgreSQL: ``LIMIT n``).
    """
    if limit < 1 or not (run_ids or keys):
        return []
    dialect = dialect_of(session)
    stmt = _latest_statement(dialect, bool(keys), bool(statuses))
    params: dict[str, Any] = {"limit": limit}
    if keys:
        distinct = list(dict.fromkeys(tuple(key) for key in keys))
        params.update(key_params("keys", dialect, _KEY_COLUMNS, distinct))
    else:
        params["run_ids"] = list(run_ids)
    if dialect != "postgresql":
        params["nth_offset"] = limit - 1
    if statuses:
        params["statuses"] = list(statuses)
    return [JobRow(*row) for row in await session.execute(stmt, params)]


@functools.cache
def _latest_terminated_statement(dialect: str) -> Any:
    lj = _logical_jobs_cte(dialect, by_keys=False)
    probe = aliased(Job)
    newest_terminated = (
        select(func.max(probe.submission_num))
        .where(_same_logical_job(probe, lj), probe.termination_reason.is_not(None))
        .correlate(lj)
        .scalar_subquery()
    )
    return (
        select(*_ROW_COLUMNS)
        .select_from(lj)
        .join(Job, and_(_same_logical_job(Job, lj), Job.submission_num == newest_terminated))
        .order_by(Job.run_id, Job.replica_num, Job.job_num)
    )


async def latest_terminated(session: AsyncSession, run_ids: Sequence[int]) -> list[JobRow]:
    """Per logical job of ``run_ids``, its newest submission that has a termination reason.

    Uses the partial index ``ix_jobs_terminated`` (one probe per logical job), so the
    cost does not grow with history depth.
    """
    if not run_ids:
        return []
    stmt = _latest_terminated_statement(dialect_of(session))
    rows = await session.execute(stmt, {"run_ids": list(run_ids)})
    return [JobRow(*row) for row in rows]


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
                submission_of(Job, LogicalJob),
                Job.submission_num == LogicalJob.latest_submission_num,
            ),
        )
        .where(in_list(LogicalJob.run_id, dialect_of(session), values=run_ids))
        .group_by(Job.run_id, Job.status)
    )
    for run_id, status, count in await session.execute(stmt):
        counts[run_id][JobStatus(status)] = count
    return counts


async def upstream_names(
    session: AsyncSession, run_ids: Sequence[int]
) -> dict[int, dict[int, list[str]]]:
    """Per run, per ``job_num``: the names of the jobs it waits for, in job order. One
    statement for a page of runs (names come from each upstream job's replica 0)."""
    upstream: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    if not run_ids:
        return upstream
    stmt = (
        select(JobDependency.run_id, JobDependency.job_num, LogicalJob.name)
        .join(
            LogicalJob,
            and_(
                LogicalJob.run_id == JobDependency.run_id,
                LogicalJob.job_num == JobDependency.depends_on_job_num,
                LogicalJob.replica_num == 0,
            ),
        )
        .where(in_list(JobDependency.run_id, dialect_of(session), values=run_ids))
        .order_by(JobDependency.run_id, JobDependency.job_num, JobDependency.depends_on_job_num)
    )
    for run_id, job_num, name in await session.execute(stmt):
        upstream[run_id][job_num].append(name)
    return upstream


async def jobs_by_ids(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> dict[int, Job]:
    """Jobs of visible, non-deleted runs by id; others are absent."""
    rows = await session.scalars(
        select(Job)
        .join(Run, Run.id == Job.run_id)
        .where(
            in_list(Job.id, dialect_of(session), values=ids),
            Run.deleted.is_(False),
            visible_projects(viewer, Run.project_id),
        )
    )
    return {job.id: job for job in rows}


async def job_columns(
    session: AsyncSession, ids: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """Heavy columns of jobs already known to be visible, in one statement."""
    return await heavy_columns(session, Job, ids, columns)
