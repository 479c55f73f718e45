"""Resolvers of a job's fields."""

from __future__ import annotations

from typing import Any

from runql.db.jobs import AnyJob, JobRow
from runql.db.models import Job, Run
from runql.resolvers.checks import parse_id
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, LimitExceeded

MAX_SUBMISSIONS = 100


async def job_by_id(ctx: Context, job_id: str) -> Job | None:
    parsed = parse_id(job_id, "id")
    return None if parsed is None else await ctx.loaders.job_by_id.load(parsed)


async def job_run(ctx: Context, job: AnyJob, *, id_only: bool = False) -> Run:
    """The job's run; ``id_only`` (the selection asks for nothing but ``id``): a run
    holding only its id, without reading it (a runner's claim asks ``run { id }``)."""
    if id_only:
        return Run(id=job.run_id)
    run = await ctx.loaders.run_by_id.load(job.run_id)
    assert run is not None, "a visible job's run is visible"
    return run


async def job_submissions(ctx: Context, job: AnyJob, first: int) -> list[JobRow]:
    if first < 1:
        raise BadInput("first", "must be at least 1")
    if first > MAX_SUBMISSIONS:
        raise LimitExceeded("first", MAX_SUBMISSIONS, first)
    key = (job.run_id, job.replica_num, job.job_num, first)
    jobs: list[JobRow] = await ctx.loaders.submissions_by_logical_job.load(key)
    return jobs


async def job_depends_on(ctx: Context, job: AnyJob) -> list[str]:
    upstream: dict[int, list[str]] = await ctx.loaders.upstream_names_by_run.load(job.run_id)
    return upstream.get(job.job_num, [])


async def job_column(ctx: Context, job: AnyJob, column: str) -> Any:
    return await ctx.loaders.job_column_by_id.load((job.id, column))
