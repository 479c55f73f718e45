"""Factories for users, projects, runs and job submissions, plus a GraphQL client.

They write through the same ``runql.db`` functions the service uses, so tests never build
rows the service could not have built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from runql.db.accounts import create_project, create_user
from runql.db.engine import Database, StatementRecorder, record_statements
from runql.db.enums import JobStatus, MemberRole, RunStatus, TerminationReason
from runql.db.lifecycle import JobDefinition, insert_run
from runql.db.models import Job, LogicalJob, Member, Run
from runql.db.types import utcnow

#: The reason a job submission that ended in a status comes with.
JOB_REASONS = {
    JobStatus.DONE: TerminationReason.DONE_BY_RUNNER,
    JobStatus.FAILED: TerminationReason.FAILED_BY_RUNNER,
    JobStatus.ABORTED: TerminationReason.UPSTREAM_FAILED,
    JobStatus.TERMINATED: TerminationReason.TERMINATED_BY_USER,
}
#: The reason a finished run comes with.
RUN_REASONS = {
    RunStatus.DONE: TerminationReason.ALL_JOBS_DONE,
    RunStatus.FAILED: TerminationReason.JOB_FAILED,
    RunStatus.TERMINATED: TerminationReason.TERMINATED_BY_USER,
}


@dataclass(frozen=True)
class UserHandle:
    id: int
    name: str
    token: str


@dataclass(frozen=True)
class ProjectHandle:
    id: int
    name: str


class Factory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._clock = utcnow() - dt.timedelta(days=30)
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def tick(self) -> dt.datetime:
        """A strictly increasing submission time, so test runs have a known order."""
        self._clock += dt.timedelta(seconds=1)
        return self._clock

    async def user(self, name: str | None = None, *, admin: bool = False) -> UserHandle:
        name = name or f"user{self._next()}"
        async with self.db.write() as session:
            user, token = await create_user(session, name, admin=admin)
        return UserHandle(user.id, name, token)

    async def project(
        self, name: str | None = None, members: Sequence[tuple[UserHandle, MemberRole]] = ()
    ) -> ProjectHandle:
        name = name or f"project{self._next()}"
        async with self.db.write() as session:
            project = await create_project(session, name)
            for user, role in members:
                session.add(Member(project_id=project.id, user_id=user.id, role=role))
        return ProjectHandle(project.id, name)

    async def user_in_project(
        self, user: str = "alice", project: str = "vision", role: MemberRole = MemberRole.USER
    ) -> tuple[UserHandle, ProjectHandle]:
        """The commonest cast of a test: a new ``user`` with ``role`` in a new ``project``."""
        handle = await self.user(user)
        return handle, await self.project(project, [(handle, role)])

    async def member(
        self, project: ProjectHandle, user: UserHandle, role: MemberRole = MemberRole.USER
    ) -> None:
        async with self.db.write() as session:
            session.add(Member(project_id=project.id, user_id=user.id, role=role))

    async def run(
        self,
        project: ProjectHandle,
        user: UserHandle,
        *,
        name: str | None = None,
        jobs: Sequence[JobDefinition] | None = None,
        status: RunStatus | None = None,
        spec: dict[str, Any] | None = None,
        priority: int = 0,
        submitted_at: dt.datetime | None = None,
    ) -> int:
        """Insert a run (default: one job 'main'); optionally force its status."""
        async with self.db.write() as session:
            run = await insert_run(
                session,
                project_id=project.id,
                user_id=user.id,
                name=name or f"run-{self._next()}",
                jobs=jobs if jobs is not None else [JobDefinition("main", spec={"cmd": "x"})],
                spec=spec if spec is not None else {"kind": "test"},
                priority=priority,
                submitted_at=submitted_at or self.tick(),
            )
            if status is not None:
                await session.execute(update(Run).where(Run.id == run.id).values(status=status))
            return run.id

    async def pipelines(
        self,
        project: ProjectHandle,
        user: UserHandle,
        n: int,
        *,
        prefix: str = "run-",
        running: bool = False,
    ) -> list[int]:
        """``n`` runs named ``<prefix><i>`` of two jobs, ``b`` after ``a``, written in one
        transaction (many runs, quickly); ``running``: every ``a`` is RUNNING, ``b`` still
        BLOCKED, so a stop has both kinds of work to do."""
        jobs = [JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
        async with self.db.write() as session:
            ids = [
                (
                    await insert_run(
                        session, project_id=project.id, user_id=user.id, name=f"{prefix}{i}",
                        jobs=jobs,
                    )
                ).id
                for i in range(n)
            ]  # fmt: skip
            if running:
                await session.execute(
                    update(Job)
                    .where(Job.run_id.in_(ids), Job.job_num == 0)
                    .values(status=JobStatus.RUNNING)
                )
        return ids

    async def set_job(
        self, run_id: int, job_num: int = 0, replica_num: int = 0, **values: Any
    ) -> None:
        """Update the latest submission of a logical job."""
        async with self.db.write() as session:
            latest = (
                select(LogicalJob.latest_submission_num)
                .where(
                    LogicalJob.run_id == run_id,
                    LogicalJob.job_num == job_num,
                    LogicalJob.replica_num == replica_num,
                )
                .scalar_subquery()
            )
            await session.execute(
                update(Job)
                .where(
                    Job.run_id == run_id,
                    Job.job_num == job_num,
                    Job.replica_num == replica_num,
                    Job.submission_num == latest,
                )
                .values(**values)
            )

    async def finished_run(
        self,
        project: ProjectHandle,
        user: UserHandle,
        jobs: Sequence[JobDefinition],
        ended: Mapping[str | tuple[str, int], JobStatus],
        *,
        status: RunStatus,
        name: str | None = None,
    ) -> int:
        """A run that ended ``status`` as the service would have ended it: each logical
        job's first submission ended as ``ended`` says (by job name, or ``(name,
        replica)``), with the reason that status comes with; the run's reason and
        ``finishedAt`` set."""
        run_id = await self.run(project, user, name=name, jobs=jobs)
        now = utcnow()
        async with self.db.write() as session:
            for key, job_status in ended.items():
                job_name, replica = key if isinstance(key, tuple) else (key, None)
                where = [Job.run_id == run_id, Job.name == job_name]
                if replica is not None:
                    where.append(Job.replica_num == replica)
                await session.execute(
                    update(Job)
                    .where(*where)
                    .values(
                        status=job_status,
                        termination_reason=JOB_REASONS[job_status].value,
                        finished_at=now,
                    )
                )
            await session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status=status, termination_reason=RUN_REASONS[status].value, finished_at=now
                )
            )
        return run_id

    async def add_submissions(
        self,
        run_id: int,
        count: int,
        *,
        job_num: int = 0,
        replica_num: int = 0,
        step: int = 1,
        last_status: JobStatus = JobStatus.SUBMITTED,
    ) -> list[int]:
        """Append ``count`` submissions to a logical job: all but the last FAILED (retry
        history), the last in ``last_status``. ``step`` > 1 leaves gaps in the numbers.
        Returns the new submission numbers."""
        async with self.db.write() as session:
            lj = await session.get(LogicalJob, (run_id, replica_num, job_num))
            assert lj is not None
            start = lj.latest_submission_num
            nums = [start + step * (i + 1) for i in range(count)]
            now = utcnow()
            rows = [
                {
                    "run_id": run_id,
                    "replica_num": replica_num,
                    "job_num": job_num,
                    "submission_num": num,
                    "name": lj.name,
                    "status": last_status if num == nums[-1] else JobStatus.FAILED,
                    "termination_reason": None
                    if num == nums[-1]
                    else TerminationReason.FAILED_BY_RUNNER.value,
                    "run_attempt": 0,
                    "submitted_at": now,
                    "spec": {},
                }
                for num in nums
            ]
            await session.execute(
                update(Job)
                .where(
                    Job.run_id == run_id,
                    Job.replica_num == replica_num,
                    Job.job_num == job_num,
                    Job.submission_num == start,
                )
                .values(
                    status=JobStatus.FAILED,
                    termination_reason=TerminationReason.FAILED_BY_RUNNER.value,
                )
            )
            await session.execute(insert(Job), rows)
            lj.latest_submission_num = nums[-1]
        return nums


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        expect_errors: bool = False,
    ) -> dict[str, Any]:
        """Run a document; returns the JSON body. Fails the test on unexpected errors."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        response = await self.http.post("/graphql", json=body, headers=headers)
        payload: dict[str, Any] = response.json()
        if not expect_errors:
            assert "errors" not in payload, payload.get("errors")
        return payload

    async def counted(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> tuple[dict[str, Any], StatementRecorder]:
        """Run a document and record the SQL it issued (including the token lookup)."""
        with record_statements() as recorder:
            payload = await self(query, variables, token=token)
        return payload, recorder
