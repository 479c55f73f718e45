"""runql under uvicorn in the test's own event loop, as ``runql serve`` runs it (lifespan
on: the event listener, the pruner and the lease sweeper run; the same WebSocket frame
limit), but with the app's objects within the test's reach (``app.state``, the listener).
For runql as a separate process: tests/processes.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from runql.db.engine import Database
from runql.settings import Settings
from runql.web.app import create_app
from runql.web.websocket import max_frame_bytes
from tests.waiting import DEADLINE, until


class Served:
    """A running server: its app, ws URL and an HTTP client for mutations."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.app = app
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"
        self.http_url = f"http://127.0.0.1:{port}"

    async def gql(self, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        """POST a GraphQL document as ``token``'s user; its ``data`` (fails on errors)."""
        async with httpx.AsyncClient(base_url=self.http_url, timeout=DEADLINE) as client:
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
    """runql under uvicorn on a free 127.0.0.1 port, in this event loop, once started."""
    app = create_app(settings, db=db)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        ws_max_size=max_frame_bytes(settings.max_body_bytes),  # as `runql serve` does
        ws_per_message_deflate=settings.ws_compression,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()  # startup failed: raise its error
            raise AssertionError("uvicorn stopped before it started")
        return server.started

    try:
        await until(started, "uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(app, port)
    finally:
        server.should_exit = True
        await task
