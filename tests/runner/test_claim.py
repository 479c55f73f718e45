"""``claimJobs``: what is claimable, in which order, what a claim writes, the bounds of
its input, and a statement count that does not grow with ``limit``."""

from __future__ import annotations

import datetime as dt

from runql.db.accounts import hash_token
from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus
from runql.db.lifecycle import JobDefinition
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import CLAIM, claim, job_rows, run_row


async def test_claim_hands_out_ready_jobs_with_token_and_lease(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("prep", replicas=2, spec={"cmd": "prep"}),
            JobDefinition("train", depends_on=("prep",)),
        ],
    )

    claims = await claim(gql, alice.token, limit=10, runner="gpu-01", leaseSeconds=30)

    assert sorted((c["job"]["name"], c["job"]["replicaNum"]) for c in claims) == [
        ("prep", 0),
        ("prep", 1),
    ]
    for c in claims:
        assert c["job"]["status"] == "RUNNING"
        assert c["job"]["runnerName"] == "gpu-01"
        assert c["job"]["spec"] == {"cmd": "prep"}
        started = dt.datetime.fromisoformat(c["job"]["startedAt"])
        expires = dt.datetime.fromisoformat(c["leaseExpiresAt"])
        assert expires - started == dt.timedelta(seconds=30)
    assert len({c["claimToken"] for c in claims}) == 2
    rows = {row.id: row for row in await job_rows(db, run_id)}
    for c in claims:
        row = rows[int(c["job"]["id"])]
        assert row.claim_token_hash == hash_token(c["claimToken"]) != c["claimToken"]
        assert row.status == JobStatus.RUNNING
    assert [row.status for row in rows.values() if row.name == "train"] == [JobStatus.BLOCKED]
    assert (await run_row(db, run_id)).status == RunStatus.RUNNING
    # Nothing else is ready: the next claim is empty, and the claimed jobs stay claimed.
    assert await claim(gql, alice.token, limit=10) == []


async def test_claim_token_is_never_a_field_of_job(gql: GraphQLClient, factory: Factory) -> None:
    alice = await factory.user("alice")
    body = await gql('{ __type(name: "Job") { fields { name } } }', token=alice.token)
    names = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert "leaseExpiresAt" in names
    assert not {n for n in names if "token" in n.lower()}


async def test_claim_order_is_priority_then_oldest(factory: Factory, gql: GraphQLClient) -> None:
    alice, project = await factory.user_in_project()
    old_low = await factory.run(project, alice, name="old-low", priority=0)
    new_high = await factory.run(project, alice, name="new-high", priority=5)
    newer_low = await factory.run(project, alice, name="newer-low", priority=0)
    old_high = await factory.run(
        project,
        alice,
        name="old-high",
        priority=5,
        submitted_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )

    order = []
    for _ in range(4):
        (c,) = await claim(gql, alice.token, limit=1)
        order.append(c["job"]["id"])
    rows = {}
    for run_id in (old_low, new_high, newer_low, old_high):
        rows[run_id] = str((await job_rows(factory.db, run_id))[0].id)

    assert order == [rows[old_high], rows[new_high], rows[old_low], rows[newer_low]]


async def test_claim_sees_only_visible_live_runs_and_the_requested_project(
    factory: Factory, gql: GraphQLClient
) -> None:
    alice = await factory.user("alice")
    bob = await factory.user("bob")
    vision = await factory.project("vision", [(alice, MemberRole.USER)])
    audio = await factory.project("audio", [(alice, MemberRole.USER), (bob, MemberRole.USER)])
    secret = await factory.project("secret", [(bob, MemberRole.USER)])
    in_vision = await factory.run(vision, alice)
    in_audio = await factory.run(audio, alice)
    await factory.run(secret, bob)
    await factory.run(vision, alice, status=RunStatus.TERMINATING)
    await factory.run(vision, alice, status=RunStatus.DONE)

    only_audio = await claim(gql, alice.token, limit=10, project="audio")
    everything_else = await claim(gql, alice.token, limit=10)

    assert [c["job"]["id"] for c in only_audio] == [
        str((await job_rows(factory.db, in_audio))[0].id)
    ]
    assert [c["job"]["id"] for c in everything_else] == [
        str((await job_rows(factory.db, in_vision))[0].id)
    ]
    assert await claim(gql, alice.token, limit=10, project="secret") == []


