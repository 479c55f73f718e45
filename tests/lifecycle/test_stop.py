"""``stopRuns``: state transitions of runs and jobs, per-item results in request order,
idempotency, permissions (also as ``Run.viewerCanStop``/``viewerCanDelete``), and a
statement count that does not grow with the number of runs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus, TerminationReason
from runql.db.job_effects import finish_stopped_runs
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job, Run
from runql.db.types import utcnow
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

STOP = """
mutation Stop($input: StopRunsInput!) {
  stopRuns(input: $input) {
    results { runId name error { code message } run { id name status statusMessage } }
  }
}
"""

RUN = """
query($id: ID!) {
  run(id: $id) {
    status terminationReason finishedAt statusMessage viewerCanStop viewerCanDelete
    jobs(submissionsLimit: 5) { name submissionNum status terminationReason finishedAt }
  }
}
"""

#: One job per job status: the run as a UI might find it mid-flight.
EVERY_STATUS = [JobDefinition(status.value.lower()) for status in JobStatus]
FINAL_REASONS = {
    JobStatus.TERMINATED: TerminationReason.TERMINATED_BY_USER,
    JobStatus.ABORTED: TerminationReason.UPSTREAM_FAILED,
    JobStatus.FAILED: TerminationReason.FAILED_BY_RUNNER,
    JobStatus.DONE: TerminationReason.DONE_BY_RUNNER,
}


async def _owner(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user, project = await factory.user_in_project()
    return user, project


async def _run_in_every_status(factory: Factory, project: ProjectHandle, user: UserHandle) -> int:
    run_id = await factory.run(project, user, jobs=EVERY_STATUS, status=RunStatus.RUNNING)
    for job_num, status in enumerate(JobStatus):
        reason = FINAL_REASONS.get(status)
        await factory.set_job(
            run_id, job_num, status=status, termination_reason=reason and reason.value
        )
    return run_id


async def _stop(
    gql: GraphQLClient, token: str, ids: list[Any], *, abort: bool = False
) -> list[dict[str, Any]]:
    body = await gql(
        STOP, {"input": {"runIds": [str(i) for i in ids], "abort": abort}}, token=token
    )
    results: list[dict[str, Any]] = body["data"]["stopRuns"]["results"]
    return results


async def _run(gql: GraphQLClient, token: str, run_id: int) -> dict[str, Any]:
    body = await gql(RUN, {"id": str(run_id)}, token=token)
    run: dict[str, Any] = body["data"]["run"]
    return run


def _jobs(run: dict[str, Any]) -> dict[str, tuple[str, str | None, bool]]:
    """Latest submission per job name: (status, reason, has finishedAt)."""
    return {
        j["name"]: (j["status"], j["terminationReason"], j["finishedAt"] is not None)
        for j in run["jobs"]
        if j["submissionNum"]
        == max(k["submissionNum"] for k in run["jobs"] if k["name"] == j["name"])
    }


UNCHANGED_FINAL = {
    "terminated": ("TERMINATED", "TERMINATED_BY_USER", False),
    "aborted": ("ABORTED", "UPSTREAM_FAILED", False),
    "failed": ("FAILED", "FAILED_BY_RUNNER", False),
    "done": ("DONE", "DONE_BY_RUNNER", False),
}


async def test_graceful_stop_ends_unclaimed_jobs_and_lets_running_ones_wind_down(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await _run_in_every_status(factory, project, user)

    (result,) = await _stop(gql, user.token, [run_id])

    assert result["error"] is None
    assert result["run"]["status"] == "TERMINATING"
    assert result["run"]["statusMessage"] == "stopping"
    run = await _run(gql, user.token, run_id)
    assert (run["status"], run["terminationReason"], run["finishedAt"]) == (
        "TERMINATING",
        None,
        None,
    )
    assert _jobs(run) == {
        "blocked": ("TERMINATED", "TERMINATED_BY_USER", True),
        "submitted": ("TERMINATED", "TERMINATED_BY_USER", True),
        "running": ("TERMINATING", None, False),
        "terminating": ("TERMINATING", None, False),
        **UNCHANGED_FINAL,
    }

    # The runners report back; the shared rule then finishes the run.
    async with db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.run_id == run_id, Job.status == JobStatus.TERMINATING)
            .values(status=JobStatus.TERMINATED, finished_at=utcnow())
        )
        assert await finish_stopped_runs(session, [run_id]) == {run_id}
    run = await _run(gql, user.token, run_id)
    assert (run["status"], run["terminationReason"], run["statusMessage"]) == (
        "TERMINATED",
        "TERMINATED_BY_USER",
        "stopped by user",
    )
    assert run["finishedAt"] is not None


async def test_finish_stopped_runs_leaves_runs_with_active_jobs_and_other_statuses(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    winding_down = await _run_in_every_status(factory, project, user)
    running = await factory.run(project, user, status=RunStatus.RUNNING)
    await factory.set_job(running, status=JobStatus.DONE)
    await _stop(gql, user.token, [winding_down])

    async with db.write() as session:
        finished = await finish_stopped_runs(session, [winding_down, running])

    assert finished == set()
    assert (await _run(gql, user.token, winding_down))["status"] == "TERMINATING"
    assert (await _run(gql, user.token, running))["status"] == "RUNNING"


async def test_graceful_stop_of_a_run_nobody_claimed_terminates_it_at_once(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(
        project, user, jobs=[JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    )

    (result,) = await _stop(gql, user.token, [run_id])

    assert result["run"]["status"] == "TERMINATED"
    assert result["run"]["statusMessage"] == "stopped by user"
    run = await _run(gql, user.token, run_id)
    assert (run["terminationReason"], run["finishedAt"] is not None) == ("TERMINATED_BY_USER", True)
    assert set(_jobs(run).values()) == {("TERMINATED", "TERMINATED_BY_USER", True)}
    assert (run["viewerCanStop"], run["viewerCanDelete"]) == (False, True)


@pytest.mark.parametrize("first_graceful", [False, True])
async def test_abort_ends_every_active_job_now(
    factory: Factory, gql: GraphQLClient, first_graceful: bool
) -> None:
    user, project = await _owner(factory)
    run_id = await _run_in_every_status(factory, project, user)
    if first_graceful:  # abort escalates a stop that is still winding down
        await _stop(gql, user.token, [run_id])

    (result,) = await _stop(gql, user.token, [run_id], abort=True)

    assert result["run"]["status"] == "TERMINATED"
    assert result["run"]["statusMessage"] == "aborted by user"
    run = await _run(gql, user.token, run_id)
    assert (run["terminationReason"], run["finishedAt"] is not None) == ("ABORTED_BY_USER", True)
    jobs = _jobs(run)
    graceful_ended = ("TERMINATED", "TERMINATED_BY_USER", True)
    assert jobs == {
        "blocked": graceful_ended if first_graceful else ("ABORTED", "ABORTED_BY_USER", True),
        "submitted": graceful_ended if first_graceful else ("ABORTED", "ABORTED_BY_USER", True),
        "running": ("ABORTED", "ABORTED_BY_USER", True),
        "terminating": ("ABORTED", "ABORTED_BY_USER", True),
        **UNCHANGED_FINAL,
    }


async def test_only_the_latest_submission_changes(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, status=RunStatus.RUNNING)
    await factory.add_submissions(run_id, 3, last_status=JobStatus.RUNNING)

    await _stop(gql, user.token, [run_id], abort=True)

    run = await _run(gql, user.token, run_id)
    history = [(j["submissionNum"], j["status"], j["terminationReason"]) for j in run["jobs"]]
    assert history == [
        (3, "ABORTED", "ABORTED_BY_USER"),
        (2, "FAILED", "FAILED_BY_RUNNER"),
        (1, "FAILED", "FAILED_BY_RUNNER"),
        (0, "FAILED", "FAILED_BY_RUNNER"),
    ]


async def test_stopping_a_stopping_run_again_is_fine_and_changes_nothing(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await _run_in_every_status(factory, project, user)
    await _stop(gql, user.token, [run_id])
    before = await _run(gql, user.token, run_id)

    (again,) = await _stop(gql, user.token, [run_id])

    assert again["error"] is None
    assert again["run"]["status"] == "TERMINATING"
    after = await _run(gql, user.token, run_id)
    assert after == before


async def test_results_come_per_requested_id_in_request_order(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    colleague = await factory.user("bob")
    await factory.member(project, colleague, MemberRole.USER)
    stranger = await factory.user("eve")
    elsewhere = await factory.project("nlp", [(stranger, MemberRole.USER)])
    mine = await factory.run(project, user, name="mine")
    also_mine = await factory.run(project, user, name="also-mine", status=RunStatus.RUNNING)
    theirs = await factory.run(project, colleague, name="theirs")
    finished = await factory.run(project, user, name="finished", status=RunStatus.DONE)
    invisible = await factory.run(elsewhere, stranger, name="invisible")
    deleted = await factory.run(project, user, name="deleted", status=RunStatus.DONE)
    async with db.write() as session:
        await session.execute(update(Run).where(Run.id == deleted).values(deleted=True))
    requested = [also_mine, 999_999, theirs, finished, invisible, deleted, mine, also_mine]
    requested.append(2**70)  # out of range: not found, like any unknown id

    results = await _stop(gql, user.token, requested)

    assert [r["runId"] for r in results] == [str(i) for i in requested]
    codes = [r["error"] and r["error"]["code"] for r in results]
    assert codes == [
        None,
        "NOT_FOUND",
        "FORBIDDEN",
        "ALREADY_FINISHED",
        "NOT_FOUND",
        "NOT_FOUND",
        None,
        None,
        "NOT_FOUND",
    ]
    assert [r["run"] and r["run"]["name"] for r in results] == [
        "also-mine",
        None,
        None,
        None,
        None,
        None,
        "mine",
        "also-mine",
        None,
    ]
    assert [r["name"] for r in results][:4] == ["also-mine", None, "theirs", "finished"]
    messages = {r["error"]["code"]: r["error"]["message"] for r in results if r["error"]}
    assert "project admins and managers" in messages["FORBIDDEN"]
    assert "already finished (DONE)" in messages["ALREADY_FINISHED"]
    assert "not found" in messages["NOT_FOUND"]
    # Nothing happened to the runs that were refused.
    assert (await _run(gql, colleague.token, theirs))["status"] == "SUBMITTED"
    assert (await _run(gql, stranger.token, invisible))["status"] == "SUBMITTED"


async def test_runs_can_be_named_within_a_project(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, name="resnet")

    body = await gql(
        STOP,
        {"input": {"project": "vision", "names": ["nope", "resnet"], "abort": True}},
        token=user.token,
    )

    results = body["data"]["stopRuns"]["results"]
    assert [(r["name"], r["runId"]) for r in results] == [("nope", None), ("resnet", str(run_id))]
    assert results[0]["error"]["code"] == "NOT_FOUND"
    assert results[1]["run"]["status"] == "TERMINATED"


@pytest.mark.parametrize(
    ("stop_input", "code", "field"),
    [
        ({"runIds": ["1"], "names": ["a"], "project": "p"}, "BAD_USER_INPUT", "runIds"),
        ({"names": ["a"]}, "BAD_USER_INPUT", "project"),
        ({"project": "p"}, "BAD_USER_INPUT", "names"),
        ({}, "BAD_USER_INPUT", "project"),
        ({"runIds": [str(i) for i in range(501)]}, "LIMIT_EXCEEDED", "runIds"),
        ({"project": "p", "names": [str(i) for i in range(501)]}, "LIMIT_EXCEEDED", "names"),
    ],
)
async def test_a_wrong_request_is_one_error_naming_the_argument(
    factory: Factory, gql: GraphQLClient, stop_input: dict[str, Any], code: str, field: str
) -> None:
    user, _ = await _owner(factory)

    body = await gql(STOP, {"input": stop_input}, token=user.token, expect_errors=True)

    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (code, field)


@pytest.mark.slow
@pytest.mark.parametrize("abort", [False, True])
async def test_stopping_500_runs_costs_the_statements_of_stopping_one(
    db: Database, factory: Factory, gql: GraphQLClient, abort: bool
) -> None:
    owner = await factory.user("alice")
    manager = await factory.user("mona")
    project = await factory.project("vision", [(owner, MemberRole.USER)])
    await factory.member(project, manager, MemberRole.MANAGER)
    ids = await factory.pipelines(project, owner, 501, prefix="bulk-", running=True)
    query = """mutation($input: StopRunsInput!) { stopRuns(input: $input) { results {
        runId error { code } run { id status statusMessage viewerCanStop jobCounts { total } }
    } } }"""

    counts = []
    for batch in (ids[:1], ids[1:]):
        variables = {"input": {"runIds": [str(i) for i in batch], "abort": abort}}
        body, sql = await gql.counted(query, variables, token=manager.token)
        results = body["data"]["stopRuns"]["results"]
        assert len(results) == len(batch)
        expected = "TERMINATED" if abort else "TERMINATING"
        assert {(r["error"], r["run"]["status"]) for r in results} == {(None, expected)}
        counts.append(sql.count)

    assert counts[0] == counts[1], counts


ROLES_PAGE = "{ runs { edges { node { name viewerCanStop viewerCanDelete } } } }"


@pytest.mark.parametrize(
    ("who", "may"),
    [
        ("submitter", True),
        ("project USER", False),
        ("project MANAGER", True),
        ("project ADMIN", True),
        ("global admin", True),
    ],
)
async def test_who_may_stop_and_delete_matches_viewer_can_fields(
    factory: Factory, gql: GraphQLClient, who: str, may: bool
) -> None:
    owner, project = await _owner(factory)
    if who == "submitter":
        viewer = owner
    elif who == "global admin":
        viewer = await factory.user("root", admin=True)
    else:
        viewer = await factory.user("viewer")
        await factory.member(project, viewer, MemberRole(who.split()[1]))
    active = await factory.run(project, owner, name="active")
    done = await factory.run(project, owner, name="done", status=RunStatus.DONE)

    page = await gql(ROLES_PAGE, token=viewer.token)
    stopped = await _stop(gql, viewer.token, [active])
    deleted = await gql(
        """mutation($ids: [ID!]!) {
             deleteRuns(input: {runIds: $ids}) { results { error { code } } } }""",
        {"ids": [str(done)]},
        token=viewer.token,
    )

    flags = {e["node"]["name"]: e["node"] for e in page["data"]["runs"]["edges"]}
    assert (flags["active"]["viewerCanStop"], flags["active"]["viewerCanDelete"]) == (may, False)
    assert (flags["done"]["viewerCanStop"], flags["done"]["viewerCanDelete"]) == (False, may)
    assert (stopped[0]["error"] and stopped[0]["error"]["code"]) == (None if may else "FORBIDDEN")
    assert deleted["data"]["deleteRuns"]["results"][0]["error"] == (
        None if may else {"code": "FORBIDDEN"}
    )


async def test_viewer_can_fields_cost_one_statement_per_page(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    owner, project = await _owner(factory)
    viewer = await factory.user("mona")
    await factory.member(project, viewer, MemberRole.MANAGER)
    other = await factory.project("nlp", [(owner, MemberRole.USER), (viewer, MemberRole.USER)])
    await factory.pipelines(project, owner, 30, prefix="bulk-", running=True)
    await factory.pipelines(other, owner, 30, prefix="bulk-", running=True)

    _, sql_without = await gql.counted(
        "{ runs(first: 100) { edges { node { name } } } }", token=viewer.token
    )
    body, sql = await gql.counted(
        ROLES_PAGE.replace("runs", "runs(first: 100)"), token=viewer.token
    )

    nodes = [e["node"] for e in body["data"]["runs"]["edges"]]
    assert len(nodes) == 60
    by_project = {n["viewerCanStop"] for n in nodes if n["name"].startswith("bulk")}
    assert by_project == {True, False}  # manager in vision, plain member in nlp
    assert sql.count == sql_without.count + 1, sql.statements
