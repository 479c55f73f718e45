"""The suite's one GraphQL-over-WebSocket client (graphql-transport-ws), for every test
that talks to a real server: queries and mutations (``execute``), subscriptions that
stay open (``subscribe``, ``next``, ``nothing``), and how the server closed the socket
(``closed``). A reader task sorts the server's messages by operation id, so any number of
operations can be open at once and each is read in its own order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.waiting import DEADLINE

PROTOCOL = "graphql-transport-ws"
#: What an operation's queue gets once the socket is closed.
_CLOSED: dict[str, Any] = {"type": "(socket closed)"}


def codes(body: dict[str, Any]) -> list[str]:
    """The error codes of a result, in order (``[]`` for none)."""
    return [error["extensions"]["code"] for error in body.get("errors") or []]


class Socket:
    """One graphql-transport-ws connection with any number of open operations."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._inbox: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed_by: ConnectionClosed | None = None

    async def init(self, payload: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.ws.send(json.dumps(message))
        assert json.loads(await asyncio.wait_for(self.ws.recv(), DEADLINE)) == {
            "type": "connection_ack"
        }
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                message = json.loads(await self.ws.recv())
                self._queue(message.get("id", "")).put_nowait(message)
        except ConnectionClosed as closed:
            self._closed_by = closed
        finally:
            for queue in self._inbox.values():
                queue.put_nowait(_CLOSED)

    def _queue(self, op_id: str) -> asyncio.Queue[dict[str, Any]]:
        return self._inbox.setdefault(op_id, asyncio.Queue())

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Sends a ``subscribe`` message (any operation: that is the protocol's word);
        returns its id."""
        op_id = str(next(self._ids))
        self._queue(op_id)
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def message(self, op_id: str, seconds: float = DEADLINE) -> dict[str, Any]:
        """The operation's next message of any type (fails if the socket closed first)."""
        queue = self._queue(op_id)
        if queue.empty() and self._reader is not None and self._reader.done():
            queue.put_nowait(_CLOSED)
        message = await asyncio.wait_for(queue.get(), seconds)
        assert message is not _CLOSED, f"the socket closed: {self._closed_by!r}"
        return message

    async def next(self, op_id: str, seconds: float = DEADLINE) -> dict[str, Any]:
        """The next ``next`` payload's data; fails on anything else."""
        message = await self.message(op_id, seconds)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def events(self, op_id: str, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events of a ``runEvents`` subscription."""
        return [(await self.next(op_id))["runEvents"] for _ in range(count)]

    async def nothing(self, op_id: str, seconds: float = 0.5) -> None:
        """No message arrives for the operation within ``seconds`` (a quiet period: a slow
        machine can only make this pass)."""
        with contextlib.suppress(TimeoutError):
            message = await self.message(op_id, seconds)
            raise AssertionError(f"unexpected message: {message}")

    async def result(self, op_id: str) -> dict[str, Any]:
        """The operation's single result, after which it must end: the ``next`` payload
        (``data`` and/or ``errors``) followed by ``complete``, or ``{"errors": ...}`` for
        an ``error`` message."""
        message = await self.message(op_id)
        if message["type"] == "error":
            return {"errors": message["payload"]}
        assert message["type"] == "next", message
        assert await self.message(op_id) == {"id": op_id, "type": "complete"}
        payload: dict[str, Any] = message["payload"]
        return payload

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A query or mutation over the socket: its result (see ``result``)."""
        return await self.result(await self.subscribe(query, variables))

    async def error_codes(self, op_id: str) -> list[str]:
        """The operation ends with errors: their codes."""
        found = codes(await self.result(op_id))
        assert found, "the operation ended without errors"
        return found

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))

    async def closed(self) -> tuple[int, str]:
        """Waits for the server to close the socket; the code and reason it sent."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), DEADLINE)
        assert self._closed_by is not None and self._closed_by.rcvd is not None, self._closed_by
        return self._closed_by.rcvd.code, self._closed_by.rcvd.reason

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
    """A socket to ``url`` (ws://…/graphql), acknowledged: ``token`` is sent in
    ``connection_init``'s payload, ``header_token`` in the handshake's Authorization."""
    headers = {"Authorization": f"Bearer {header_token}"} if header_token else None
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        sock = Socket(ws)
        await sock.init({"Authorization": f"Bearer {token}"} if token else None)
        try:
            yield sock
        finally:
            await sock.close()
