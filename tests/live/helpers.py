"""A real runql under uvicorn (lifespan on: the event listener runs) and a
graphql-transport-ws client that keeps subscriptions open (tests/live/)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from runql.db import events as event_log
from runql.db.engine import Database
from runql.db.models import Event
from runql.settings import Settings
from runql.web.app import create_app
from runql.web.websocket import max_frame_bytes

PROTOCOL = "graphql-transport-ws"
#: How long to wait for an event. Generous: on PostgreSQL delivery waits for every
#: older writing transaction of the whole cluster (another test suite's included).
WAIT = 60.0

RUN_EVENTS = """
subscription($project: String, $runIds: [ID!], $after: String) {
  runEvents(project: $project, runIds: $runIds, after: $after) {
    cursor kind at run { id status } job { id status submissionNum }
  }
}
"""
JOBS_READY = "subscription($project: String) { jobsReady(project: $project) { ready } }"
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"""
CLAIM = """mutation($input: ClaimJobsInput!) {
  claimJobs(input: $input) { claims { claimToken job { id } } }
}"""
COMPLETE = """mutation($input: CompleteJobsInput!) {
  completeJobs(input: $input) { results { jobId error { code } } }
}"""
STOP = "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { error { code } } } }"


class Served:
    """A running server: its app, ws URL and an HTTP client for mutations."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.app = app
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"
        self.http_url = f"http://127.0.0.1:{port}"

    async def gql(self, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.http_url, timeout=30) as client:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {token}"},
            )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


@contextlib.asynccontextmanager
async def serving(settings: Settings, db: Database) -> AsyncIterator[Served]:
    """runql under uvicorn with its lifespan (listener, pruner), in this event loop."""
    app = create_app(settings, db=db)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        ws_max_size=max_frame_bytes(settings.max_body_bytes),
        ws_per_message_deflate=settings.ws_compression,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(app, port)
    finally:
        server.should_exit = True
        await task


class Socket:
    """One graphql-transport-ws connection with any number of open operations."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._inbox: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def init(self, payload: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.ws.send(json.dumps(message))
        assert json.loads(await asyncio.wait_for(self.ws.recv(), WAIT)) == {
            "type": "connection_ack"
        }
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            self._queue(message.get("id", "")).put_nowait(message)

    def _queue(self, op_id: str) -> asyncio.Queue[dict[str, Any]]:
        return self._inbox.setdefault(op_id, asyncio.Queue())

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        self._queue(op_id)
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def message(self, op_id: str, seconds: float = WAIT) -> dict[str, Any]:
        return await asyncio.wait_for(self._queue(op_id).get(), seconds)

    async def next(self, op_id: str, seconds: float = WAIT) -> dict[str, Any]:
        """The next ``next`` payload's data; fails on anything else."""
        message = await self.message(op_id, seconds)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def events(self, op_id: str, count: int) -> list[dict[str, Any]]:
        return [(await self.next(op_id))["runEvents"] for _ in range(count)]

    async def nothing(self, op_id: str, seconds: float = 0.5) -> None:
        """No message arrives for the operation within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            message = await self.message(op_id, seconds)
            raise AssertionError(f"unexpected message: {message}")

    async def error_codes(self, op_id: str) -> list[str]:
        """The operation ends with errors: their codes (``next`` with errors then
        ``complete``, or an ``error`` message)."""
        message = await self.message(op_id)
        if message["type"] == "error":
            errors = message["payload"]
        else:
            assert message["type"] == "next", message
            errors = message["payload"]["errors"]
            assert (await self.message(op_id))["type"] == "complete"
        return [e["extensions"]["code"] for e in errors]

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


@contextlib.asynccontextmanager
async def socket(
    url: str, token: str | None = None, *, header_token: str | None = None
) -> AsyncIterator[Socket]:
    headers = {"Authorization": f"Bearer {header_token}"} if header_token else None
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:  # type: ignore[list-item]
        sock = Socket(ws)
        await sock.init({"Authorization": f"Bearer {token}"} if token else None)
        try:
            yield sock
        finally:
            await sock.close()


def submit_input(project: str, *jobs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"project": project, "jobs": list(jobs) or [{"name": "a"}]}
    if name is not None:
        payload["name"] = name
    return {"input": payload}


async def until(predicate: Any, seconds: float = WAIT) -> None:
    """Polls ``predicate()`` (sync) until true."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def caught_up(server: Served, db: Database) -> None:
    """Until the server's event listener has read every event in the log (its next
    subscriber replays them all: nothing is left for its live path)."""
    async with db.read() as session:
        newest = (
            await session.execute(
                select(Event.txid, Event.id).order_by(Event.txid.desc(), Event.id.desc()).limit(1)
            )
        ).first()
    if newest is None:
        return
    wanted = event_log.EventPosition(int(newest.txid), int(newest.id))
    listener = server.app.state.event_listener
    if not listener.subscribers:  # an idle listener only moves to safe positions: wake it
        listener.read_now()
    await until(lambda: listener.position is not None and listener.position >= wanted)


async def log_of(db: Database) -> list[tuple[str, int, int | None]]:
    """The whole event log as (kind, run id, job id), in position order. Read directly,
    not through ``read_events``: after the writes returned every row is committed, but on
    PostgreSQL ``read_events`` holds back rows while any older transaction of the cluster
    is in flight (another test suite's, say), and the test must know what to wait for."""
    async with db.read() as session:
        rows = await session.execute(
            select(Event.kind, Event.run_id, Event.job_id).order_by(Event.txid, Event.id)
        )
    return [(str(kind), run_id, job_id) for kind, run_id, job_id in rows]


def seen(events: list[dict[str, Any]]) -> list[tuple[str, int, int | None]]:
    return [
        (e["kind"], int(e["run"]["id"]), int(e["job"]["id"]) if e["job"] else None) for e in events
    ]
