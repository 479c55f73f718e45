"""Every home of a change appends its events in its own transaction, with exactly one
statement whatever it changed, and nothing at all when it changed nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from runql.db import lease_expiry
from runql.db.engine import Database, record_statements
from runql.db.enums import EventKind, JobStatus, RunStatus
from runql.db.events import START, EventBatch, read_events
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job
from runql.db.types import utcnow
from tests.events.helpers import ADMIN, event_writes, log, settled
from tests.factories import Factory, GraphQLClient, UserHandle
from tests.runner.helpers import CLAIM, COMPLETE, claim, completion

K = EventKind
STOP = """mutation($ids: [ID!]!, $abort: Boolean!) { stopRuns(input: {runIds: $ids, abort: $abort})
  { results { error { code } } } }"""
DELETE = """mutation($ids: [ID!]!) { deleteRuns(input: {runIds: $ids})
  { results { error { code } } } }"""
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"""


async def _job_ids(db: Database, run_id: int) -> dict[str, list[int]]:
    """The run's job ids by name, in (replica, submission) order."""
    async with db.read() as session:
        rows = await session.execute(
            select(Job.name, Job.id)
            .where(Job.run_id == run_id)
            .order_by(Job.job_num, Job.replica_num, Job.submission_num)
        )
        ids: dict[str, list[int]] = {}
        for name, job_id in rows:
            ids.setdefault(name, []).append(job_id)
        return ids


async def _one_write(
    gql: GraphQLClient, doc: str, variables: dict[str, Any], user: UserHandle
) -> dict[str, Any]:
    """Run a mutation; it must append its events with exactly one statement."""
    body, recorder = await gql.counted(doc, variables, token=user.token)
    assert len(event_writes(recorder)) == 1, recorder.statements
    return body


