"""Two ``runql serve`` processes on one database: an event written through one reaches a
subscriber on the other (PostgreSQL: LISTEN/NOTIFY; SQLite: each process polls the log)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import BACKENDS
from tests.live.helpers import RUN_EVENTS
from tests.processes import Server, fresh_database, prepare_database, running
from tests.wsclient import socket

pytestmark = pytest.mark.slow  # two real runql serve processes: see DEVELOPERS.md, Tests


@pytest_asyncio.fixture(params=BACKENDS)
async def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Server, Server]]:
    """Two single-process servers on one fresh database, each ready with its event
    listener up."""
    async with fresh_database(request.param, tmp_path, "replicas") as database_url:
        token = await prepare_database(database_url, "ml", user="alice")
        a = Server(database_url, token, tmp_path / "a.log")
        b = Server(database_url, token, tmp_path / "b.log")
        async with running(a), running(b):
            yield a, b


async def test_an_event_written_through_one_replica_reaches_a_subscriber_on_the_other(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    async with socket(a.ws_url, a.token) as ws:
        # The client offers permessage-deflate; runql serve declines it by default
        # (RUNQL_WS_COMPRESSION): every subscriber's small messages uncompressed.
        assert "Sec-WebSocket-Extensions" not in ws.ws.response.headers
        op = await ws.subscribe(RUN_EVENTS, {"project": "ml"})
        await ws.nothing(op, 0.3)
        for name in ("one", "two"):
            await b.submit("ml", [{"name": "a"}], name=name)
        got = await ws.events(op, 2)
    assert [e["kind"] for e in got] == ["RUN_SUBMITTED", "RUN_SUBMITTED"]
    assert got[0]["run"]["id"] != got[1]["run"]["id"]
