"""Limits of live updates: subscriptions per connection, a slow consumer's backlog."""

from __future__ import annotations

import dataclasses
from typing import Any

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
        message = await ws.message(third)
        error = message["payload"]["errors"][0]
        assert error["extensions"] == {
            "code": "LIMIT_EXCEEDED",
            "setting": "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            "limit": 2,
        }, error
        assert (await ws.message(third))["type"] == "complete"
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
