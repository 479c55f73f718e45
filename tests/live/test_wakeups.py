"""Wake-ups after a commit (``runql.db.wakeups``): this process's listener at once, other
processes by a ``NOTIFY`` sent after the commit, never inside the writing transaction;
and ``RUNQL_LIVE_UPDATES=false``, which writes no event log at all."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from runql.db.engine import Database, record_statements
from runql.db.enums import MemberRole
from runql.db.models import Event
from runql.db.wakeups import NOTIFY_CHANNEL, EventWakeups
from runql.settings import Settings
from runql.tasks.event_listener import asyncpg_dsn
from tests.factories import Factory
from tests.live.helpers import RUN_EVENTS, SUBMIT, WAIT, serving, socket, submit_input, until


async def test_a_commit_wakes_the_listener_of_its_own_process_at_once(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """With the log checked only hourly (and, on PostgreSQL, no NOTIFY heard: the listener
    is told by the commit itself before any notification could arrive), a subscriber of
    the writing process still gets the event: the commit woke the listener.

    On PostgreSQL the short re-check of a notified id stays on (it runs only after a
    wake-up): the event is final only once every older transaction of the cluster has
    ended, and one of another test (another xdist worker's, another suite's) may still be
    in flight at the commit; an hourly re-check would then wait for the hour."""
    alice = await factory.user("alice")
    await factory.project("vision", [(alice, MemberRole.USER)])
    poll = 3600.0 if db.is_sqlite else settings.event_poll_seconds
    hourly = dataclasses.replace(settings, event_poll_seconds=poll)
    async with serving(hourly, db) as server, socket(server.ws_url, alice.token) as ws:
        listener = server.app.state.event_listener
        listener.idle_check_seconds = 3600.0
        op = await ws.subscribe(RUN_EVENTS)
        await until(lambda: len(listener.subscribers) == 1)
        heard: list[int | None] = []
        db.wakeups.add_local(heard.append)
        try:
            await server.gql(alice.token, SUBMIT, submit_input("vision", name="woken"))
            assert heard, "the commit did not call the process's wake-ups"
        finally:
            db.wakeups.remove_local(heard.append)
        event = (await ws.next(op))["runEvents"]
        assert (event["kind"], event["run"]["status"]) == ("RUN_SUBMITTED", "SUBMITTED")


async def test_other_processes_are_notified_after_the_commit_not_inside_it(
    db: Database, factory: Factory
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no NOTIFY: other processes check the log on an interval")
    alice = await factory.user("alice")
    project = await factory.project("vision", [(alice, MemberRole.USER)])
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listening = await asyncpg.connect(asyncpg_dsn(db.url))
    try:
        await listening.add_listener(NOTIFY_CHANNEL, lambda *args: payloads.put_nowait(args[3]))
        with record_statements() as recorder:
            await factory.run(project, alice, name="told")
        assert not any("notify" in s.lower() for s in recorder.statements), recorder.statements
        async with db.read() as session:
            newest = await session.scalar(select(func.max(Event.id)))
        payload = await asyncio.wait_for(payloads.get(), WAIT)
        assert int(payload) == newest
    finally:
        await listening.close()


async def test_a_failing_notify_is_logged_once_retried_and_recovers(
    db: Database, caplog: Any
) -> None:
    """The database refuses connections: the wake-up is retried with backoff, logged once
    with its cause, and sent when the database is back; the writer never waits on it."""
    if db.is_sqlite:
        pytest.skip("SQLite has no NOTIFY")
    caplog.set_level(logging.INFO, logger="runql.db.wakeups")
    refusing = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/postgres")
    wakeups = EventWakeups(refusing)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listening = await asyncpg.connect(asyncpg_dsn(db.url))
    try:
        await listening.add_listener(NOTIFY_CHANNEL, lambda *args: payloads.put_nowait(args[3]))
        wakeups.committed(41)
        await until(lambda: wakeups.failures >= 3)
        wakeups.committed(42)  # committed while failing: sent with the next attempt
        wakeups._engine = db.engine  # the database is reachable again
        assert int(await asyncio.wait_for(payloads.get(), WAIT)) == 42
        await until(lambda: wakeups.failures == 0)
    finally:
        await listening.close()
        await refusing.dispose()
    records = [r for r in caplog.records if r.name == "runql.db.wakeups"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "ConnectionRefusedError" in warnings[0] or "OSError" in warnings[0], warnings
    assert any("recovered" in r.getMessage() for r in records if r.levelno == logging.INFO)


async def test_with_live_updates_off_nothing_is_logged_and_subscriptions_say_why(
    db: Database, database_url: str, settings: Settings, factory: Factory
) -> None:
    alice = await factory.user("alice")
    await factory.project("vision", [(alice, MemberRole.USER)])
    off = dataclasses.replace(settings, live_updates=False)
    quiet = Database(database_url, event_log=False)
    try:
        async with serving(off, quiet) as server, socket(server.ws_url, alice.token) as ws:
            await server.gql(alice.token, SUBMIT, submit_input("vision", name="unlogged"))
            op = await ws.subscribe(RUN_EVENTS)
            (error,) = (await ws.message(op))["payload"]["errors"]
            assert error["extensions"]["setting"] == "RUNQL_LIVE_UPDATES", error
            assert "turned off" in error["message"]
            async with httpx.AsyncClient(base_url=server.http_url) as client:
                ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()) == (
                200,
                {"status": "ready", "liveUpdates": "off"},
            )
    finally:
        await quiet.dispose()
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
