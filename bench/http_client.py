"""A minimal keep-alive HTTP/1.1 GraphQL client for the bench's load generators.

The bench's clients run on the same small machine as the server they measure. httpx
costs several ms of CPU per request (about as much as the server's own work on a short
request), so a load made with it measures the client as much as the server. This client
writes one POST per request on one kept-alive connection (asyncio turns ``TCP_NODELAY``
on) and reads the answer by its ``content-length``: real HTTP against ``runql serve``,
with little Python around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class Client:
    """One keep-alive HTTP/1.1 connection to the server, counting the requests it
    sends."""

    def __init__(self, base_url: str, token: str) -> None:
        self.host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.head = (
            f"POST /graphql HTTP/1.1\r\nhost: {self.host}:{port}\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        ).encode()
        self.requests = 0
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.post({"query": query, "variables": variables})

    async def post(self, request: dict[str, Any]) -> dict[str, Any]:
        """POSTs one GraphQL request body as it is (e.g. a persisted query's hash alone)."""
        if self.streams is None:  # asyncio turns TCP_NODELAY on for it
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        self.requests += 1
        body = json.dumps(request).encode()
        writer.write(self.head + b"content-length: %d\r\n\r\n" % len(body) + body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = head.split(" ", 2)[1]
        length = next(
            int(line.split(":", 1)[1])
            for line in head.split("\r\n")
            if line.startswith("content-length:")
        )
        payload = json.loads(await reader.readexactly(length))
        if status != "200" or payload.get("errors"):
            raise RuntimeError(f"bench request failed ({status}): {payload.get('errors')}")
        data: dict[str, Any] = payload["data"]
        return data

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            with contextlib.suppress(OSError):
                await self.streams[1].wait_closed()
