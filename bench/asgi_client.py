"""Calls the ASGI app the way a server would, with no HTTP client in between.

The in-process scenarios (1, 3, 4, 5, 7) time runql through its real app: the HTTP view,
authentication, GraphQL, JSON. They used httpx's ASGI transport, which spends a few ms
of CPU per request on the client's side (URL parsing, request and response models,
stream plumbing), and that time was counted as runql's. This driver hands the app one
``http`` scope, the body, and collects the answer: the figures hold the server's work.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message


class AsgiClient:
    """POSTs JSON bodies to an ASGI app in-process; answers ``(status, JSON body)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def post_json(
        self, path: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        raw_headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("runql.bench", 80),
        }
        answered = asyncio.Event()
        requested = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # a client disconnects only after the answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        await self.app(scope, receive, send)
        return status, json.loads(b"".join(chunks))
