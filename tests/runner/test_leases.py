"""Leases: ``renewLeases`` per item, the lease sweeper (driven by an injected clock, never
by sleeping), and stale runners: late, requeued, stopped or restarted claims are refused."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text, update

from runql.db.engine import Database, record_statements
from runql.db.enums import JobStatus, RunStatus, TerminationReason
from runql.db.lifecycle import JobDefinition
from runql.db.models import Run
from runql.db.outages import EXPECTED_ERRORS
from runql.db.types import utcnow
from runql.settings import Settings
from runql.tasks.lease_sweeper import LeaseSweeper
from runql.web.app import create_app
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim, complete, completion, job_rows, renew, run_row, run_state


def _sweeper(db: Database, at: dt.datetime, **kwargs: Any) -> LeaseSweeper:
    return LeaseSweeper(db, interval_seconds=1, now=lambda: at, **kwargs)


def _expiry(c: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(c["leaseExpiresAt"])


def _after(claims: list[dict[str, Any]]) -> dt.datetime:
    """A moment just after every lease of ``claims`` expired."""
    return max(_expiry(c) for c in claims) + dt.timedelta(seconds=1)


# --- renewLeases -----------------------------------------------------------------------


async def test_renew_extends_leases_and_answers_per_item(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", replicas=3)])
    first, second, third = await claim(gql, alice.token, limit=3, leaseSeconds=10)
    await complete(gql, alice.token, [completion(third)])
    stale = {**second, "claimToken": "rqc_forged"}
    unknown = {"job": {"id": "424242"}, "claimToken": "x"}

    results = await renew(gql, alice.token, [first, stale, third, unknown], leaseSeconds=600)

    assert [(r["error"] and r["error"]["code"], r["mustStop"]) for r in results] == [
        (None, False),
        ("STALE_CLAIM", True),
        ("INVALID_STATE", True),
        ("NOT_FOUND", True),
    ]
    assert [r["jobId"] for r in results] == [
        first["job"]["id"],
        second["job"]["id"],
        third["job"]["id"],
        "424242",
    ]
    assert results[0]["job"] == {"id": first["job"]["id"], "status": "RUNNING"}
    renewed = dt.datetime.fromisoformat(results[0]["leaseExpiresAt"])
    assert renewed >= _expiry(first) + dt.timedelta(seconds=590)
    assert results[1]["leaseExpiresAt"] is None and results[1]["job"] is None
    rows = {str(row.id): row for row in await job_rows(db, run_id)}
    assert rows[first["job"]["id"]].lease_expires_at == renewed
    assert rows[second["job"]["id"]].lease_expires_at == _expiry(second)  # untouched


async def test_a_stop_reaches_running_jobs_through_renew_and_complete(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", replicas=2)])
    first, second = await claim(gql, alice.token, limit=2)
    before = await renew(gql, alice.token, [first, second])
    assert [r["mustStop"] for r in before] == [False, False]

    await gql(
        "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { runId } } }",
        {"id": str(run_id)},
        token=alice.token,
    )
    during = await renew(gql, alice.token, [first, second])

    assert [(r["error"], r["mustStop"], r["job"]["status"]) for r in during] == [
        (None, True, "TERMINATING"),
        (None, True, "TERMINATING"),
    ]
    results = await complete(gql, alice.token, [completion(first), completion(second, "FAILED")])
    assert [r["job"]["status"] for r in results] == ["TERMINATED", "TERMINATED"]
    run = await run_state(gql, alice.token, run_id)
    assert (run["status"], run["terminationReason"]) == ("TERMINATED", "TERMINATED_BY_USER")


async def test_claims_of_a_restarted_run_are_stale(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a")])
    (c,) = await claim(gql, alice.token, limit=1)
    async with db.write() as session:  # what a restart does to the run's attempt
        await session.execute(update(Run).where(Run.id == run_id).values(attempt=Run.attempt + 1))

    (renewal,) = await renew(gql, alice.token, [c])
    (result,) = await complete(gql, alice.token, [completion(c)])

    assert renewal["error"]["code"] == result["error"]["code"] == "STALE_CLAIM"
    assert "restarted" in result["error"]["message"]
    (row,) = await job_rows(db, run_id)
    assert row.status == JobStatus.RUNNING


@contextlib.asynccontextmanager
async def _another_writer(db: Database) -> AsyncIterator[None]:
    """A write transaction that claims and renewals must wait for until the block ends:
    on SQLite it holds the write lock (as any concurrent request would); on PostgreSQL
    it locks the jobs table ``EXCLUSIVE`` (plain reads go on, row locks wait). A row lock
    would not do for claims: they skip locked rows instead of waiting."""
    async with db.write() as session:
        if db.is_sqlite:
            await session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock
        else:
            await session.execute(text("LOCK TABLE jobs IN EXCLUSIVE MODE"))
        yield


@pytest.mark.parametrize("call", ["claim", "renew"])
async def test_a_lease_starts_once_the_locks_are_held_not_when_the_request_came(
    db: Database,
    factory: Factory,
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
) -> None:
    """A claim or renewal that waited for another writer still gets a whole lease:
    it expires ``leaseSeconds`` after the wait ended, not after the request arrived."""
    alice, project = await factory.user_in_project()
    await factory.run(project, alice, jobs=[JobDefinition("a", replicas=2)])
    claimed = await claim(gql, alice.token, limit=1) if call == "renew" else []
    waiting = asyncio.Event()
    write = db.write

    def write_after_signalling() -> Any:
        waiting.set()
        return write()

    async with _another_writer(db):
        monkeypatch.setattr(db, "write", write_after_signalling)
        if call == "claim":
            request = asyncio.create_task(claim(gql, alice.token, limit=1, leaseSeconds=30))
        else:
            request = asyncio.create_task(renew(gql, alice.token, claimed, leaseSeconds=30))
        await waiting.wait()  # the request is at its write transaction...
        await asyncio.sleep(0.2)  # ...and queued behind ours
        assert not request.done()
        released = utcnow()
    (answer,) = await request

    expires = dt.datetime.fromisoformat(answer["leaseExpiresAt"])
    assert expires >= released + dt.timedelta(seconds=30)


# --- the lease sweeper -----------------------------------------------------------------


async def test_sweeper_leaves_live_leases_alone_without_taking_the_write_lock(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    await factory.run(project, alice)
    (c,) = await claim(gql, alice.token, limit=1, leaseSeconds=30)

    with record_statements() as recorder:
        ended = await _sweeper(db, _expiry(c) - dt.timedelta(seconds=1)).sweep_once()

    assert ended == 0
    assert len(recorder.statements) == 1 and recorder.statements[0].lstrip().startswith("SELECT")
    (result,) = await complete(gql, alice.token, [completion(c)])
    assert result["error"] is None


async def test_expired_lease_is_requeued_and_the_late_runner_is_stale(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project, alice, jobs=[JobDefinition("a", retry_limit=1, spec={"cmd": "x"})]
    )
    (lost,) = await claim(gql, alice.token, limit=1, runner="lost", leaseSeconds=10)

    assert await _sweeper(db, _after([lost])).sweep_once() == 1

    old, new = await job_rows(db, run_id)
    assert (old.status, old.termination_reason) == (JobStatus.FAILED, "LEASE_EXPIRED")
    assert old.claim_token_hash is None and old.lease_expires_at is None
    assert (new.submission_num, new.status) == (1, JobStatus.SUBMITTED)
    assert (await run_state(gql, alice.token, run_id))["statusMessage"] == "retrying"

    (late_renewal,) = await renew(gql, alice.token, [lost])
    (late,) = await complete(gql, alice.token, [completion(lost)])
    assert late_renewal["error"]["code"] == late["error"]["code"] == "STALE_CLAIM"
    assert late_renewal["mustStop"] is True

    (again,) = await claim(gql, alice.token, limit=1, runner="healthy")
    assert (again["job"]["id"], again["job"]["spec"]) == (str(new.id), {"cmd": "x"})
    (late_for_the_retry,) = await complete(
        gql, alice.token, [{**completion(again), "claimToken": lost["claimToken"]}]
    )
    assert late_for_the_retry["error"]["code"] == "STALE_CLAIM"
    (ok,) = await complete(gql, alice.token, [completion(again)])
    assert ok["job"]["status"] == "DONE"
    assert (await run_row(db, run_id)).status == RunStatus.DONE


async def test_expired_lease_without_retries_fails_the_job_and_aborts_downstream(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(
        project,
        alice,
        jobs=[
            JobDefinition("a", retry_limit=3, retry_on_lease_expiry=False),
            JobDefinition("b", depends_on=("a",)),
        ],
    )
    claims = await claim(gql, alice.token, limit=1)

    assert await _sweeper(db, _after(claims)).sweep_once() == 1

    a, b = await job_rows(db, run_id)
    assert (a.status, a.termination_reason) == (JobStatus.FAILED, "LEASE_EXPIRED")
    assert (b.status, b.termination_reason) == (JobStatus.ABORTED, "UPSTREAM_FAILED")
    run = await run_row(db, run_id)
    assert (run.status, run.termination_reason) == (RunStatus.FAILED, "JOB_FAILED")
    assert run.finished_at is not None


async def test_expired_lease_of_a_stopping_run_ends_it(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", retry_limit=3)])
    claims = await claim(gql, alice.token, limit=1)
    await gql(
        "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { runId } } }",
        {"id": str(run_id)},
        token=alice.token,
    )

    assert await _sweeper(db, _after(claims)).sweep_once() == 1

    (row,) = await job_rows(db, run_id)
    assert (row.status, row.termination_reason) == (
        JobStatus.TERMINATED,
        TerminationReason.LEASE_EXPIRED,
    )
    run = await run_row(db, run_id)
    assert run.status == RunStatus.TERMINATED and run.finished_at is not None


async def test_sweeper_works_through_more_expired_claims_than_one_batch(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    run_id = await factory.run(project, alice, jobs=[JobDefinition("a", replicas=7, retry_limit=1)])
    claims = await claim(gql, alice.token, limit=7)

    assert await _sweeper(db, _after(claims), batch_size=3).sweep_once() == 7

    rows = await job_rows(db, run_id)
    assert sorted((r.submission_num, r.status) for r in rows) == sorted(
        [(0, JobStatus.FAILED)] * 7 + [(1, JobStatus.SUBMITTED)] * 7
    )


async def test_sweeper_raises_only_what_its_loop_expects(tmp_path: Any) -> None:
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/runql.db")
    try:
        with pytest.raises(EXPECTED_ERRORS):
            await LeaseSweeper(broken, interval_seconds=1).sweep_once()
    finally:
        await broken.dispose()


async def test_app_lifespan_starts_and_stops_the_sweeper(db: Database, settings: Settings) -> None:
    app = create_app(settings, db=db)
    off = create_app(Settings(database_url=settings.database_url, lease_sweep_seconds=0), db=db)

    async with app.router.lifespan_context(app):
        assert app.state.lease_sweeper.running
    async with off.router.lifespan_context(off):
        assert not off.state.lease_sweeper.running
    assert not app.state.lease_sweeper.running


async def test_a_malformed_job_id_is_answered_on_its_lease_alone(
    factory: Factory, gql: GraphQLClient
) -> None:
    """Not a top-level error: the other leases are renewed (docs/runner.md)."""
    alice, project = await factory.user_in_project()
    await factory.run(project, alice, jobs=[JobDefinition("a")])
    (held,) = await claim(gql, alice.token, limit=1)
    malformed = {"job": {"id": "4x2"}, "claimToken": "x"}

    renewed, refused = await renew(gql, alice.token, [held, malformed])

    assert (renewed["error"], renewed["mustStop"]) == (None, False)
    assert refused["jobId"] == "4x2"
    assert refused["error"]["code"] == "BAD_USER_INPUT"
    assert refused["error"]["message"].startswith("leases[1].jobId"), refused
    assert refused["mustStop"] is True
