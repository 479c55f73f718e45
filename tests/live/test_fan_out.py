"""Fan-out: a live event costs the same reads whether one subscription or many show it
(``runql.tasks.event_listener.SharedBatch``), and each subscription still sees only what its
own viewer may see now."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.settings import Settings
from runql.tasks.event_listener import SharedBatch
from tests.factories import Factory, UserHandle
from tests.inloop import serving
from tests.live.helpers import RUN_EVENTS, SUBMIT, submit_input
from tests.waiting import until
from tests.wsclient import Socket, socket


@contextlib.contextmanager
def reads_of_runs_and_members(db: Database) -> Any:
    """Counts every statement (of any task, shared reads included) that reads the runs
    or the memberships: what showing an event costs, beside the write itself."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = " ".join(statement.split()).upper()
        if text.startswith("SELECT") and ("FROM RUNS" in text or "FROM MEMBERS" in text):
            seen.append(text)

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)


@contextlib.asynccontextmanager
async def subscribed(url: str, users: list[UserHandle]) -> AsyncIterator[list[tuple[Socket, str]]]:
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = []
        for user in users:
            ws = await stack.enter_async_context(socket(url, user.token))
            subscriptions.append((ws, await ws.subscribe(RUN_EVENTS, {"project": "vision"})))
        yield subscriptions


async def test_a_live_event_costs_the_same_reads_for_one_subscriber_or_eight(
    db: Database, settings: Settings, factory: Factory
) -> None:
    members = [await factory.user(f"member-{i}") for i in range(8)]
    await factory.project("vision", [(user, MemberRole.USER) for user in members])
    costs: dict[int, int] = {}
    async with serving(settings, db) as server:
        listener = server.app.state.event_listener
        for count in (1, 8):
            async with subscribed(server.ws_url, members[:count]) as subscriptions:
                await until(lambda n=count: len(listener.subscribers) == n)  # type: ignore[misc]
                with reads_of_runs_and_members(db) as reads:
                    name = f"seen-by-{count}"
                    await server.gql(members[0].token, SUBMIT, submit_input("vision", name=name))
                    for ws, op in subscriptions:
                        event_ = (await ws.next(op))["runEvents"]
                        assert event_["kind"] == "RUN_SUBMITTED"
                costs[count] = len(reads)
            await until(lambda: not listener.subscribers)
    # The submission's own reads, then the batch's runs and its subscribers' memberships:
    # once, whatever the number of subscribers.
    assert costs[8] == costs[1], costs


async def test_each_subscription_of_a_shared_batch_sees_only_its_viewer_s_projects(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice = await factory.user("alice")
    bob = await factory.user("bob")
    admin = await factory.user("root", admin=True)
    await factory.project("vision", [(alice, MemberRole.USER)])
    await factory.project("speech", [(bob, MemberRole.USER)])
    async with (
        serving(settings, db) as server,
        socket(server.ws_url, alice.token) as alice_ws,
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, admin.token) as admin_ws,
    ):
        listener = server.app.state.event_listener
        ops = [await ws.subscribe(RUN_EVENTS) for ws in (alice_ws, bob_ws, admin_ws)]
        await until(lambda: len(listener.subscribers) == 3)
        listener.read_now()
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="for-alice"))
        await server.gql(bob.token, SUBMIT, submit_input("speech", name="for-bob"))

        async def names(ws: Socket, op: str, count: int) -> list[str]:
            return [(await ws.next(op))["runEvents"]["run"]["id"] for _ in range(count)]

        alice_saw = await names(alice_ws, ops[0], 1)
        bob_saw = await names(bob_ws, ops[1], 1)
        admin_saw = await names(admin_ws, ops[2], 2)
        await alice_ws.nothing(ops[0], 0.3)
        await bob_ws.nothing(ops[1], 0.3)
    assert alice_saw != bob_saw
    assert sorted(admin_saw) == sorted(alice_saw + bob_saw)


async def test_a_shared_result_is_computed_once_and_outlives_a_cancelled_caller() -> None:
    """The first caller's cancellation (its client went away) does not cancel the read
    the other subscriptions of the batch wait for; a failure reaches every caller."""
    batch = SharedBatch([])
    calls = 0
    release = asyncio.Event()

    async def read() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "rows"

    first = asyncio.create_task(batch.once("state", read))
    second = asyncio.create_task(batch.once("state", read))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "rows"
    assert calls == 1

    async def failing() -> str:
        raise RuntimeError("database went away")

    outcomes = await asyncio.gather(
        batch.once("members", failing), batch.once("members", failing), return_exceptions=True
    )
    assert [str(o) for o in outcomes] == ["database went away"] * 2
