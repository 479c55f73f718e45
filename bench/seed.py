"""Fast, set-based seeding: Core ``insert()`` executemany in large chunks.

The rows mirror what ``runql.db.lifecycle.insert_run`` writes (a ``runs`` row, one
``logical_jobs`` row per ``(run, replica, job)`` and one ``jobs`` row per submission) so
the service reads exactly the shapes it would have written itself; only the ORM's
per-object bookkeeping is skipped, which turns minutes of seeding into seconds. Users go
through ``runql.db.accounts.create_user`` so their tokens work like real ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, insert, literal, null, select, true, update

from runql.db.accounts import create_user
from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus, TerminationReason
from runql.db.models import Job, LogicalJob, Member, Project, Run
from runql.db.types import JSONDocument, UTCDateTime, utcnow

CHUNK = 10_000
PAGE = 50


@dataclass(frozen=True)
class BenchUser:
    id: int
    name: str
    token: str


@dataclass
class Seeded:
    """What the runs-page scenarios need to know about the data they query."""

    member: BenchUser
    admin: BenchUser
    project_ids: list[int]
    #: Newest first: the first ``PAGE`` are the runs of ``runs(first: 50)``.
    run_ids: list[int]
    jobs_per_run: int
    depth: int = 1
    page_run_ids: list[int] = field(default_factory=list)


def run_spec(i: int) -> dict[str, Any]:
    """A realistic ~20 KB run configuration (env, commands, resources)."""
    return {
        "name": f"train-{i}",
        "image": "ghcr.io/example/trainer:2024.06-cuda12.4-py3.11",
        "env": {f"TRAINER_SETTING_{k:03d}": f"value-{i}-{k}-" + "x" * 60 for k in range(120)},
        "commands": [
            f"python -m trainer.step --run {i} --stage {k} --checkpoint-dir /ckpt/{i}/{k}"
            for k in range(110)
        ],
        "resources": {"gpu": {"name": "A100", "count": 8, "memory": "80GB"}, "cpu": 96},
    }


def run_summary(i: int) -> dict[str, Any]:
    """A realistic ~5 KB summary (final metrics)."""
    return {f"eval/metric_{k:03d}": i * 0.001 + k * 0.5 for k in range(190)}


JOB_SPEC = {"commands": ["python -m trainer.step"], "image": "python:3.11"}


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


async def insert_rows(db: Database, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows with executemany, a transaction per chunk."""
    for chunk in _chunks(rows):
        async with db.write() as session:
            await session.execute(insert(getattr(table, "__table__", table)), list(chunk))


async def create_bench_user(db: Database, name: str, *, admin: bool = False) -> BenchUser:
    async with db.write() as session:
        user, token = await create_user(session, name, admin=admin)
        user_id = user.id
    return BenchUser(user_id, name, token)


async def create_projects(
    db: Database, prefix: str, count: int, members: Sequence[BenchUser]
) -> list[int]:
    """``count`` projects named ``<prefix>-<n>``, every one with ``members`` as USER."""
    names = [f"{prefix}-{n:05d}" for n in range(count)]
    await insert_rows(db, Project, [{"name": name, "created_at": utcnow()} for name in names])
    async with db.read() as session:
        rows = await session.execute(
            select(Project.id, Project.name).where(Project.name.in_(names))
        )
        by_name = {row.name: row.id for row in rows}
    ids = [by_name[name] for name in names]
    await insert_rows(
        db,
        Member,
        [
            {"user_id": user.id, "project_id": project_id, "role": MemberRole.USER}
            for user in members
            for project_id in ids
        ],
    )
    return ids


def job_row(
    run_id: int,
    job_num: int,
    submission_num: int,
    status: JobStatus,
    submitted_at: dt.datetime,
    *,
    replica_num: int = 0,
) -> dict[str, Any]:
    finished = status in (JobStatus.DONE, JobStatus.FAILED)
    reason = {
        JobStatus.DONE: TerminationReason.DONE_BY_RUNNER,
        JobStatus.FAILED: TerminationReason.FAILED_BY_RUNNER,
    }.get(status)
    return {
        "run_id": run_id,
        "replica_num": replica_num,
        "job_num": job_num,
        "submission_num": submission_num,
        "name": f"step-{job_num}",
        "status": status,
        "termination_reason": reason,
        "termination_message": "exit status 1" if status == JobStatus.FAILED else None,
        "exit_status": (0 if status == JobStatus.DONE else 1) if finished else None,
        "runner_name": "runner-1" if status != JobStatus.SUBMITTED else None,
        "run_attempt": 0,
        "submitted_at": submitted_at,
        "started_at": submitted_at if status != JobStatus.SUBMITTED else None,
        "finished_at": submitted_at if finished else None,
        "spec": JOB_SPEC,
    }