async def test_claim_input_bounds(factory: Factory, gql: GraphQLClient, settings) -> None:  # type: ignore[no-untyped-def]
    alice = await factory.user("alice")
    cases = [
        ({"limit": 0}, "BAD_USER_INPUT", "limit"),
        ({"limit": settings.max_batch_size + 1}, "LIMIT_EXCEEDED", "limit"),
        (
            {"limit": 1, "leaseSeconds": settings.min_lease_seconds - 1},
            "BAD_USER_INPUT",
            "leaseSeconds",
        ),
        (
            {"limit": 1, "leaseSeconds": settings.max_lease_seconds + 1},
            "LIMIT_EXCEEDED",
            "leaseSeconds",
        ),
        ({"limit": 1, "runnerName": ""}, "BAD_USER_INPUT", "runnerName"),
    ]
    for extra, code, field in cases:
        body = await gql(
            CLAIM, {"input": {"runnerName": "r1", **extra}}, token=alice.token, expect_errors=True
        )
        (error,) = body["errors"]
        assert error["extensions"]["code"] == code, extra
        assert error["message"].startswith(field), error["message"]


async def test_claim_statements_do_not_grow_with_limit(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    # Each claim below starts a run (SUBMITTED -> RUNNING): the same work either way.
    await factory.run(project, alice, priority=1)
    await factory.run(project, alice, jobs=[JobDefinition("shard", replicas=1000)])
    doc = """mutation($n: Int!) { claimJobs(input: {runnerName: "r", limit: $n}) {
      claims { claimToken job { id status } } } }"""

    one, one_statements = await gql.counted(doc, {"n": 1}, token=alice.token)
    many, many_statements = await gql.counted(doc, {"n": 1000}, token=alice.token)
    empty, empty_statements = await gql.counted(doc, {"n": 1000}, token=alice.token)

    assert len(one["data"]["claimJobs"]["claims"]) == 1
    assert len(many["data"]["claimJobs"]["claims"]) == 1000
    assert empty["data"]["claimJobs"]["claims"] == []
    # token lookup, [SQLite: lock-free existence check], select + lock, update, run status,
    # the events
    expected = 6 if db.is_sqlite else 5
    assert one_statements.count == many_statements.count == expected, many_statements.statements
    # An empty claim on SQLite never reaches the write transaction.
    if db.is_sqlite:
        assert empty_statements.count == 2
        assert not any("UPDATE" in s for s in empty_statements.statements)


async def test_a_runner_s_claim_reads_spec_with_the_claim_and_not_the_run(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """Runners need each job's spec and run id: the spec comes with the claim's own read,
    ``run { id }`` from the job's row; neither costs a statement after the claim."""
    alice, project = await factory.user_in_project()
    spec = {"cmd": ["train", "--epochs", "3"], "env": {"SEED": "1"}}
    run_id = await factory.run(project, alice, jobs=[JobDefinition("shard", replicas=6, spec=spec)])
    without = """mutation { claimJobs(input: {runnerName: "r", limit: 2}) {
      claims { job { id } } } }"""
    with_spec = """mutation { claimJobs(input: {runnerName: "r", limit: 2}) {
      claims { job { id ...Spec run { __typename ... on Run { id } } } } } }
      fragment Spec on Job { spec }"""

    await gql(without, token=alice.token)  # starts the run: later claims do the same work
    _, plain = await gql.counted(without, token=alice.token)
    body, specced = await gql.counted(with_spec, token=alice.token)

    assert specced.count == plain.count, specced.statements
    claimed = [c["job"] for c in body["data"]["claimJobs"]["claims"]]
    assert len(claimed) == 2
    assert all(job["spec"] == spec for job in claimed)
    assert all(job["run"] == {"__typename": "Run", "id": str(run_id)} for job in claimed)
    for job in claimed:
        again = await gql(
            "query($id: ID!) { job(id: $id) { spec } }", {"id": job["id"]}, token=alice.token
        )
        assert job["spec"] == again["data"]["job"]["spec"]
