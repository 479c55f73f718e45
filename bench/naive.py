"""The naive baseline: the runs page the way slow orchestrators load it.

A conventional ORM mapping of the same tables, defined here and not in runql: a run has
a ``jobs`` relationship to *every* submission and an eagerly joined ``user``. The page
eager-loads all of it (``selectinload``), visibility is the user's project ids loaded
into Python and sent back as ``IN (...)``, and the latest submission per logical job is
picked in Python. Every column is loaded, heavy JSON included, as an ORM does unless told
otherwise. The output is the same JSON page runql returns (status message included), but
without GraphQL or HTTP: the baseline pays none of runql's request overhead.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, relationship, selectinload

from runql.db.engine import Database
from runql.db.models import Job, Member, Run, User
from runql.resolvers.status_message import run_status_message


class NaiveBase(DeclarativeBase):
    pass


class NaiveUser(NaiveBase):
    __table__ = User.__table__


class NaiveJob(NaiveBase):
    __table__ = Job.__table__


class NaiveRun(NaiveBase):
    __table__ = Run.__table__

    user: Mapped[NaiveUser] = relationship(lazy="joined")
    jobs: Mapped[list[NaiveJob]] = relationship(lazy="selectin")


def _latest(jobs: list[NaiveJob]) -> tuple[list[NaiveJob], list[NaiveJob]]:
    """Latest submission and latest terminated submission per logical job, in Python."""
    latest: dict[tuple[int, int], NaiveJob] = {}
    terminated: dict[tuple[int, int], NaiveJob] = {}
    for job in jobs:
        key = (job.replica_num, job.job_num)
        if key not in latest or job.submission_num > latest[key].submission_num:
            latest[key] = job
        if job.termination_reason is not None and (
            key not in terminated or job.submission_num > terminated[key].submission_num
        ):
            terminated[key] = job
    order = sorted(latest)
    return [latest[k] for k in order], [terminated[k] for k in order if k in terminated]


async def naive_page(db: Database, user_id: int, limit: int = 50) -> str:
    """The page as a JSON document (what a response body would hold)."""
    async with db.read() as session:
        project_ids = list(
            await session.scalars(select(Member.project_id).where(Member.user_id == user_id))
        )
        runs = (
            await session.scalars(
                select(NaiveRun)
                .options(joinedload(NaiveRun.user), selectinload(NaiveRun.jobs))
                .where(NaiveRun.deleted.is_(False), NaiveRun.project_id.in_(project_ids))
                .order_by(NaiveRun.submitted_at.desc(), NaiveRun.id.desc())
                .limit(limit)
            )
        ).unique()
        page = []
        for run in runs:
            latest, terminated = _latest(run.jobs)
            page.append(
                {
                    "id": str(run.id),
                    "name": run.name,
                    "status": run.status,
                    "statusMessage": run_status_message(run, latest, terminated),  # type: ignore[arg-type]
                    "submittedAt": run.submitted_at.isoformat(),
                    "user": {"name": run.user.name},
                    "jobs": [
                        {
                            "id": str(job.id),
                            "status": job.status,
                            "submissionNum": job.submission_num,
                            "terminationReason": job.termination_reason,
                            "exitStatus": job.exit_status,
                        }
                        for job in latest
                    ],
                }
            )
    return json.dumps(page)