def logical_job_row(
    run_id: int, job_num: int, latest: int, *, replica_num: int = 0
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "replica_num": replica_num,
        "job_num": job_num,
        "name": f"step-{job_num}",
        "latest_submission_num": latest,
        "retry_limit": 10_000,
        "retry_on_failure": True,
        "retry_on_lease_expiry": True,
    }


async def seed_runs(
    db: Database,
    *,
    runs: int = 1000,
    projects: int = 1000,
    jobs_per_run: int = 4,
) -> Seeded:
    """``runs`` runs spread over ``projects`` projects of which the member is a member
    of all; the newest ``PAGE`` runs are RUNNING, the rest DONE. Every run has a ~20 KB
    spec, a ~5 KB summary and ``jobs_per_run`` logical jobs with one submission each."""
    member = await create_bench_user(db, "bench-member")
    admin = await create_bench_user(db, "bench-admin", admin=True)
    project_ids = await create_projects(db, "bench", projects, [member])
    start = utcnow() - dt.timedelta(days=30)
    run_rows = []
    for i in range(runs):
        running = i >= runs - PAGE
        run_rows.append(
            {
                "project_id": project_ids[i % len(project_ids)],
                "user_id": member.id,
                "name": f"run-{i:05d}",
                "status": RunStatus.RUNNING if running else RunStatus.DONE,
                "termination_reason": None if running else TerminationReason.ALL_JOBS_DONE,
                "priority": 0,
                "attempt": 0,
                "deleted": False,
                "submitted_at": start + dt.timedelta(minutes=i),
                "finished_at": None if running else start + dt.timedelta(minutes=i + 1),
                "spec": run_spec(i),
                "summary": run_summary(i),
                "system_metrics": None,
            }
        )
    await insert_rows(db, Run, run_rows)
    async with db.read() as session:
        run_ids = list(
            await session.scalars(select(Run.id).order_by(Run.submitted_at.desc(), Run.id.desc()))
        )
    page = set(run_ids[:PAGE])
    logical_rows = []
    job_rows = []
    for run_id, row in zip(reversed(run_ids), run_rows, strict=True):
        status = JobStatus.RUNNING if run_id in page else JobStatus.DONE
        for job_num in range(jobs_per_run):
            logical_rows.append(logical_job_row(run_id, job_num, 0))
            job_rows.append(job_row(run_id, job_num, 0, status, row["submitted_at"]))
    await insert_rows(db, LogicalJob, logical_rows)
    await insert_rows(db, Job, job_rows)
    return Seeded(
        member=member,
        admin=admin,
        project_ids=project_ids,
        run_ids=run_ids,
        jobs_per_run=jobs_per_run,
        page_run_ids=run_ids[:PAGE],
    )


def latest_status(run_id: int, job_num: int) -> JobStatus:
    """Status of the newest submission of a logical job with past failures: the first job
    of every even-numbered run waits for its retry (so the page asks for "retrying"),
    the rest run."""
    return JobStatus.SUBMITTED if job_num == 0 and run_id % 2 == 0 else JobStatus.RUNNING


