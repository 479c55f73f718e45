"""Limits of live updates: subscriptions per connection, a slow consumer's backlog."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from runql.db.engine import Database
from runql.settings import Settings
from runql.tasks.event_listener import Subscriber
from tests.factories import Factory
from tests.inloop import serving
from tests.live.helpers import (
    CLAIM,
    JOBS_READY,
    RUN_EVENTS,
    SUBMIT,
    caught_up,
    log_of,
    seen,
    submit_input,
)
from tests.waiting import until
from tests.wsclient import socket


async def test_subscriptions_per_connection_are_limited(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    limited = dataclasses.replace(settings, max_subscriptions_per_connection=2)
    async with serving(limited, db) as server, socket(server.ws_url, alice.token) as ws:
        first = await ws.subscribe(RUN_EVENTS)
        await ws.subscribe(JOBS_READY)
        await until(lambda: len(server.app.state.event_listener.subscribers) == 2)
        third = await ws.subscribe(RUN_EVENTS)
        assert _refusal(await ws.message(third), limit=2)
        # Another socket has its own allowance; ending one frees a place on this one.
        async with socket(server.ws_url, alice.token) as other:
            op = await other.subscribe(RUN_EVENTS)
            await other.nothing(op, 0.2)
        await ws.complete(first)
        await until(lambda: len(server.app.state.event_listener.subscribers) == 1)
        again = await ws.subscribe(RUN_EVENTS)
        await ws.nothing(again, 0.2)
        await server.gql(alice.token, SUBMIT, submit_input("vision"))
        assert (await ws.next(again))["runEvents"]["kind"] == "RUN_SUBMITTED"


ME = "query { me { name } }"


def _refusal(message: dict[str, Any], *, limit: int) -> bool:
    """``message`` refuses a subscription over the per-connection limit, as every such
    refusal does: one ``error`` message, ``LIMIT_EXCEEDED`` naming the setting."""
    assert message["type"] == "error", message
    [error] = message["payload"]
    assert error["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "setting": "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        "limit": limit,
    }, error
    assert "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION" in error["message"]
    return True


@pytest.mark.parametrize("limit", [3, 110])
async def test_a_burst_of_subscriptions_is_refused_past_the_limit_each_naming_it(
    db: Database, settings: Settings, factory: Factory, limit: int
) -> None:
    """Subscriptions sent at once, none waiting for the one before: each counts from the
    moment it arrives, so exactly ``limit`` run and every other one is refused the same
    way (strawberry's own cap of 100 operations in flight, with its bare "Subscription
    limit reached", never answers)."""
    alice, _ = await factory.user_in_project()
    limited = dataclasses.replace(settings, max_subscriptions_per_connection=limit)
    extra = 12
    async with serving(limited, db) as server, socket(server.ws_url, alice.token) as ws:
        ops = [await ws.subscribe(JOBS_READY) for _ in range(limit + extra)]
        # Places go in the order the messages arrive: the first ``limit`` run.
        running, refused = ops[:limit], ops[limit:]
        for op in refused:
            assert _refusal(await ws.message(op), limit=limit)
        await until(lambda: len(server.app.state.event_listener.subscribers) == limit)
        # (jobsReady answers at once only when jobs are ready: none are)
        await asyncio.gather(*(ws.nothing(op, 0.3) for op in running))
        # A full socket refuses any operation alike (its type is not known on arrival);
        # ending a subscription frees a place, and a query gives its own back once it is
        # known to be one: queries then run however many come.
        assert _refusal(await ws.message(await ws.subscribe(ME)), limit=limit)
        await ws.complete(running[0])
        await until(lambda: len(server.app.state.event_listener.subscribers) == limit - 1)
        for _ in range(3):
            assert (await ws.next(await ws.subscribe(ME))) == {"me": {"name": "alice"}}


async def test_a_consumer_too_far_behind_is_cut_off_and_resumes_from_its_cursor(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """More events at once than the backlog allows: the subscription ends with
    LIMIT_EXCEEDED naming the setting, and resuming from its last cursor loses nothing."""
    alice, _ = await factory.user_in_project()
    small = dataclasses.replace(settings, max_event_backlog=5)
    async with serving(small, db) as server, socket(server.ws_url, alice.token) as ws:
        op = await ws.subscribe(RUN_EVENTS)
        await ws.nothing(op, 0.2)
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="one"))
        (first,) = [(await ws.next(op))["runEvents"]]
        wide = submit_input("vision", *({"name": f"j{i}"} for i in range(8)))
        await server.gql(alice.token, SUBMIT, wide)
        await server.gql(alice.token, CLAIM, {"input": {"runnerName": "r", "limit": 8}})
        last = first
        message = await ws.message(op)
        while "errors" not in message["payload"]:  # what came before the claim's 9 events
            last = message["payload"]["data"]["runEvents"]
            message = await ws.message(op)
        error = message["payload"]["errors"][0]
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert error["extensions"]["setting"] == "RUNQL_MAX_EVENT_BACKLOG"
        assert (await ws.message(op))["type"] == "complete"
        assert not server.app.state.event_listener.subscribers  # its queue is gone
        await caught_up(server, db)
        log = await log_of(db)
        start = log.index(seen([last])[0]) + 1
        resumed = await ws.subscribe(RUN_EVENTS, {"after": last["cursor"]})
        got = await ws.events(resumed, len(log) - start)
        await ws.nothing(resumed, 0.3)
    assert seen(got) == log[start:]
    assert sum(kind == "JOB_CLAIMED" for kind, _, _ in seen(got)) == 8


def test_a_subscriber_s_queue_never_holds_more_than_its_backlog() -> None:
    subscriber = Subscriber(project_ids=None, run_ids=None, max_backlog=3)
    events: list[Any] = [_event(i) for i in range(1, 4)]
    subscriber.offer(events)
    assert subscriber.backlog == 3 and not subscriber.overflowed
    subscriber.offer([_event(4)])
    assert subscriber.overflowed and subscriber.backlog == 0
    subscriber.offer([_event(5)])
    assert subscriber.backlog == 0


def _event(i: int) -> Any:
    import datetime as dt

    from runql.db.enums import EventKind
    from runql.db.events import EventPosition, EventRow

    return EventRow(
        EventPosition(0, i), EventKind.RUN_SUBMITTED, dt.datetime.now(dt.UTC), 1, i, None
    )


async def test_the_legacy_protocol_refuses_a_burst_past_the_limit_the_same_way(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """graphql-ws (the legacy protocol) counts and refuses like graphql-transport-ws,
    past strawberry's own cap of 100 too."""
    alice, _ = await factory.user_in_project()
    limit, extra = 104, 6
    limited = dataclasses.replace(settings, max_subscriptions_per_connection=limit)
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with (
        serving(limited, db) as server,
        connect(server.ws_url, subprotocols=["graphql-ws"], additional_headers=headers) as ws,  # type: ignore[list-item]
    ):
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        for op in range(limit + extra):
            start = {"id": str(op), "type": "start", "payload": {"query": JOBS_READY}}
            await ws.send(json.dumps(start))
        refusals = [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(extra)]
        await until(lambda: len(server.app.state.event_listener.subscribers) == limit)
    assert sorted(int(r["id"]) for r in refusals) == list(range(limit, limit + extra))
    for refusal in refusals:
        assert refusal["type"] == "error", refusal
        assert refusal["payload"]["extensions"] == {
            "code": "LIMIT_EXCEEDED",
            "setting": "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            "limit": limit,
        }
