"""``jobsReady``: idle runners are woken when claimable jobs appear in projects they see."""

from __future__ import annotations

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.settings import Settings
from tests.factories import Factory
from tests.inloop import serving
from tests.live.helpers import CLAIM, COMPLETE, JOBS_READY, RUN_EVENTS, SUBMIT, submit_input
from tests.wsclient import socket


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


async def test_with_only_jobs_ready_subscribers_the_listener_spaces_its_reads(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """A busy pipeline commits far more often than a runner needs a signal: while every
    subscriber is coalesced the listener reads at most once per spacing (made an hour
    here), and a runEvents subscriber ends the wait at once."""
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server, socket(server.ws_url, alice.token) as ws:
        listener = server.app.state.event_listener
        ready = await ws.subscribe(JOBS_READY)
        await ws.nothing(ready, 0.3)
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="first"))
        assert (await ws.next(ready))["jobsReady"] == {"ready": 1}
        listener.coalesced_read_seconds = 3600.0
        await ws.nothing(ready, 0.3)  # let a wake-up already under way (NOTIFY) settle
        reads = listener.reads

        await server.gql(alice.token, SUBMIT, submit_input("vision", name="second"))
        await ws.nothing(ready, 0.5)  # within the spacing: not read, no signal
        assert listener.reads == reads

        watching = await ws.subscribe(RUN_EVENTS)  # wants events now: the wait ends
        assert (await ws.next(ready))["jobsReady"] == {"ready": 2}
        assert listener.reads > reads
        await ws.nothing(watching, 0.2)  # it starts after both submissions
