"""``completeJobs``: per-item results in request order (applied, repeated, stale, not
found, invalid), idempotency, items that never roll back each other, and a statement count
that does not grow with the batch."""

from __future__ import annotations

from typing import Any

from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus
from runql.db.lifecycle import JobDefinition
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import (
    COMPLETE,
    claim,
    complete,
    completion,
    job_rows,
    run_row,
)


async def _setup(factory: Factory, replicas: int = 4) -> tuple[Any, Any, int]:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("shard", replicas=replicas)])
    return alice, project, run_id


async def test_done_completion_applies_and_is_returned(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, _, run_id = await _setup(factory, replicas=1)
    (c,) = await claim(gql, alice.token, limit=1)

    (result,) = await complete(
        gql, alice.token, [completion(c, exitStatus=0, message="ok", result={"loss": 0.1})]
    )

    assert result == {
        "jobId": c["job"]["id"],
        "job": {
            "id": c["job"]["id"],
            "status": "DONE",
            "terminationReason": "DONE_BY_RUNNER",
            "terminationMessage": "ok",
            "exitStatus": 0,
        },
        "error": None,
    }
    body = await gql(
        "query($id: ID!) { job(id: $id) { result finishedAt leaseExpiresAt } }",
        {"id": c["job"]["id"]},
        token=alice.token,
    )
    assert body["data"]["job"]["result"] == {"loss": 0.1}
    assert body["data"]["job"]["finishedAt"] is not None
    assert body["data"]["job"]["leaseExpiresAt"] is None
    run = await run_row(db, run_id)
    assert run.status == RunStatus.DONE and run.finished_at is not None


async def test_mixed_batch_applies_the_valid_items_and_answers_the_others(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, _, run_id = await _setup(factory, replicas=4)
    bob = await factory.user("bob")
    secret = await factory.project("secret", [(bob, MemberRole.USER)])
    foreign_run = await factory.run(secret, bob)
    (foreign,) = await claim(gql, bob.token, limit=1)
    claims = await claim(gql, alice.token, limit=4)
    first, second, third, fourth = claims
    (already,) = await complete(gql, alice.token, [completion(first)])
    assert already["error"] is None
    before = {
        row.id: (row.status, row.termination_reason, row.finished_at)
        for row in await job_rows(db, run_id)
    }

    items = [
        completion(second, "FAILED", message="oom"),  # valid
        completion(first),  # duplicate of an applied completion: success, not re-applied
        {**completion(third), "claimToken": "rqc_not-the-token"},  # stale
        completion(foreign),  # a job in a project alice cannot see
        {"jobId": "987654321", "claimToken": "x", "status": "DONE"},  # unknown
        completion(first, "FAILED"),  # contradicts the applied completion
        completion(fourth, result=[1, 2]),  # result must be an object
        completion(third),  # valid: the stale item above changed nothing
    ]
    results = await complete(gql, alice.token, items)

    codes = [r["error"]["code"] if r["error"] else r["job"]["status"] for r in results]
    assert codes == [
        "FAILED",
        "DONE",
        "STALE_CLAIM",
        "NOT_FOUND",
        "NOT_FOUND",
        "INVALID_STATE",
        "BAD_USER_INPUT",
        "DONE",
    ]
    assert [r["jobId"] for r in results] == [i["jobId"] for i in items]
    assert "completions[6].result" in results[6]["error"]["message"]
    assert all(r["job"] is None for r in results if r["error"])
    after = {row.id: row for row in await job_rows(db, run_id)}
    ids = [int(c["job"]["id"]) for c in claims]
    # The repeated completion was answered, not applied again (same finish time).
    first_row = after[ids[0]]
    assert (first_row.status, first_row.termination_reason, first_row.finished_at) == (
        before[ids[0]]
    )
    assert after[ids[1]].status == JobStatus.FAILED
    assert after[ids[2]].status == JobStatus.DONE
    assert after[ids[3]].status == JobStatus.RUNNING  # its only item was refused
    assert after[ids[3]].finished_at is None
    assert len(after) == 4  # no retry (retry_limit 0), nothing else added
    # The other user's job was not touched.
    (foreign_row,) = await job_rows(db, foreign_run)
    assert foreign_row.status == JobStatus.RUNNING


async def test_repeated_completion_is_idempotent(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project, alice, jobs=[JobDefinition("a", retry_limit=3), JobDefinition("b")]
    )
    claims = await claim(gql, alice.token, limit=2)
    items = [completion(claims[0], "FAILED", message="boom"), completion(claims[1])]

    first = await complete(gql, alice.token, items)
    rows_after_first = [(r.id, r.status, r.submission_num) for r in await job_rows(db, run_id)]
    second = await complete(gql, alice.token, items)
    in_one_batch = await complete(gql, alice.token, items + items)

    assert [r["error"] for r in first + second + in_one_batch] == [None] * 8
    assert first == second == in_one_batch[:2] == in_one_batch[2:]
    # One retry submission, not one per repeat.
    assert [(r.id, r.status, r.submission_num) for r in await job_rows(db, run_id)] == (
        rows_after_first
    )
    assert [s for _, s, _ in rows_after_first] == [
        JobStatus.FAILED,
        JobStatus.SUBMITTED,
        JobStatus.DONE,
    ]


async def test_duplicate_items_in_one_batch_apply_once(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", retry_limit=3)])
    (c,) = await claim(gql, alice.token, limit=1)

    results = await complete(
        gql, alice.token, [completion(c, "FAILED"), completion(c, "FAILED"), completion(c)]
    )

    assert [r["error"] and r["error"]["code"] for r in results] == [None, None, "INVALID_STATE"]
    assert [r.submission_num for r in await job_rows(db, run_id)] == [0, 1]


async def test_a_forged_token_after_the_valid_completion_in_one_batch_is_stale(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """The token is checked before the "already applied in this batch" repeat check: a
    forged item right after the job's valid completion is refused, whatever it reports,
    not answered as the applied job (nor as a contradiction of it)."""
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", retry_limit=3)])
    (c,) = await claim(gql, alice.token, limit=1)
    forged = {"claimToken": "rqc_forged"}

    results = await complete(
        gql,
        alice.token,
        [
            completion(c, "FAILED"),
            {**completion(c, "FAILED"), **forged},
            {**completion(c, "DONE"), **forged},
            completion(c, "FAILED"),  # the real token again: a repeat, answered
        ],
    )

    assert [(r["error"] and r["error"]["code"], r["job"]) for r in results] == [
        (None, {**results[0]["job"], "status": "FAILED"}),
        ("STALE_CLAIM", None),
        ("STALE_CLAIM", None),
        (None, results[0]["job"]),
    ]
    assert "claim token does not match" in results[1]["error"]["message"]
    # Applied once: one failure, one retry submission.
    rows = await job_rows(db, run_id)
    assert [(r.submission_num, r.status) for r in rows] == [
        (0, JobStatus.FAILED),
        (1, JobStatus.SUBMITTED),
    ]


async def test_long_messages_are_kept_shortened(factory: Factory, gql: GraphQLClient) -> None:
    alice, _, _ = await _setup(factory, replicas=1)
    (c,) = await claim(gql, alice.token, limit=1)

    (result,) = await complete(gql, alice.token, [completion(c, "FAILED", message="x" * 5000)])

    message = result["job"]["terminationMessage"]
    assert len(message) == 1000 and message.endswith("…")


async def test_batch_over_the_limit_is_refused_as_a_whole(
    factory: Factory, gql: GraphQLClient, settings: Any
) -> None:
    alice, _, _ = await _setup(factory, replicas=1)
    (c,) = await claim(gql, alice.token, limit=1)
    items = [completion(c)] * (settings.max_batch_size + 1)

    body = await gql(
        COMPLETE, {"input": {"completions": items}}, token=alice.token, expect_errors=True
    )

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["message"] == f"completions must be at most {settings.max_batch_size} (got 1001)"
    # Nothing applied: the job is still claimed.
    (again,) = await complete(gql, alice.token, [completion(c)])
    assert again["error"] is None


async def test_malformed_job_id_is_answered_on_its_item(
    factory: Factory, gql: GraphQLClient
) -> None:
    """Not a top-level error: the items around it apply (docs/runner.md, docs/limits.md)."""
    alice, _, _ = await _setup(factory, replicas=2)
    first, second = await claim(gql, alice.token, limit=2)
    malformed = {"jobId": "abc", "claimToken": "t", "status": "DONE"}
    body = await gql(
        COMPLETE,
        {"input": {"completions": [completion(first), malformed, completion(second)]}},
        token=alice.token,
    )

    assert "errors" not in body
    before, result, after = body["data"]["completeJobs"]["results"]
    assert result["jobId"] == "abc"
    assert result["error"]["code"] == "BAD_USER_INPUT"
    assert result["error"]["message"].startswith("completions[1].jobId")
    assert (before["error"], before["job"]["status"]) == (None, "DONE")
    assert (after["error"], after["job"]["status"]) == (None, "DONE")


async def test_complete_statements_do_not_grow_with_the_batch(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("shard", replicas=1000, retry_limit=1),
            JobDefinition("merge", depends_on=("shard",)),
        ],
    )
    claims = await claim(gql, alice.token, limit=1000)
    doc = """mutation($input: CompleteJobsInput!) { completeJobs(input: $input) {
      results { jobId error { code } job { status } } } }"""

    async def counted(items: list[dict[str, Any]]) -> int:
        body, recorder = await gql.counted(
            doc, {"input": {"completions": items}}, token=alice.token
        )
        assert all(r["error"] is None for r in body["data"]["completeJobs"]["results"])
        return recorder.count

    done_one = await counted([completion(claims[0])])
    done_many = await counted([completion(c) for c in claims[1:500]])
    failed_one = await counted([completion(claims[500], "FAILED")])
    failed_many = await counted([completion(c, "FAILED") for c in claims[501:]])

    # token lookup, [PostgreSQL: lock runs], lock jobs, update jobs, unblock, run roll-up,
    # the events, and the jobs of the answer (asked for: one batched read)
    lock = 0 if db.is_sqlite else 1
    assert done_one == done_many == 7 + lock
    # token lookup, [lock runs], lock jobs, update jobs, insert retries, move latest,
    # the events, the jobs of the answer; no roll-up: a retry keeps the RUNNING run active
    assert failed_one == failed_many == 7 + lock


async def test_a_completion_that_unblocks_work_does_not_roll_up_its_running_run(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """The roll-up would leave a RUNNING run with a job just unblocked as it is: it is
    not asked. The run still ends DONE when its last job does."""
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[JobDefinition("prepare"), JobDefinition("train", depends_on=("prepare",))],
    )
    doc = """mutation($input: CompleteJobsInput!) { completeJobs(input: $input) {
      results { jobId error { code } } } }"""

    async def counted(c: dict[str, Any]) -> int:
        body, recorder = await gql.counted(
            doc, {"input": {"completions": [completion(c)]}}, token=alice.token
        )
        assert body["data"]["completeJobs"]["results"][0]["error"] is None
        return recorder.count

    (prepare,) = await claim(gql, alice.token, limit=1)
    unblocking = await counted(prepare)
    assert (await run_row(db, run_id)).status == RunStatus.RUNNING
    (train,) = await claim(gql, alice.token, limit=1)
    last = await counted(train)

    lock = 0 if db.is_sqlite else 1
    # token lookup, [lock runs], lock jobs, update jobs, unblock, the events
    assert unblocking == 5 + lock
    # ... and the roll-up, which finishes the run
    assert last == 6 + lock
    assert (await run_row(db, run_id)).status == RunStatus.DONE


async def test_complete_and_claim_share_one_request(factory: Factory, gql: GraphQLClient) -> None:
    """The cycle docs/runner.md recommends: report, then take the work it unblocked."""
    alice, project = await factory.user_in_project()
    await factory.run(
        project, alice, jobs=[JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    )
    (a,) = await claim(gql, alice.token, limit=5)

    body = await gql(
        """mutation Cycle($done: [CompletionInput!]!) {
          completeJobs(input: { completions: $done }) { results { error { code } } }
          claimJobs(input: { runnerName: "r1", limit: 5 }) { claims { job { name } } }
        }""",
        {"done": [completion(a)]},
        token=alice.token,
    )

    assert body["data"]["completeJobs"]["results"] == [{"error": None}]
    assert body["data"]["claimJobs"]["claims"] == [{"job": {"name": "b"}}]


async def test_a_cycle_whose_completions_made_work_claims_without_looking_first(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """On SQLite a claim first reads whether anything is ready (so idle polls never take
    the write lock), unless the same document's completions just made jobs ready."""
    alice, project = await factory.user_in_project()
    await factory.run(
        project,
        alice,
        jobs=[JobDefinition("a"), JobDefinition("b", depends_on=("a",)), JobDefinition("c")],
    )
    a, c = await claim(gql, alice.token, limit=5)
    cycle = """mutation Cycle($done: [CompletionInput!]!) {
      completeJobs(input: { completions: $done }) { results { error { code } } }
      claimJobs(input: { runnerName: "r1", limit: 5 }) { claims { job { name } } }
    }"""

    def looks(statements: list[str]) -> int:
        """The claim's "anything ready?" reads: only ``jobs.id`` selected."""
        return sum(s.split("FROM")[0].split() == ["SELECT", "jobs.id"] for s in statements)

    unblocking, made_work = await gql.counted(cycle, {"done": [completion(a)]}, token=alice.token)
    leaf, no_work = await gql.counted(cycle, {"done": [completion(c)]}, token=alice.token)

    assert unblocking["data"]["claimJobs"]["claims"] == [{"job": {"name": "b"}}]
    assert leaf["data"]["claimJobs"]["claims"] == []
    assert looks(made_work.statements) == 0
    assert looks(no_work.statements) == (1 if db.is_sqlite else 0)
