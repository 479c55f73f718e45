"""The runs page: statement-count guards and the fields a UI shows.

The page must cost a fixed number of SQL statements whatever its size and however deep
each logical job's retry history is.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from runql.db.enums import JobStatus, RunStatus, TerminationReason
from runql.db.lifecycle import JobDefinition
from runql.db.models import Run
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

PAGE = """
query Page($first: Int!) {
  runs(first: $first) {
    edges { node {
      id name status statusMessage submittedAt
      project { name } user { name }
      jobCounts { total submitted failed }
      jobs(submissionsLimit: 1) { id name status submissionNum terminationReason exitStatus }
    } }
  }
}
"""

#: token lookup; runs page (joined with users and projects); latest jobs; job counts.
PAGE_STATEMENTS = 4

TWO_JOBS = [JobDefinition("prepare"), JobDefinition("train", replicas=2, depends_on=("prepare",))]


async def _owner(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user, project = await factory.user_in_project()
    return user, project


@pytest.mark.parametrize("runs", [1, 100])
async def test_page_statement_count_does_not_grow_with_page_size(
    factory: Factory, gql: GraphQLClient, runs: int
) -> None:
    user, project = await _owner(factory)
    for _ in range(runs):
        await factory.run(project, user, jobs=TWO_JOBS)

    body, sql = await gql.counted(PAGE, {"first": runs}, token=user.token)

    assert len(body["data"]["runs"]["edges"]) == runs
    assert sql.count == PAGE_STATEMENTS, sql.statements


@pytest.mark.parametrize("submissions", [1, 1000])
async def test_page_statement_count_does_not_grow_with_history(
    factory: Factory, gql: GraphQLClient, submissions: int
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=TWO_JOBS, status=RunStatus.RUNNING)
    for job_num, replica_num in ((0, 0), (1, 0), (1, 1)):
        if submissions > 1:
            await factory.add_submissions(
                run_id,
                submissions - 1,
                job_num=job_num,
                replica_num=replica_num,
                last_status=JobStatus.RUNNING,
            )

    body, sql = await gql.counted(PAGE, {"first": 10}, token=user.token)

    jobs = body["data"]["runs"]["edges"][0]["node"]["jobs"]
    assert [job["submissionNum"] for job in jobs] == [submissions - 1] * 3
    assert sql.count == PAGE_STATEMENTS, sql.statements


@pytest.mark.parametrize("submissions", [2, 1000])
async def test_a_retrying_page_costs_one_more_statement_whatever_the_history(
    factory: Factory, gql: GraphQLClient, submissions: int
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, status=RunStatus.RUNNING)
    await factory.add_submissions(run_id, submissions - 1)  # the last one waits: a retry

    body, sql = await gql.counted(PAGE, {"first": 10}, token=user.token)

    assert body["data"]["runs"]["edges"][0]["node"]["statusMessage"] == "retrying"
    assert sql.count == PAGE_STATEMENTS + 1, sql.statements


async def test_latest_jobs_are_newest_first_within_each_logical_job(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=TWO_JOBS)
    await factory.add_submissions(run_id, 4, job_num=1, replica_num=1, step=3)

    body = await gql(
        """{ runs { edges { node { jobs(submissionsLimit: 3) {
              name replicaNum submissionNum status } } } } }""",
        token=user.token,
    )

    jobs = body["data"]["runs"]["edges"][0]["node"]["jobs"]
    assert [(j["name"], j["replicaNum"], j["submissionNum"]) for j in jobs] == [
        ("prepare", 0, 0),
        ("train", 0, 0),
        ("train", 1, 12),
        ("train", 1, 9),
        ("train", 1, 6),
    ]
    assert jobs[2]["status"] == "SUBMITTED" and jobs[3]["status"] == "FAILED"


async def test_job_submissions_is_one_logical_jobs_history(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user)
    await factory.add_submissions(run_id, 5)

    body = await gql(
        """{ runs { edges { node { jobs { submissionNum
              submissions(first: 3) { submissionNum run { id } } } } } } }""",
        token=user.token,
    )

    job = body["data"]["runs"]["edges"][0]["node"]["jobs"][0]
    assert job["submissionNum"] == 5
    assert [s["submissionNum"] for s in job["submissions"]] == [5, 4, 3]
    assert {s["run"]["id"] for s in job["submissions"]} == {str(run_id)}


async def test_job_counts_and_status_filter(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=TWO_JOBS)
    await factory.set_job(run_id, job_num=0, status=JobStatus.DONE)

    body = await gql(
        """{ runs { edges { node {
              jobCounts { total done blocked submitted }
              jobs(statuses: [BLOCKED]) { name replicaNum } } } } }""",
        token=user.token,
    )

    node = body["data"]["runs"]["edges"][0]["node"]
    assert node["jobCounts"] == {"total": 3, "done": 1, "blocked": 2, "submitted": 0}
    assert node["jobs"] == [{"name": "train", "replicaNum": 0}, {"name": "train", "replicaNum": 1}]


@pytest.mark.parametrize("limit", [0, 101])
async def test_submissions_limit_is_bounded(
    factory: Factory, gql: GraphQLClient, limit: int
) -> None:
    user, project = await _owner(factory)
    await factory.run(project, user)

    body = await gql(
        "query($n: Int!) { runs { edges { node { jobs(submissionsLimit: $n) { id } } } } }",
        {"n": limit},
        token=user.token,
        expect_errors=True,
    )

    assert "submissionsLimit" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] in {"BAD_USER_INPUT", "LIMIT_EXCEEDED"}


STATUS_CASES = [
    (RunStatus.DONE, None, "done"),
    (RunStatus.TERMINATED, TerminationReason.TERMINATED_BY_USER, "stopped by user"),
    (RunStatus.TERMINATED, TerminationReason.ABORTED_BY_USER, "aborted by user"),
    (RunStatus.TERMINATING, None, "stopping"),
    (RunStatus.RUNNING, None, "running"),
    (RunStatus.SUBMITTED, None, "submitted"),
]


@pytest.mark.parametrize(("status", "reason", "message"), STATUS_CASES)
async def test_status_message_follows_the_run(
    factory: Factory,
    gql: GraphQLClient,
    status: RunStatus,
    reason: TerminationReason | None,
    message: str,
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, status=status)
    if reason is not None:
        async with factory.db.write() as session:
            await session.execute(
                update(Run).where(Run.id == run_id).values(termination_reason=reason)
            )

    body = await gql("{ runs { edges { node { statusMessage } } } }", token=user.token)

    assert body["data"]["runs"]["edges"][0]["node"]["statusMessage"] == message


async def test_status_message_says_retrying_when_a_failed_job_was_resubmitted(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, status=RunStatus.RUNNING)
    await factory.add_submissions(run_id, 1)

    body = await gql("{ runs { edges { node { statusMessage } } } }", token=user.token)

    assert body["data"]["runs"]["edges"][0]["node"]["statusMessage"] == "retrying"


async def test_status_message_names_the_failed_job(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=TWO_JOBS, status=RunStatus.FAILED)
    await factory.set_job(
        run_id,
        job_num=0,
        status=JobStatus.FAILED,
        termination_reason=TerminationReason.FAILED_BY_RUNNER.value,
        termination_message="exit status 3",
    )

    body = await gql("{ runs { edges { node { statusMessage } } } }", token=user.token)

    assert body["data"]["runs"]["edges"][0]["node"]["statusMessage"] == (
        "failed: prepare: exit status 3"
    )
