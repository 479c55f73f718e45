"""Exactly once under concurrency: 8 simulated runners drive a 500-job DAG through the
ASGI app with batched claims and completions, on SQLite and on PostgreSQL.

Each runner claims a random number of jobs, sometimes renews them, and completes them in
one or two batches. The test records every claim and every accepted completion and
checks them against the final state: no job handed to two runners, every job completed
exactly once, the run DONE.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from runql.db.engine import Database
from runql.db.enums import JobStatus, RunStatus
from runql.db.lifecycle import JobDefinition
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim, complete, completion, job_rows, renew, run_row

RUNNERS = 8


def _dag() -> list[JobDefinition]:
    """1 root, 50 x 4 replicas, 49 x 6 replicas (each waiting for two of the previous
    stage), 5 sink replicas waiting for all of those: 500 jobs."""
    jobs = [JobDefinition("root")]
    jobs += [JobDefinition(f"s1-{i}", replicas=4, depends_on=("root",)) for i in range(50)]
    jobs += [
        JobDefinition(f"s2-{i}", replicas=6, depends_on=(f"s1-{i}", f"s1-{i + 1}"))
        for i in range(49)
    ]
    jobs.append(JobDefinition("sink", replicas=5, depends_on=tuple(f"s2-{i}" for i in range(49))))
    assert sum(job.replicas for job in jobs) == 500
    return jobs


@pytest.mark.slow
async def test_eight_runners_complete_a_500_job_dag_exactly_once(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=_dag())
    claimed: list[tuple[str, str]] = []  # (job id, runner)
    completed: list[str] = []

    async def runner(name: str, seed: int) -> None:
        rng = random.Random(seed)
        idle = 0
        while True:
            claims = await claim(gql, alice.token, limit=rng.randint(1, 40), runner=name)
            claimed.extend((c["job"]["id"], name) for c in claims)
            if not claims:
                if (await run_row(db, run_id)).status == RunStatus.DONE:
                    return
                idle += 1
                assert idle < 2000, "runners starved: the DAG stopped making progress"
                await asyncio.sleep(0.002)
                continue
            idle = 0
            if rng.random() < 0.3:
                renewals = await renew(gql, alice.token, claims)
                assert all(r["error"] is None and not r["mustStop"] for r in renewals)
            split = rng.randint(0, len(claims))
            for batch in (claims[:split], claims[split:]):
                if not batch:
                    continue
                results = await complete(gql, alice.token, [completion(c) for c in batch])
                assert [r["error"] for r in results] == [None] * len(batch)
                assert {r["job"]["status"] for r in results} == {"DONE"}
                completed.extend(r["jobId"] for r in results)

    await asyncio.gather(*(runner(f"runner-{i}", i) for i in range(RUNNERS)))

    rows = await job_rows(db, run_id)
    assert len(rows) == 500  # no retries, nothing doubled
    assert {row.status for row in rows} == {JobStatus.DONE}
    ids = {str(row.id) for row in rows}
    claims_per_job = Counter(job_id for job_id, _ in claimed)
    assert set(claims_per_job) == ids and set(claims_per_job.values()) == {1}
    completions_per_job = Counter(completed)
    assert set(completions_per_job) == ids and set(completions_per_job.values()) == {1}
    # The runner that claimed a job is the one recorded on it.
    runner_of = dict(claimed)
    assert all(row.runner_name == runner_of[str(row.id)] for row in rows)
    assert len({name for _, name in claimed}) > 1  # the work was actually shared
    run = await run_row(db, run_id)
    assert run.status == RunStatus.DONE and run.finished_at is not None
    assert run.termination_reason == "ALL_JOBS_DONE"


async def test_racing_duplicate_completions_apply_once(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """The same completion sent by several requests at once (a runner retrying on a
    timeout): one applies, the others are answered with the same job, one retry row."""
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project, alice, jobs=[JobDefinition("a", replicas=20, retry_limit=2)]
    )
    claims = await claim(gql, alice.token, limit=20)
    items = [completion(c, "FAILED", message="flaky") for c in claims]

    answers: list[list[dict[str, Any]]] = await asyncio.gather(
        *(complete(gql, alice.token, random.Random(i).sample(items, len(items))) for i in range(6))
    )

    for results in answers:
        assert all(r["error"] is None and r["job"]["status"] == "FAILED" for r in results)
    rows = await job_rows(db, run_id)
    assert Counter((r.submission_num, r.status) for r in rows) == {
        (0, JobStatus.FAILED): 20,
        (1, JobStatus.SUBMITTED): 20,
    }
