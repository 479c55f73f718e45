"""Two ``runql serve`` processes on one database: an event written through one reaches a
subscriber on the other (PostgreSQL: LISTEN/NOTIFY; SQLite: each process polls the log)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.migrate import upgrade
from tests.conftest import BACKENDS
from tests.factories import Factory
from tests.live.helpers import RUN_EVENTS, socket, submit_input
from tests.processes import fresh_database, serving_process

pytestmark = pytest.mark.slow  # two real runql serve processes: see DEVELOPERS.md, Tests

STARTUP_SECONDS = 30.0
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"""


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def _serve(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """One ``runql serve`` process, once its event listener is up."""
    async with serving_process(env, log, workers=1) as (url, process):
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            while True:
                assert process.returncode is None, _text(log)
                with contextlib.suppress(httpx.TransportError):
                    ready = await client.get("/readyz")
                    if ready.status_code == 200 and ready.json()["eventListener"]["state"] == "ok":
                        break
                assert time.monotonic() < deadline, _text(log)
                await asyncio.sleep(0.1)
        yield url


@pytest_asyncio.fixture(params=BACKENDS)
async def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str, str]]:
    """Two single-process servers on one fresh database; yields their URLs and a token."""
    async with fresh_database(request.param, tmp_path, "replicas") as database_url:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "RUNQL_DATABASE_URL": database_url,
            "RUNQL_SECRET_KEY": "replicas-test",
            "RUNQL_LOG_LEVEL": "WARNING",
        }
        db = Database(database_url)
        try:
            await upgrade(db)
            factory = Factory(db)
            alice = await factory.user("alice", admin=True)
            await factory.project("ml", [(alice, MemberRole.ADMIN)])
        finally:
            await db.dispose()
        async with _serve(env, tmp_path / "a.log") as a, _serve(env, tmp_path / "b.log") as b:
            yield a, b, alice.token


async def test_an_event_written_through_one_replica_reaches_a_subscriber_on_the_other(
    replicas: tuple[str, str, str],
) -> None:
    a, b, token = replicas
    ws_url = a.replace("http://", "ws://") + "/graphql"
    async with socket(ws_url, token) as ws:
        # The client offers permessage-deflate; runql serve declines it by default
        # (RUNQL_WS_COMPRESSION): every subscriber's small messages uncompressed.
        assert "Sec-WebSocket-Extensions" not in ws.ws.response.headers
        op = await ws.subscribe(RUN_EVENTS, {"project": "ml"})
        await ws.nothing(op, 0.3)
        async with httpx.AsyncClient(base_url=b, timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}"}
            for name in ("one", "two"):
                body = {"query": SUBMIT, "variables": submit_input("ml", name=name)}
                answer = (await client.post("/graphql", json=body, headers=headers)).json()
                assert "errors" not in answer, answer
        got = [(await ws.next(op))["runEvents"] for _ in range(2)]
    assert [e["kind"] for e in got] == ["RUN_SUBMITTED", "RUN_SUBMITTED"]
    assert got[0]["run"]["id"] != got[1]["run"]["id"]
