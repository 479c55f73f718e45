"""The per-process event listener: it survives database errors and, on PostgreSQL, the
loss of its LISTEN connection, and reports its state on /readyz."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from runql.db.engine import Database
from runql.settings import Settings
from runql.tasks.event_listener import APPLICATION_NAME
from tests.factories import Factory
from tests.inloop import Served, serving
from tests.live.helpers import RUN_EVENTS, SUBMIT, submit_input
from tests.waiting import until
from tests.wsclient import Socket, socket


@contextlib.asynccontextmanager
async def _delivering(
    settings: Settings, db: Database, token: str
) -> AsyncIterator[tuple[Served, Socket, str]]:
    """A server and a ``runEvents`` subscriber that has been delivered an event: the live
    path works before the test makes trouble for it."""
    async with serving(settings, db) as server, socket(server.ws_url, token) as ws:
        op = await ws.subscribe(RUN_EVENTS)
        await ws.nothing(op, 0.2)
        await server.gql(token, SUBMIT, submit_input("vision", name="before"))
        assert (await ws.next(op))["runEvents"]["kind"] == "RUN_SUBMITTED"
        yield server, ws, op


async def test_the_listener_survives_database_errors_and_delivers_what_it_missed(
    db: Database, settings: Settings, factory: Factory, caplog: Any
) -> None:
    alice, _ = await factory.user_in_project()
    async with _delivering(settings, db, alice.token) as (server, ws, op):
        listener = server.app.state.event_listener
        caplog.set_level(logging.DEBUG, logger="runql.tasks.event_listener")
        await _rename(db, "events", "events_away")  # every read of the log now fails
        try:
            await until(lambda: listener.state == "degraded")
            await until(lambda: _failures(caplog) >= 3)  # retried, with backoff
            # A subscription that meets the outage gets a masked error, not the SQL.
            replay = await ws.subscribe(RUN_EVENTS, {"after": await _cursor_before(server)})
            message = await ws.message(replay)
            (error,) = message["payload"]["errors"]
            assert error["message"] == "Internal server error", error
            assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
            assert error["extensions"]["requestId"]
            async with httpx.AsyncClient(base_url=server.http_url) as client:
                ready = await client.get("/readyz")
            assert ready.status_code == 200  # queries still work
            # Between attempts it is "degraded"; during one, on PostgreSQL, "connecting"
            # again (a loaded machine makes that moment long): either way not "ok", with
            # the cause.
            assert ready.json()["eventListener"]["state"] in ("degraded", "connecting")
            assert "events" in ready.json()["eventListener"]["error"]
        finally:
            await _rename(db, "events_away", "events")
        await server.gql(alice.token, SUBMIT, submit_input("vision"))
        assert (await ws.next(op))["runEvents"]["kind"] == "RUN_SUBMITTED"
        assert listener.state == "ok"
    warnings = [
        r for r in caplog.records if r.name == "runql.tasks.event_listener" and r.levelno >= 30
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once, with cause
    assert "events" in warnings[0].getMessage()
    assert any("recovered" in r.getMessage() for r in caplog.records)


async def _cursor_before(server: Any) -> str:
    """A cursor before every event, signed with the server's key."""
    from runql.db.events import START
    from runql.resolvers.context import Context
    from runql.resolvers.pagination import encode_event_cursor

    app = server.app
    ctx = Context(db=app.state.db, settings=app.state.settings, viewer_or_none=None)
    return encode_event_cursor(ctx, START)


def _failures(caplog: Any) -> int:
    return sum("failed" in r.getMessage() for r in caplog.records if r.name.endswith("listener"))


async def _rename(db: Database, old: str, new: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_the_listener_recovers_when_its_connection_is_killed(
    db: Database, settings: Settings, factory: Factory
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has no LISTEN connection (it polls)")
    alice, _ = await factory.user_in_project()
    async with _delivering(settings, db, alice.token) as (server, ws, op):
        listener = server.app.state.event_listener
        async with db.engine.begin() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
        assert killed == 1
        # Written right away, maybe before the listener noticed: delivered all the same.
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="after"))
        event = (await ws.next(op))["runEvents"]
        await until(lambda: listener.reconnects == 1 and listener.state == "ok")
        # And the new connection is listening: the next event wakes it (with the idle
        # re-check an hour away, only a notification can).
        listener.idle_check_seconds = 3600
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="later"))
        later = (await ws.next(op))["runEvents"]
    assert event["kind"] == later["kind"] == "RUN_SUBMITTED"


async def test_readyz_reports_the_listener(
    db: Database, settings: Settings, factory: Factory
) -> None:
    async with serving(settings, db) as server:
        listener = server.app.state.event_listener
        await until(lambda: listener.state == "ok")
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            ready = (await client.get("/readyz")).json()
    mode = "poll" if db.is_sqlite else "listen"
    assert ready["eventListener"] == {"state": "ok", "subscribers": 0, "mode": mode}
