"""``runql serve --workers 2``: two real worker processes on one SQLite file and on one
PostgreSQL database.

The server is the real command in a subprocess, driven over HTTP. Several clients submit
runs while several runners claim and complete their jobs: every job must end ``DONE``
exactly once, with no error anywhere. Both workers' lease sweepers run every 0.1 s on
expired leases: each must be requeued once, never twice. That both processes serve is
shown without asking the server anything new: with one worker paused (``SIGSTOP``) only
the other can accept a new connection, so a request that is answered was answered there;
then the other way round.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from runql.db.engine import Database
from runql.db.enums import JobStatus, TerminationReason
from runql.db.models import Job
from runql.settings import Settings
from runql.web.app import create_worker_app
from tests.conftest import BACKENDS
from tests.processes import Server, gql, serving, worker_pids
from tests.runner.helpers import CLAIM, COMPLETE
from tests.waiting import until

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="finds the worker processes in /proc"
    ),
    pytest.mark.slow,  # real runql serve processes (see DEVELOPERS.md, Tests)
]

SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"""
SUBMITTERS, RUNS_EACH, REPLICAS = 4, 3, 10  # 120 jobs
RUNNERS = 4
EXPIRING = 6  # jobs whose runner disappears: each must be requeued once


@pytest_asyncio.fixture(scope="module", params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """``runql serve --workers 2`` on a fresh, migrated database, one per backend for the
    tests below (each looks only at its own jobs, by name); both workers started."""
    async with serving(
        request.param, tmp_path_factory.mktemp("workers"), "ml", user="alice", workers=2,
        settings={"RUNQL_LEASE_SWEEP_SECONDS": "0.1", "RUNQL_MIN_LEASE_SECONDS": "1"},
    ) as running:  # fmt: skip
        yield running


async def _submit(server: Server, jobs: list[dict[str, Any]], runs: int) -> None:
    async with server.client() as client:
        for _ in range(runs):
            await gql(client, SUBMIT, {"input": {"project": "ml", "jobs": jobs}})


async def _run_jobs(server: Server, name: str, done: asyncio.Event) -> list[str]:
    """Claim and complete until the submitters are done and nothing is left; returns the
    ids this runner completed."""
    completed: list[str] = []
    async with server.client() as client:
        while True:
            claim = {"input": {"runnerName": name, "limit": 7, "leaseSeconds": 60}}
            claims = (await gql(client, CLAIM, claim))["claimJobs"]["claims"]
            if not claims:
                if done.is_set():
                    return completed
                await asyncio.sleep(0.02)
                continue
            items = [
                {"jobId": c["job"]["id"], "claimToken": c["claimToken"], "status": "DONE"}
                for c in claims
            ]
            results = (await gql(client, COMPLETE, {"input": {"completions": items}}))[
                "completeJobs"
            ]["results"]
            assert [r["error"] for r in results] == [None] * len(items), results
            completed += [r["jobId"] for r in results]


async def test_every_job_completes_exactly_once_across_two_workers(server: Server) -> None:
    submitted = asyncio.Event()
    runners = [asyncio.create_task(_run_jobs(server, f"r{i}", submitted)) for i in range(RUNNERS)]
    shard = [{"name": "shard", "replicas": REPLICAS}]
    await asyncio.gather(*(_submit(server, shard, RUNS_EACH) for _ in range(SUBMITTERS)))
    submitted.set()
    completed = [job_id for ids in await asyncio.gather(*runners) for job_id in ids]

    assert len(completed) == len(set(completed)) == SUBMITTERS * RUNS_EACH * REPLICAS
    assert await _statuses(server, "shard") == {
        (JobStatus.DONE.value, 0, TerminationReason.DONE_BY_RUNNER.value): SUBMITTERS
        * RUNS_EACH
        * REPLICAS
    }
    assert _problems(server) == []


async def test_each_expired_lease_is_requeued_once_by_two_sweepers(server: Server) -> None:
    retry = {"limit": 3, "onLeaseExpiry": True}
    await _submit(server, [{"name": "lost", "replicas": EXPIRING, "retry": retry}], 1)
    async with server.client() as client:
        claim = {"input": {"runnerName": "gone", "limit": EXPIRING, "leaseSeconds": 1}}
        claims = (await gql(client, CLAIM, claim))["claimJobs"]["claims"]
    assert len(claims) == EXPIRING

    # Both workers sweep every 0.1 s; wait until the leases are gone, then a while longer
    # so that a second requeue of the same claim would have happened (a quiet period: a
    # slow machine can only hide a second requeue, never invent one).
    async def expired() -> bool:
        return (JobStatus.RUNNING.value, 0, None) not in await _statuses(server, "lost")

    await until(expired, "the leases to expire")
    await asyncio.sleep(0.5)

    assert await _statuses(server, "lost") == {
        (JobStatus.FAILED.value, 0, TerminationReason.LEASE_EXPIRED.value): EXPIRING,
        (JobStatus.SUBMITTED.value, 1, None): EXPIRING,
    }
    assert _problems(server) == []  # no sweep failed on a busy or locked database


async def test_both_worker_processes_serve(server: Server) -> None:
    workers = worker_pids(server.pid)
    assert len(workers) == 2

    for paused in workers:
        # Only the other worker accepts while this one is stopped: a new connection's
        # answer comes from there. (Well inside uvicorn's 5 s worker health check.)
        os.kill(paused, signal.SIGSTOP)
        try:
            async with server.client() as client:  # a new connection
                data = await gql(client, "{ me { name } }", {})
        finally:
            os.kill(paused, signal.SIGCONT)
        assert data == {"me": {"name": "alice"}}

    assert worker_pids(server.pid) == workers  # neither was restarted


@pytest.mark.parametrize(("pool", "workers", "share"), [(10, 4, 3), (10, 1, 10), (2, 8, 1)])
def test_each_worker_keeps_its_share_of_the_pool(
    monkeypatch: pytest.MonkeyPatch, pool: int, workers: int, share: int
) -> None:
    """N workers on PostgreSQL open at most 2 x N x share connections, not N x the pool."""
    monkeypatch.setenv("RUNQL_DATABASE_URL", "postgresql+asyncpg://runql@127.0.0.1/none")
    monkeypatch.setenv("RUNQL_DB_POOL_SIZE", str(pool))
    monkeypatch.setenv("RUNQL_WORKERS", str(workers))

    engine = create_worker_app().state.db.engine  # builds the pool, connects to nothing

    assert (engine.pool.size(), engine.pool._max_overflow) == (share, share)


def test_workers_below_zero_are_refused() -> None:
    with pytest.raises(ValueError, match=r"RUNQL_WORKERS: must be at least 0 \(0: one per core\)"):
        Settings.from_env({"RUNQL_WORKERS": "-1"})
    assert Settings(workers=0).worker_count() == (os.cpu_count() or 1)


def _problems(server: Server) -> list[str]:
    """What the server logged at WARNING or above (its level here), or its exit."""
    assert server.process is not None
    lines = [line for line in server.log_text().splitlines() if not line.startswith("runql: ")]
    if server.process.returncode is not None:
        lines.append(f"server exited with {server.process.returncode}")
    return lines


async def _statuses(server: Server, name: str) -> dict[tuple[str, int, str | None], int]:
    """How many submissions of jobs called ``name`` there are per (status, submission
    number, reason)."""
    db = Database(server.database_url, pool_size=1)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(Job.status, Job.submission_num, Job.termination_reason, func.count())
                .where(Job.name == name)
                .group_by(Job.status, Job.submission_num, Job.termination_reason)
            )
            return {(str(s), n, r): count for s, n, r, count in rows}
    finally:
        await db.dispose()