async def deepen(db: Database, seeded: Seeded, depth: int) -> int:
    """Give every logical job of the page's runs ``depth`` submissions: the older ones
    FAILED (retried), the newest running or waiting for its retry (see
    :func:`latest_status`). One ``INSERT ... SELECT`` over a generated series writes the
    history inside the database. Returns the rows added."""
    if depth <= seeded.depth:
        return 0
    previous_latest = seeded.depth - 1
    latest = depth - 1
    page = seeded.page_run_ids
    now = utcnow()
    failed = {
        "status": JobStatus.FAILED,
        "termination_reason": TerminationReason.FAILED_BY_RUNNER,
        "termination_message": "exit status 1",
        "exit_status": 1,
        "finished_at": now,
    }
    series = select(literal(previous_latest + 1).label("n")).cte("series", recursive=True)
    series = series.union_all(select(series.c.n + 1).where(series.c.n < latest))
    lj = LogicalJob.__table__.alias("lj")
    is_latest = series.c.n == latest
    waits = and_(is_latest, lj.c.job_num == 0, lj.c.run_id % 2 == 0)
    history = (
        select(
            lj.c.run_id,
            lj.c.replica_num,
            lj.c.job_num,
            series.c.n,
            lj.c.name,
            case(
                (waits, literal(JobStatus.SUBMITTED.value)),
                (is_latest, literal(JobStatus.RUNNING.value)),
                else_=literal(JobStatus.FAILED.value),
            ),
            case((is_latest, null()), else_=literal(TerminationReason.FAILED_BY_RUNNER.value)),
            case((is_latest, null()), else_=literal("exit status 1")),
            case((is_latest, null()), else_=literal(1)),
            case((waits, null()), else_=literal("runner-1")),
            literal(0),
            literal(now, UTCDateTime),
            case((waits, null()), else_=literal(now, UTCDateTime)),
            case((is_latest, null()), else_=literal(now, UTCDateTime)),
            literal(JOB_SPEC, JSONDocument),
        )
        .select_from(lj.join(series, true()))
        .where(lj.c.run_id.in_(page))
    )
    columns = [
        "run_id", "replica_num", "job_num", "submission_num", "name", "status",
        "termination_reason", "termination_message", "exit_status", "runner_name",
        "run_attempt", "submitted_at", "started_at", "finished_at", "spec",
    ]  # fmt: skip
    async with db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.run_id.in_(page), Job.submission_num == previous_latest)
            .values(**failed)
        )
        await session.execute(insert(Job.__table__).from_select(columns, history))
        await session.execute(
            update(LogicalJob)
            .where(LogicalJob.run_id.in_(page))
            .values(latest_submission_num=latest)
        )
    added = len(page) * seeded.jobs_per_run * (depth - seeded.depth)
    seeded.depth = depth
    return added


async def insert_year_old_runs(
    db: Database,
    *,
    project_id: int,
    user_id: int,
    prefix: str,
    count: int,
    jobs_per_run: int,
    status: RunStatus,
    termination_reason: TerminationReason | None = None,
) -> tuple[list[int], dt.datetime]:
    """``count`` runs (light spec) with ``jobs_per_run`` logical jobs each and no job rows
    yet, submitted a year ago so they never reach the first runs page (finished a minute
    later when ``termination_reason`` is given). Returns their ids in creation order and
    the first one's submission time."""
    start = utcnow() - dt.timedelta(days=365)
    names = [f"{prefix}-{i:05d}" for i in range(count)]
    finished = termination_reason is not None
    await insert_rows(
        db,
        Run,
        [
            {
                "project_id": project_id,
                "user_id": user_id,
                "name": name,
                "status": status,
                "termination_reason": termination_reason.value if finished else None,
                "submitted_at": start + dt.timedelta(seconds=i),
                "finished_at": start + dt.timedelta(seconds=i + 60) if finished else None,
                "spec": {"name": name},
            }
            for i, name in enumerate(names)
        ],
    )
    run_ids = await run_ids_by_name(db, project_id, names)
    await insert_rows(
        db,
        LogicalJob,
        [logical_job_row(run_id, j, 0) for run_id in run_ids for j in range(jobs_per_run)],
    )
    return run_ids, start


async def seed_active_runs(
    db: Database,
    *,
    project_id: int,
    user_id: int,
    prefix: str,
    count: int,
    jobs_per_run: int = 4,
) -> list[int]:
    """``count`` RUNNING runs whose jobs are RUNNING (``insert_year_old_runs``)."""
    run_ids, start = await insert_year_old_runs(
        db,
        project_id=project_id,
        user_id=user_id,
        prefix=prefix,
        count=count,
        jobs_per_run=jobs_per_run,
        status=RunStatus.RUNNING,
    )
    await insert_rows(
        db,
        Job,
        [
            job_row(run_id, j, 0, JobStatus.RUNNING, start)
            for run_id in run_ids
            for j in range(jobs_per_run)
        ],
    )
    return run_ids


async def run_ids_by_name(db: Database, project_id: int, names: list[str]) -> list[int]:
    """The ids of ``project_id``'s runs called ``names``, in that order (rows inserted in
    bulk do not return their ids on every backend)."""
    async with db.read() as session:
        rows = await session.execute(
            select(Run.id, Run.name).where(Run.project_id == project_id, Run.name.in_(names))
        )
        by_name = {row.name: row.id for row in rows}
    return [by_name[name] for name in names]
