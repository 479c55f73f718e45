"""Set-based writes of a run's lifecycle: creating runs (and, later, stopping/deleting)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.enums import JobStatus, RunStatus
from runql.db.models import Job, JobDependency, LogicalJob, Run
from runql.db.types import utcnow


@dataclass(frozen=True)
class JobDefinition:
    """One job of a run as submitted; ``depends_on`` names other jobs of the same run."""

    name: str
    replicas: int = 1
    depends_on: tuple[str, ...] = ()
    retry_limit: int = 0
    retry_on_failure: bool = True
    retry_on_lease_expiry: bool = True
    spec: dict[str, Any] = field(default_factory=dict)


async def insert_run(
    session: AsyncSession,
    *,
    project_id: int,
    user_id: int,
    name: str,
    jobs: Sequence[JobDefinition],
    spec: dict[str, Any] | None = None,
    priority: int = 0,
    submitted_at: dt.datetime | None = None,
) -> Run:
    """Create a run with submission 0 of every logical job, in a handful of statements.

    Jobs without upstream jobs start ``SUBMITTED`` (ready to claim), the others ``BLOCKED``.
    The definitions must already be validated (known names, no cycles).
    """
    now = submitted_at or utcnow()
    run = Run(
        project_id=project_id,
        user_id=user_id,
        name=name,
        status=RunStatus.SUBMITTED,
        priority=priority,
        spec=spec or {},
        submitted_at=now,
    )
    session.add(run)
    await session.flush()
    job_nums = {job.name: num for num, job in enumerate(jobs)}
    logical_rows: list[dict[str, Any]] = []
    job_rows: list[dict[str, Any]] = []
    dependency_rows: list[dict[str, Any]] = []
    for job_num, job in enumerate(jobs):
        status = JobStatus.BLOCKED if job.depends_on else JobStatus.SUBMITTED
        dependency_rows.extend(
            {"run_id": run.id, "job_num": job_num, "depends_on_job_num": job_nums[upstream]}
            for upstream in dict.fromkeys(job.depends_on)
        )
        for replica_num in range(job.replicas):
            logical_rows.append(
                {
                    "run_id": run.id,
                    "replica_num": replica_num,
                    "job_num": job_num,
                    "name": job.name,
                    "latest_submission_num": 0,
                    "retry_limit": job.retry_limit,
                    "retry_on_failure": job.retry_on_failure,
                    "retry_on_lease_expiry": job.retry_on_lease_expiry,
                }
            )
            job_rows.append(
                {
                    "run_id": run.id,
                    "replica_num": replica_num,
                    "job_num": job_num,
                    "submission_num": 0,
                    "name": job.name,
                    "status": status,
                    "run_attempt": 0,
                    "submitted_at": now,
                    "spec": job.spec,
                }
            )
    if logical_rows:
        await session.execute(insert(LogicalJob), logical_rows)
        await session.execute(insert(Job), job_rows)
    if dependency_rows:
        await session.execute(insert(JobDependency), dependency_rows)
    return run
