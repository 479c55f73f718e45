"""What completions set off in the run's DAG: unblocking, retry submissions, aborting what
can never run, and the run's status and ``finishedAt``."""

from __future__ import annotations

from typing import Any

from runql.db.engine import Database
from runql.db.enums import JobStatus, RunStatus
from runql.db.lifecycle import JobDefinition
from runql.db.models import LogicalJob
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim, complete, completion, job_rows, run_row, run_state


def _statuses(run: dict[str, Any]) -> dict[str, list[str]]:
    """Latest submission status per job name (replicas in order)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for job in run["jobs"]:
        key = (job["name"], job["replicaNum"])
        if key not in latest or job["submissionNum"] > latest[key]["submissionNum"]:
            latest[key] = job
    out: dict[str, list[str]] = {}
    for (name, _), job in sorted(latest.items()):
        out.setdefault(name, []).append(job["status"])
    return out


async def _finish(
    gql: GraphQLClient, token: str, names: set[str], status: str = "DONE"
) -> list[dict[str, Any]]:
    """Claim everything ready, complete the jobs named ``names``; returns the other claims."""
    claims = await claim(gql, token, limit=100)
    chosen = [c for c in claims if c["job"]["name"] in names]
    results = await complete(gql, token, [completion(c, status, message="boom") for c in chosen])
    assert [r["error"] for r in results] == [None] * len(chosen)
    return [c for c in claims if c["job"]["name"] not in names]


async def test_done_jobs_unblock_downstream_when_every_upstream_replica_is_done(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("prep"),
            JobDefinition("train", replicas=2, depends_on=("prep",)),
            JobDefinition("lint"),
            JobDefinition("report", depends_on=("train", "lint")),
        ],
    )
    assert (await run_state(gql, alice.token, run_id))["status"] == "SUBMITTED"

    claims = await claim(gql, alice.token, limit=100)
    assert sorted(c["job"]["name"] for c in claims) == ["lint", "prep"]
    by_name = {c["job"]["name"]: c for c in claims}
    await complete(gql, alice.token, [completion(by_name["prep"])])
    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "RUNNING"
    assert _statuses(run) == {
        "lint": ["RUNNING"],
        "prep": ["DONE"],
        "report": ["BLOCKED"],
        "train": ["SUBMITTED", "SUBMITTED"],
    }

    train = await claim(gql, alice.token, limit=100)
    await complete(gql, alice.token, [completion(train[0]), completion(by_name["lint"])])
    assert _statuses(await run_state(gql, alice.token, run_id))["report"] == ["BLOCKED"]
    await complete(gql, alice.token, [completion(train[1])])
    assert _statuses(await run_state(gql, alice.token, run_id))["report"] == ["SUBMITTED"]

    (report,) = await claim(gql, alice.token, limit=100)
    await complete(gql, alice.token, [completion(report)])
    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "DONE"
    assert run["statusMessage"] == "done"
    assert run["terminationReason"] == "ALL_JOBS_DONE"
    assert run["finishedAt"] is not None


async def test_failure_with_retries_left_adds_a_submission(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("flaky", retry_limit=2, spec={"cmd": "train"}),
            JobDefinition("eval", depends_on=("flaky",)),
        ],
    )

    await _finish(gql, alice.token, {"flaky"}, "FAILED")

    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "RUNNING"
    assert run["statusMessage"] == "retrying"
    flaky = [j for j in run["jobs"] if j["name"] == "flaky"]
    assert [(j["submissionNum"], j["status"], j["terminationReason"]) for j in flaky] == [
        (1, "SUBMITTED", None),
        (0, "FAILED", "FAILED_BY_RUNNER"),
    ]
    assert flaky[1]["terminationMessage"] == "boom"
    async with db.read() as session:
        logical = await session.get(LogicalJob, (run_id, 0, 0))
        assert logical is not None and logical.latest_submission_num == 1

    # The retry is claimable with the same spec; once DONE it unblocks downstream.
    (retry,) = await claim(gql, alice.token, limit=100)
    assert (retry["job"]["submissionNum"], retry["job"]["spec"]) == (1, {"cmd": "train"})
    await complete(gql, alice.token, [completion(retry)])
    assert _statuses(await run_state(gql, alice.token, run_id)) == {
        "eval": ["SUBMITTED"],
        "flaky": ["DONE"],
    }


async def test_retries_run_out_then_downstream_is_aborted_and_the_run_fails(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("flaky", retry_limit=1),
            JobDefinition("eval", depends_on=("flaky",)),
            JobDefinition("publish", depends_on=("eval",)),  # transitively doomed
            JobDefinition("side"),  # independent: keeps running
            JobDefinition("after-side", depends_on=("side",)),
        ],
    )

    side = await _finish(gql, alice.token, {"flaky"}, "FAILED")  # submission 0: retried
    await _finish(gql, alice.token, {"flaky"}, "FAILED")  # submission 1: for good

    run = await run_state(gql, alice.token, run_id)
    assert _statuses(run) == {
        "after-side": ["BLOCKED"],
        "eval": ["ABORTED"],
        "flaky": ["FAILED"],
        "publish": ["ABORTED"],
        "side": ["RUNNING"],
    }
    assert {j["terminationReason"] for j in run["jobs"] if j["status"] == "ABORTED"} == {
        "UPSTREAM_FAILED"
    }
    assert run["status"] == "RUNNING"  # the independent branch is still runnable
    assert run["finishedAt"] is None

    await complete(gql, alice.token, [completion(side[0])])
    await _finish(gql, alice.token, {"after-side"})

    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "FAILED"
    assert run["terminationReason"] == "JOB_FAILED"
    assert run["statusMessage"] == "failed: flaky: boom"
    assert run["finishedAt"] is not None
    assert len(await job_rows(db, run_id)) == 6  # 5 jobs + one retry


async def test_retry_on_failure_false_fails_at_once(factory: Factory, gql: GraphQLClient) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project, alice, jobs=[JobDefinition("a", retry_limit=5, retry_on_failure=False)]
    )

    await _finish(gql, alice.token, {"a"}, "FAILED")

    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "FAILED"
    assert [j["submissionNum"] for j in run["jobs"]] == [0]


async def test_finished_at_is_set_once(db: Database, factory: Factory, gql: GraphQLClient) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", replicas=2)])
    first, second = await claim(gql, alice.token, limit=2)
    await complete(gql, alice.token, [completion(first)])
    assert (await run_row(db, run_id)).finished_at is None

    await complete(gql, alice.token, [completion(second)])
    finished = (await run_row(db, run_id)).finished_at
    await complete(gql, alice.token, [completion(second), completion(first)])  # repeats

    run = await run_row(db, run_id)
    assert run.status == RunStatus.DONE
    assert finished is not None and run.finished_at == finished


async def test_a_stopping_run_ends_terminated_whatever_its_jobs_report(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("a", retry_limit=3),
            JobDefinition("b"),
            JobDefinition("c", depends_on=("a",)),
        ],
    )
    claims = await claim(gql, alice.token, limit=10)
    by_name = {c["job"]["name"]: c for c in claims}
    stop = await gql(
        "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { run { status } } } }",
        {"id": str(run_id)},
        token=alice.token,
    )
    assert stop["data"]["stopRuns"]["results"][0]["run"]["status"] == "TERMINATING"

    (failed,) = await complete(gql, alice.token, [completion(by_name["a"], "FAILED")])
    assert failed["job"]["status"] == "TERMINATED"
    assert (await run_row(db, run_id)).status == RunStatus.TERMINATING  # b still running
    (done,) = await complete(gql, alice.token, [completion(by_name["b"])])
    assert done["job"]["status"] == "TERMINATED"

    run = await run_state(gql, alice.token, run_id)
    assert run["status"] == "TERMINATED"
    assert run["statusMessage"] == "stopped by user"
    assert run["finishedAt"] is not None
    # No retry was added for the failure, nothing was unblocked.
    assert [(r.name, r.status) for r in await job_rows(db, run_id)] == [
        ("a", JobStatus.TERMINATED),
        ("b", JobStatus.TERMINATED),
        ("c", JobStatus.TERMINATED),
    ]