async def test_a_dag_run_logs_each_change_once_in_order(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, _ = await factory.user_in_project()
    body = await _one_write(
        gql,
        SUBMIT,
        {
            "input": {
                "project": "vision",
                "jobs": [
                    {"name": "shard", "replicas": 2, "retry": {"limit": 1}},
                    {"name": "merge", "dependsOn": ["shard"]},
                    {"name": "final", "dependsOn": ["merge"]},
                ],
            }
        },
        alice,
    )
    run = int(body["data"]["submitRun"]["run"]["id"])
    ids = await _job_ids(db, run)
    shard0, shard1 = ids["shard"]
    merge, final = ids["merge"][0], ids["final"][0]
    assert await log(db) == [(K.RUN_SUBMITTED, run, None)]

    def claims_of(body: dict[str, Any]) -> list[dict[str, Any]]:
        return body["data"]["claimJobs"]["claims"]  # type: ignore[no-any-return]

    claimed = claims_of(await _one_write(gql, CLAIM, _claim_input(), alice))
    by_id = {int(c["job"]["id"]): c for c in claimed}
    assert sorted(by_id) == [shard0, shard1]
    await _one_write(
        gql,
        COMPLETE,
        {
            "input": {
                "completions": [
                    completion(by_id[shard0], "FAILED"),
                    completion(by_id[shard1], "DONE"),
                ]
            }
        },
        alice,
    )
    retry = (await _job_ids(db, run))["shard"][1]  # replica 0, submission 1
    [retried] = claims_of(await _one_write(gql, CLAIM, _claim_input(), alice))
    await _one_write(gql, COMPLETE, {"input": {"completions": [completion(retried)]}}, alice)
    [merging] = claims_of(await _one_write(gql, CLAIM, _claim_input(), alice))
    await _one_write(
        gql, COMPLETE, {"input": {"completions": [completion(merging, "FAILED")]}}, alice
    )

    assert await log(db) == [
        (K.RUN_SUBMITTED, run, None),
        (K.JOB_CLAIMED, run, shard0),
        (K.JOB_CLAIMED, run, shard1),
        (K.RUN_STATUS_CHANGED, run, None),  # SUBMITTED -> RUNNING
        (K.JOB_COMPLETED, run, shard0),
        (K.JOB_COMPLETED, run, shard1),
        (K.JOB_RETRIED, run, retry),
        (K.JOB_CLAIMED, run, retry),
        (K.JOB_COMPLETED, run, retry),
        (K.JOB_UNBLOCKED, run, merge),
        (K.JOB_CLAIMED, run, merge),
        (K.JOB_COMPLETED, run, merge),
        (K.JOB_ABORTED, run, final),
        (K.RUN_STATUS_CHANGED, run, None),  # RUNNING -> FAILED
    ]


def _claim_input(limit: int = 10) -> dict[str, Any]:
    return {"input": {"runnerName": "r1", "limit": limit}}


async def test_events_carry_project_run_job_and_time(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run = await factory.run(project, alice)
    before = utcnow()
    [claimed] = await claim(gql, alice.token)
    after = utcnow()
    await settled(db)
    async with db.read() as session:
        events = await read_events(session, ADMIN, after=START, limit=10)
    submitted, claim_event, started = events
    assert (submitted.kind, submitted.project_id, submitted.run_id) == (
        K.RUN_SUBMITTED,
        project.id,
        run,
    )
    assert (claim_event.kind, claim_event.project_id, claim_event.run_id, claim_event.job_id) == (
        K.JOB_CLAIMED,
        project.id,
        run,
        int(claimed["job"]["id"]),
    )
    assert started.kind == K.RUN_STATUS_CHANGED and started.job_id is None
    assert before <= claim_event.at <= after and claim_event.at.tzinfo is not None
    assert claim_event.at == started.at  # one transaction, one time
    assert submitted.position < claim_event.position < started.position


async def test_stop_graceful_abort_and_delete(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    busy = await factory.run(project, alice, jobs=[JobDefinition("a"), JobDefinition("b")])
    idle = await factory.run(project, alice)
    doomed = await factory.run(project, alice)
    [running] = await claim(gql, alice.token, limit=1)  # a job of `busy`
    start = len(await log(db))

    await _one_write(gql, STOP, {"ids": [str(busy), str(idle)], "abort": False}, alice)
    await _one_write(gql, STOP, {"ids": [str(doomed)], "abort": True}, alice)
    # The runner of the stopping run reports: the run is finished.
    await _one_write(gql, COMPLETE, {"input": {"completions": [completion(running)]}}, alice)
    await _one_write(gql, DELETE, {"ids": [str(busy), str(idle), str(doomed)]}, alice)

    assert (await log(db))[start:] == [
        (K.RUN_STOPPED, busy, None),
        (K.RUN_STOPPED, idle, None),
        (K.RUN_STATUS_CHANGED, idle, None),  # nothing ran: TERMINATED at once
        (K.RUN_STOPPED, doomed, None),  # aborted: TERMINATED at once
        (K.JOB_COMPLETED, busy, int(running["job"]["id"])),
        (K.RUN_STATUS_CHANGED, busy, None),  # TERMINATING -> TERMINATED
        (K.RUN_DELETED, busy, None),
        (K.RUN_DELETED, idle, None),
        (K.RUN_DELETED, doomed, None),
    ]


async def test_lease_expiry_requeues_with_one_statement(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run = await factory.run(
        project,
        alice,
        jobs=[JobDefinition("a", retry_limit=1), JobDefinition("b", depends_on=("a",))],
    )
    [a] = await claim(gql, alice.token)
    start = len(await log(db))

    with record_statements() as recorder:
        async with db.write() as session:
            now = utcnow() + dt.timedelta(days=1)
            assert await lease_expiry.requeue_expired(session, now=now, limit=10) == 1
    assert len(event_writes(recorder)) == 1
    retry = (await _job_ids(db, run))["a"][1]
    assert (await log(db))[start:] == [
        (K.JOB_REQUEUED, run, int(a["job"]["id"])),
        (K.JOB_RETRIED, run, retry),
    ]


async def test_transactions_that_change_nothing_write_no_event(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    finished = await factory.run(project, alice, status=RunStatus.DONE)
    live = await factory.run(project, alice)
    [claimed] = await claim(gql, alice.token)
    await factory.set_job(live, status=JobStatus.RUNNING)
    before = await log(db)

    cases: list[tuple[str, dict[str, Any]]] = [
        (STOP, {"ids": [str(finished)], "abort": False}),  # already finished
        (DELETE, {"ids": [str(live)]}),  # not finished
        (CLAIM, _claim_input()),  # nothing to claim
        (
            COMPLETE,  # a forged token
            {"input": {"completions": [{**completion(claimed), "claimToken": "rqc_forged"}]}},
        ),
    ]
    for doc, variables in cases:
        _, recorder = await gql.counted(doc, variables, token=alice.token)
        assert event_writes(recorder) == [], (doc, recorder.statements)
    with record_statements() as recorder:
        async with db.write() as session:
            assert await lease_expiry.requeue_expired(session, now=utcnow(), limit=10) == 0
            await EventBatch().flush(session, utcnow())
    assert event_writes(recorder) == []
    assert await log(db) == before
