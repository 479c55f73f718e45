"""runql.db.jobs: the latest-N queries agree with a plain Python computation."""

from __future__ import annotations

import random
from collections import defaultdict

from sqlalchemy import insert, select, update

from runql.db import jobs as job_queries
from runql.db.engine import Database
from runql.db.enums import JobStatus, TerminationReason
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job, LogicalJob
from runql.db.types import utcnow
from tests.factories import Factory

STATUSES = list(JobStatus)


async def _random_history(db: Database, factory: Factory, rng: random.Random) -> list[int]:
    """Runs with several jobs and replicas, random history depths, gaps and statuses."""
    owner = await factory.user()
    project = await factory.project()
    run_ids = []
    for _ in range(6):
        jobs = [JobDefinition(f"job{n}", replicas=rng.randint(1, 3)) for n in range(3)]
        run_ids.append(await factory.run(project, owner, jobs=jobs))
    now = utcnow()
    async with db.write() as session:
        logical = list(
            await session.scalars(select(LogicalJob).where(LogicalJob.run_id.in_(run_ids)))
        )
        rows = []
        for lj in logical:
            num = 0
            for _ in range(rng.randint(0, 12)):
                num += rng.choice([1, 1, 2, 5])  # gaps in submission numbers
                reason = rng.choice([None, TerminationReason.FAILED_BY_RUNNER.value])
                rows.append(
                    {
                        "run_id": lj.run_id,
                        "replica_num": lj.replica_num,
                        "job_num": lj.job_num,
                        "submission_num": num,
                        "name": lj.name,
                        "status": rng.choice(STATUSES),
                        "termination_reason": reason,
                        "run_attempt": 0,
                        "submitted_at": now,
                        "spec": {},
                    }
                )
            lj.latest_submission_num = num
        if rows:
            await session.execute(insert(Job), rows)
        # Some first submissions terminated too, so "latest terminated" can reach back.
        await session.execute(
            update(Job)
            .where(Job.run_id.in_(run_ids[::2]), Job.submission_num == 0)
            .values(termination_reason=TerminationReason.LEASE_EXPIRED.value)
        )
    return run_ids


async def _all_jobs(db: Database, run_ids: list[int]) -> dict[tuple[int, int, int], list[Job]]:
    async with db.read() as session:
        rows = await session.scalars(select(Job).where(Job.run_id.in_(run_ids)))
        history: dict[tuple[int, int, int], list[Job]] = defaultdict(list)
        for job in rows:
            history[(job.run_id, job.replica_num, job.job_num)].append(job)
    for jobs in history.values():
        jobs.sort(key=lambda j: j.submission_num, reverse=True)
    return history


async def test_latest_n_matches_python_on_random_histories(db: Database, factory: Factory) -> None:
    rng = random.Random(2024)
    run_ids = await _random_history(db, factory, rng)
    history = await _all_jobs(db, run_ids)
    page = run_ids[1:5]

    for limit in (1, 2, 3, 5, 20):
        expected = [
            job.id
            for key in sorted(history, key=lambda k: (k[0], k[2], k[1]))
            if key[0] in page
            for job in history[key][:limit]
        ]
        async with db.read() as session:
            got = await job_queries.latest_submissions(session, limit=limit, run_ids=page)
        assert [job.id for job in got] == expected, f"limit={limit}"


async def test_status_filter_applies_to_the_latest_submissions_only(
    db: Database, factory: Factory
) -> None:
    rng = random.Random(7)
    run_ids = await _random_history(db, factory, rng)
    history = await _all_jobs(db, run_ids)
    wanted = (JobStatus.FAILED, JobStatus.DONE)

    async with db.read() as session:
        got = await job_queries.latest_submissions(
            session, limit=3, run_ids=run_ids, statuses=wanted
        )

    expected = {job.id for jobs in history.values() for job in jobs[:3] if job.status in wanted}
    assert {job.id for job in got} == expected
    assert expected, "the random data should contain matching submissions"


async def test_by_logical_job_keys(db: Database, factory: Factory) -> None:
    rng = random.Random(11)
    run_ids = await _random_history(db, factory, rng)
    history = await _all_jobs(db, run_ids)
    keys = sorted(history)[::3]

    async with db.read() as session:
        got = await job_queries.latest_submissions(session, limit=4, keys=keys)

    expected = {job.id for key in keys for job in history[key][:4]}
    assert {job.id for job in got} == expected


async def test_latest_terminated_matches_python(db: Database, factory: Factory) -> None:
    rng = random.Random(99)
    run_ids = await _random_history(db, factory, rng)
    history = await _all_jobs(db, run_ids)

    async with db.read() as session:
        got = await job_queries.latest_terminated(session, run_ids)

    expected = {
        next(job.id for job in jobs if job.termination_reason is not None)
        for jobs in history.values()
        if any(job.termination_reason is not None for job in jobs)
    }
    assert {job.id for job in got} == expected
    assert len(expected) > 5


async def test_job_counts_use_each_logical_jobs_latest_submission(
    db: Database, factory: Factory
) -> None:
    rng = random.Random(5)
    run_ids = await _random_history(db, factory, rng)
    history = await _all_jobs(db, run_ids)

    async with db.read() as session:
        counts = await job_queries.job_counts(session, run_ids)

    expected: dict[int, dict[JobStatus, int]] = defaultdict(lambda: defaultdict(int))
    for (run_id, _, _), jobs in history.items():
        expected[run_id][jobs[0].status] += 1
    assert {r: dict(c) for r, c in counts.items()} == {r: dict(c) for r, c in expected.items()}
