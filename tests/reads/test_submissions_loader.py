"""``Job.submissions`` over big pages: the loader's composite-key lookup stays one bounded
statement whatever the number of logical jobs (runql.db.jobs, SubmissionsByLogicalJobLoader).

Three runs of 4,000 logical jobs (within ``max_jobs_per_run``) used to send 12,000
``(run, replica, job)`` tuples as one ``IN`` list, which PostgreSQL answered with "stack
depth limit exceeded".
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update

from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, TerminationReason
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job, LogicalJob
from runql.db.types import utcnow
from tests.factories import Factory, GraphQLClient

RUNS = 3
JOBS_PER_RUN = 4000

PAGE = """
query Page($runs: Int!) {
  runs(first: $runs) { edges { node { id jobs { jobNum submissions(first: 2) { id } } } } }
}
"""

#: token lookup; runs page; latest jobs of the page; submissions of every logical job.
PAGE_STATEMENTS = 4


async def _retry_every_other_job(db: Database, run_id: int) -> None:
    """Give the even-numbered jobs of ``run_id`` a second submission (the first FAILED),
    in a few set-based statements."""
    retried = list(range(0, JOBS_PER_RUN, 2))
    now = utcnow()
    async with db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.run_id == run_id, Job.job_num % 2 == 0)
            .values(
                status=JobStatus.FAILED,
                termination_reason=TerminationReason.FAILED_BY_RUNNER.value,
            )
        )
        await session.execute(
            insert(Job),
            [
                {
                    "run_id": run_id,
                    "replica_num": 0,
                    "job_num": job_num,
                    "submission_num": 1,
                    "name": f"j{job_num}",
                    "status": JobStatus.SUBMITTED,
                    "run_attempt": 0,
                    "submitted_at": now,
                    "spec": {},
                }
                for job_num in retried
            ],
        )
        await session.execute(
            update(LogicalJob)
            .where(LogicalJob.run_id == run_id, LogicalJob.job_num % 2 == 0)
            .values(latest_submission_num=1)
        )


@pytest.mark.slow
async def test_submissions_of_three_runs_of_4000_jobs_in_a_fixed_number_of_statements(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    jobs = [JobDefinition(f"j{n}") for n in range(JOBS_PER_RUN)]
    run_ids = [await factory.run(project, user, jobs=jobs) for _ in range(RUNS)]
    for run_id in run_ids:
        await _retry_every_other_job(db, run_id)

    body, sql = await gql.counted(PAGE, {"runs": RUNS}, token=user.token)

    assert sql.count == PAGE_STATEMENTS, sql.statements
    edges = body["data"]["runs"]["edges"]
    assert sorted(int(edge["node"]["id"]) for edge in edges) == sorted(run_ids)
    for edge in edges:
        by_num = {job["jobNum"]: job["submissions"] for job in edge["node"]["jobs"]}
        assert sorted(by_num) == list(range(JOBS_PER_RUN))
        for job_num, submissions in by_num.items():
            # Newest first: a retried job shows its retry and the failed first try.
            assert len(submissions) == (2 if job_num % 2 == 0 else 1), job_num
    # Every submission of the page, each once (the runs' 18,000 rows).
    ids = [s["id"] for edge in edges for job in edge["node"]["jobs"] for s in job["submissions"]]
    assert len(ids) == len(set(ids)) == RUNS * (JOBS_PER_RUN + JOBS_PER_RUN // 2)


async def test_submissions_are_the_newest_of_their_own_logical_job(
    factory: Factory, gql: GraphQLClient
) -> None:
    """The rows come back to the right logical job: ids of the first two submissions in
    submission order, newest first, checked against the table."""
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    jobs = [JobDefinition(f"j{n}", replicas=2) for n in range(3)]
    run_id = await factory.run(project, user, jobs=jobs)
    await factory.add_submissions(run_id, 3, job_num=1, replica_num=1, step=2)

    body = await gql(
        """{ runs { edges { node { jobs { jobNum replicaNum
              submissions(first: 2) { submissionNum jobNum replicaNum } } } } } }""",
        token=user.token,
    )

    for job in body["data"]["runs"]["edges"][0]["node"]["jobs"]:
        own = {(s["jobNum"], s["replicaNum"]) for s in job["submissions"]}
        assert own == {(job["jobNum"], job["replicaNum"])}
        nums = [s["submissionNum"] for s in job["submissions"]]
        assert nums == ([6, 4] if (job["jobNum"], job["replicaNum"]) == (1, 1) else [0])
