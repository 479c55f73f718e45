"""Reads behind the live subscriptions: the runs and jobs a batch of events names, who of
the subscribers may see them, and the count of ready jobs a runner's wake-up carries.

A subscription shows each event's run and job as they are now, to whoever is watching
now: these reads filter by the viewer's current visibility, so a user removed from a
project stops getting its events at the next batch. Unlike the query-side reads they keep
deleted runs (a ``RUN_DELETED`` event still names its run).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.dialect import dialect_of, is_sqlite
from runql.db.job_effects import CLAIMABLE_RUN_STATUSES, status_in
from runql.db.key_lists import in_list
from runql.db.models import Job, Member, Run
from runql.db.visibility import Viewer, visible_projects


async def event_runs(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> dict[int, Run]:
    """Runs by id that ``viewer`` may see now, deleted ones included; one statement."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(Run).where(
            in_list(Run.id, dialect_of(session), values=ids),
            visible_projects(viewer, Run.project_id),
        )
    )
    return {run.id: run for run in rows}


async def event_jobs(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> dict[int, Job]:
    """Jobs by id whose run ``viewer`` may see now (deleted runs included); one statement."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(Job)
        .join(Run, Run.id == Job.run_id)
        .where(
            in_list(Job.id, dialect_of(session), values=ids),
            visible_projects(viewer, Run.project_id),
        )
    )
    return {job.id: job for job in rows}


async def memberships(
    session: AsyncSession, user_ids: Collection[int], project_ids: Collection[int]
) -> set[tuple[int, int]]:
    """Which of ``user_ids`` are members of which of ``project_ids`` now, as
    ``(user_id, project_id)`` pairs; one statement. The live path checks every
    subscriber's visibility of a batch of events with it, at once."""
    if not user_ids or not project_ids:
        return set()
    dialect = dialect_of(session)
    rows = await session.execute(
        select(Member.user_id, Member.project_id).where(
            in_list(Member.user_id, dialect, values=sorted(user_ids)),
            in_list(Member.project_id, dialect, values=sorted(project_ids)),
        )
    )
    return {(user_id, project_id) for user_id, project_id in rows}


async def ready_job_counts(
    session: AsyncSession,
    viewer: Viewer,
    *,
    project_id: int | None,
    touched_project_ids: Collection[int] | None,
) -> tuple[int, int]:
    """Claimable jobs ``viewer`` may claim (in ``project_id`` when given), and how many of
    them are in ``touched_project_ids`` (all of them when None); one statement. Claimable
    as ``claimJobs`` means it: a ready submission of a live run."""
    touched = (
        Run.project_id.in_(sorted(touched_project_ids)) if touched_project_ids is not None else None
    )
    in_touched = func.count(Job.id) if touched is None else func.sum(case((touched, 1), else_=0))
    stmt = (
        select(func.count(Job.id), in_touched)
        .select_from(Job)
        .join(Run, Run.id == Job.run_id)
        .where(
            status_in(Job.status, "SUBMITTED"),
            Run.status.in_(CLAIMABLE_RUN_STATUSES),
            Run.deleted.is_(False),
            visible_projects(viewer, Run.project_id),
        )
    )
    if project_id is not None:
        stmt = stmt.where(Run.project_id == project_id)
    total, touched_count = (await session.execute(stmt)).one()
    return int(total or 0), int(touched_count or 0)


#: ``pg_try_advisory_xact_lock`` key of event pruning ("runqlevt" as an int64).
PRUNE_LOCK_KEY = 0x72756E716C657674


async def try_prune_lock(session: AsyncSession) -> bool:
    """Whether this write transaction may prune the event log: one replica at a time on
    PostgreSQL (a second pruner, with an older view of the log, could move the prune
    watermark back); SQLite's write lock serialises pruners already."""
    if is_sqlite(session):
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(PRUNE_LOCK_KEY))))
