"""Demo data for a newcomer's first look: users, projects, ~30 runs in every status.

Demo users get fixed, well-known tokens so ``make run`` can print working tokens every
time it starts. They are for a local demo database only: never load demo data into a
database other people can reach.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.accounts import count_users, create_project, create_user, hash_token
from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus, TerminationReason
from runql.db.lifecycle import JobDefinition, insert_run
from runql.db.models import Job, LogicalJob, Run, User
from runql.db.types import utcnow

DEMO_USERS = {
    "admin": ("rql_demo_admin_token", True),
    "alice": ("rql_demo_alice_token", False),
    "bob": ("rql_demo_bob_token", False),
}

_FINAL_JOB = {
    RunStatus.DONE: (JobStatus.DONE, TerminationReason.DONE_BY_RUNNER),
    RunStatus.FAILED: (JobStatus.FAILED, TerminationReason.FAILED_BY_RUNNER),
    RunStatus.TERMINATED: (JobStatus.TERMINATED, TerminationReason.TERMINATED_BY_USER),
}


def _spec(rng: random.Random, name: str) -> dict[str, Any]:
    return {
        "image": rng.choice(["python:3.11", "pytorch/pytorch:2.3-cuda12", "ghcr.io/acme/etl:1.4"]),
        "commands": [f"python {name}.py --epochs {rng.randint(1, 50)}"],
        "resources": {"cpu": rng.choice([2, 4, 8]), "memory": f"{rng.choice([8, 16, 64])}GB"},
        "env": {"SEED": str(rng.randint(0, 9999))},
    }


def _summary(rng: random.Random) -> dict[str, Any]:
    return {"loss": round(rng.uniform(0.05, 2.0), 4), "accuracy": round(rng.uniform(0.5, 0.99), 4)}


async def load_demo(db: Database, *, if_empty: bool = False) -> dict[str, str] | None:
    """Load the demo data; returns the demo tokens, or None if skipped (non-empty db)."""
    async with db.write() as session:
        if if_empty and await count_users(session) > 0:
            return None
        await _load(session)
    return {name: token for name, (token, _) in DEMO_USERS.items()}


async def demo_tokens(db: Database) -> dict[str, str]:
    """Demo tokens that still work in this database (for printing on start)."""
    async with db.read() as session:
        hashes = set(
            await session.scalars(select(User.token_hash).where(User.name.in_(list(DEMO_USERS))))
        )
    return {name: tok for name, (tok, _) in DEMO_USERS.items() if hash_token(tok) in hashes}


async def _load(session: AsyncSession) -> None:
    rng = random.Random(7)
    users = {}
    for name, (token, admin) in DEMO_USERS.items():
        users[name], _ = await create_user(session, name, admin=admin, token=token)
    vision = await create_project(
        session, "vision", [("alice", MemberRole.ADMIN), ("bob", MemberRole.USER)]
    )
    nlp = await create_project(session, "nlp", [("alice", MemberRole.USER)])
    infra = await create_project(session, "infra", [])
    start = utcnow() - dt.timedelta(days=3)
    statuses = list(RunStatus)
    for i in range(30):
        project = [vision, nlp, infra][i % 3]
        user = users[["alice", "bob", "admin"][i % 3]]
        status = statuses[i % len(statuses)]
        dag = i % 4 == 0
        jobs = (
            [
                JobDefinition("prepare", spec=_spec(rng, "prepare")),
                JobDefinition(
                    "train",
                    replicas=2,
                    depends_on=("prepare",),
                    retry_limit=3,
                    spec=_spec(rng, "train"),
                ),
                JobDefinition("evaluate", depends_on=("train",), spec=_spec(rng, "evaluate")),
            ]
            if dag
            else [JobDefinition("main", retry_limit=2, spec=_spec(rng, "main"))]
        )
        run = await insert_run(
            session,
            project_id=project.id,
            user_id=user.id,
            name=f"{['resnet', 'bert', 'etl', 'sweep', 'llama'][i % 5]}-{i:02d}",
            jobs=jobs,
            spec={"description": f"demo run {i}", "jobs": [j.name for j in jobs]},
            priority=i % 3,
            submitted_at=start + dt.timedelta(hours=2 * i),
        )
        await _shape(session, run, status, rng, retries=3 if i == 1 else 0)


async def _shape(
    session: AsyncSession, run: Run, status: RunStatus, rng: random.Random, retries: int
) -> None:
    """Move a freshly inserted run and its jobs into ``status`` with plausible details."""
    now = run.submitted_at + dt.timedelta(minutes=5)
    jobs = list(await session.scalars(select(Job).where(Job.run_id == run.id)))
    values: dict[str, Any] = {"status": status}
    if status in _FINAL_JOB:
        job_status, reason = _FINAL_JOB[status]
        values["finished_at"] = now + dt.timedelta(minutes=30)
        values["summary"] = _summary(rng)
        values["system_metrics"] = {"gpu_util": round(rng.uniform(0.2, 0.99), 2)}
        if status == RunStatus.TERMINATED:
            values["termination_reason"] = TerminationReason.TERMINATED_BY_USER
        if status == RunStatus.FAILED:
            values["termination_reason"] = TerminationReason.JOB_FAILED
        for job in jobs:
            failed_here = status == RunStatus.FAILED and job.status == JobStatus.SUBMITTED
            if status == RunStatus.FAILED and not failed_here:
                job.status, job.termination_reason = JobStatus.ABORTED, "UPSTREAM_FAILED"
            else:
                job.status, job.termination_reason = job_status, reason
            job.started_at, job.finished_at = now, now + dt.timedelta(minutes=20)
            job.runner_name = "runner-1"
            job.exit_status = 1 if failed_here else (0 if status == RunStatus.DONE else None)
            if failed_here:
                job.termination_message = "exit status 1: CUDA out of memory"
            if status == RunStatus.DONE:
                job.result = {"artifacts": [f"s3://demo/{run.name}/{job.name}.tar"]}
    elif status in (RunStatus.RUNNING, RunStatus.TERMINATING):
        for job in jobs:
            if job.status == JobStatus.SUBMITTED:
                job.status = JobStatus(status.value)
                job.started_at, job.runner_name = now, "runner-2"
                job.lease_expires_at = utcnow() + dt.timedelta(days=365)
    await session.execute(update(Run).where(Run.id == run.id).values(**values))
    await session.flush()
    if retries:
        await _add_retries(session, run, jobs[0], retries, now)


async def _add_retries(
    session: AsyncSession, run: Run, job: Job, retries: int, now: dt.datetime
) -> None:
    """Give one logical job a history: ``retries`` failed tries, then a waiting retry."""
    job.status, job.termination_reason = JobStatus.FAILED, TerminationReason.FAILED_BY_RUNNER
    job.termination_message, job.exit_status = "exit status 137: killed", 137
    job.started_at, job.finished_at = now, now + dt.timedelta(minutes=1)
    for n in range(1, retries + 1):
        last = n == retries
        session.add(
            Job(
                run_id=run.id,
                replica_num=job.replica_num,
                job_num=job.job_num,
                submission_num=n,
                name=job.name,
                status=JobStatus.SUBMITTED if last else JobStatus.FAILED,
                termination_reason=None if last else TerminationReason.FAILED_BY_RUNNER,
                termination_message=None if last else "exit status 137: killed",
                exit_status=None if last else 137,
                submitted_at=now + dt.timedelta(minutes=2 * n),
                spec={"retry": n},
            )
        )
    await session.execute(
        update(LogicalJob)
        .where(
            LogicalJob.run_id == run.id,
            LogicalJob.job_num == job.job_num,
            LogicalJob.replica_num == job.replica_num,
        )
        .values(latest_submission_num=retries)
    )
    await session.flush()
