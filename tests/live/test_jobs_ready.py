"""``jobsReady``: idle runners are woken when claimable jobs appear in projects they see."""

from __future__ import annotations

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.settings import Settings
from tests.factories import Factory
from tests.live.helpers import (
    CLAIM,
    COMPLETE,
    JOBS_READY,
    SUBMIT,
    serving,
    socket,
    submit_input,
)


async def test_runners_wake_when_jobs_become_claimable(
    db: Database, settings: Settings, factory: Factory
) -> None:
    runner = await factory.user("runner")
    alice = await factory.user("alice")
    await factory.project("vision", [(runner, MemberRole.USER), (alice, MemberRole.USER)])
    await factory.project("secret", [(alice, MemberRole.USER)])
    async with serving(settings, db) as server, socket(server.ws_url, runner.token) as ws:
        op = await ws.subscribe(JOBS_READY)
        await ws.nothing(op, 0.3)  # nothing ready: no signal

        # A project the runner cannot see: no signal.
        await server.gql(alice.token, SUBMIT, submit_input("secret", {"name": "x"}))
        await ws.nothing(op, 0.5)

        # A DAG a -> b: a is ready at once, b once a is done.
        dag = submit_input("vision", {"name": "a"}, {"name": "b", "dependsOn": ["a"]})
        await server.gql(alice.token, SUBMIT, dag)
        assert (await ws.next(op))["jobsReady"] == {"ready": 1}

        claims = await server.gql(runner.token, CLAIM, {"input": {"runnerName": "r", "limit": 5}})
        (claim,) = claims["claimJobs"]["claims"]
        await ws.nothing(op, 0.5)  # a claim makes nothing ready

        done = {"jobId": claim["job"]["id"], "claimToken": claim["claimToken"], "status": "DONE"}
        await server.gql(runner.token, COMPLETE, {"input": {"completions": [done]}})
        assert (await ws.next(op))["jobsReady"] == {"ready": 1}  # b was unblocked


async def test_a_runner_subscribing_with_work_waiting_is_told_at_once(
    db: Database, settings: Settings, factory: Factory
) -> None:
    runner = await factory.user("runner")
    project = await factory.project("vision", [(runner, MemberRole.USER)])
    for _ in range(3):
        await factory.run(project, runner)
    async with serving(settings, db) as server, socket(server.ws_url, runner.token) as ws:
        op = await ws.subscribe(JOBS_READY, {"project": "vision"})
        assert (await ws.next(op))["jobsReady"] == {"ready": 3}
        elsewhere = await ws.subscribe(JOBS_READY, {"project": "nope"})
        assert await ws.error_codes(elsewhere) == ["NOT_FOUND"]


async def test_wake_ups_are_coalesced(db: Database, settings: Settings, factory: Factory) -> None:
    """Many submissions while the runner is being told: far fewer signals than events,
    the last one counting them all."""
    runner = await factory.user("runner")
    await factory.project("vision", [(runner, MemberRole.USER)])
    async with serving(settings, db) as server, socket(server.ws_url, runner.token) as ws:
        op = await ws.subscribe(JOBS_READY)
        await ws.nothing(op, 0.2)
        wide = submit_input("vision", *({"name": f"j{i}"} for i in range(20)))
        await server.gql(runner.token, SUBMIT, wide)
        assert (await ws.next(op))["jobsReady"] == {"ready": 20}
        await ws.nothing(op, 0.3)  # one transaction, 20 ready jobs: one signal
