"""GraphQL subscriptions for runql's own clients: a small synchronous
``graphql-transport-ws`` client on ``websockets.sync.client``.

The runner's ``jobsReady`` waker and ``runql ps --watch`` each hold one subscription on
one socket, read by one thread, so this is a blocking client: :meth:`LiveSocket.connect`
opens the socket at the API's URL (``http`` becomes ``ws``, same path) and authenticates
with the ``connection_init`` payload (docs/live-updates.md), :meth:`LiveSocket.subscribe`
starts the operation, :meth:`LiveSocket.receive` returns each ``next`` payload's data.
Failures are the HTTP client's two kinds (``runql.clients.api``): :class:`Unreachable`
when there is no usable socket (refused, a handshake that is not a WebSocket upgrade, a
drop, a stream the server ended) and :class:`ApiError` when the server answered the
operation with errors (``CURSOR_EXPIRED``, ``UNAUTHENTICATED``, ``LIMIT_EXCEEDED``...,
their codes in ``codes``). Either way the subscription is over: callers re-list or fall
back to polling. Protocol pings are answered; websockets' own keepalive pings detect a
dead peer.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import (
    ConnectionClosed,
    InvalidStatus,
    WebSocketException,
)
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from runql.clients.api import ApiError, Endpoint, Unreachable
from runql.error_codes import ErrorCode

PROTOCOL = Subprotocol("graphql-transport-ws")
OPEN_SECONDS = 10.0  # TCP, the upgrade and connection_ack
CLOSE_SECONDS = 2.0  # the closing handshake, on shutdown

JOBS_READY = "subscription($project: String) { jobsReady(project: $project) { ready } }"
#: ``ps --watch`` re-reads its page when events arrive: it needs to know only that they did.
RUN_EVENTS = """
subscription($project: String, $after: String) {
  runEvents(project: $project, after: $after) { cursor }
}
"""


def websocket_url(url: str) -> str:
    """The API's WebSocket URL: ``http(s)://host/graphql`` becomes ``ws(s)://host/graphql``."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def _api_error(errors: object) -> ApiError:
    listed = errors if isinstance(errors, list) else [errors]
    items: list[dict[str, Any]] = [e for e in listed if isinstance(e, dict)]
    items = items or [{"message": "error without detail"}]
    codes = [str((e.get("extensions") or {}).get("code", "")) for e in items]
    text = "; ".join(str(e.get("message")) for e in items)
    if ErrorCode.UNAUTHENTICATED in codes:
        text = f"the server refused the API token in RUNQL_TOKEN ({text})"
    return ApiError(text, codes)


class LiveSocket:
    """One ``graphql-transport-ws`` connection carrying one subscription at a time."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self.ws = ws
        self.url = url
        self._ids = itertools.count(1)
        self._operation: str | None = None

    @classmethod
    def connect(cls, endpoint: Endpoint, open_timeout: float = OPEN_SECONDS) -> LiveSocket:
        """Open the socket and wait for ``connection_ack``."""
        url = websocket_url(endpoint.url)
        try:
            # Entered, as websockets (17.1+) asks, by hand: close() closes it.
            ws = connect(
                url,
                subprotocols=[PROTOCOL],
                open_timeout=open_timeout,
                close_timeout=CLOSE_SECONDS,
            ).__enter__()
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise Unreachable(f"{url}: no WebSocket here (HTTP {status} to the upgrade)") from exc
        except WebSocketException as exc:
            raise Unreachable(f"{url}: WebSocket handshake failed: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
        if ws.subprotocol != PROTOCOL:
            ws.close()
            raise Unreachable(f"{url}: the server does not speak {PROTOCOL}")
        socket = cls(ws, url)
        try:
            authorization = {"Authorization": f"Bearer {endpoint.token}"}
            socket._send({"type": "connection_init", "payload": authorization})
            deadline = time.monotonic() + open_timeout
            while True:
                message = socket._read(max(0.0, deadline - time.monotonic()))
                if message is None:
                    raise Unreachable(f"{url}: no connection_ack within {open_timeout:g} s")
                if message.get("type") == "connection_ack":
                    return socket
        except BaseException:
            socket.close()
            raise

    def __enter__(self) -> LiveSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the socket (the server ends its subscriptions). Safe from any thread,
        also while another thread waits in :meth:`receive`, which then raises
        :class:`Unreachable`."""
        self.ws.close()

    def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> None:
        """Start the subscription (a previous one on this socket is completed first)."""
        if self._operation is not None:
            self._send({"id": self._operation, "type": "complete"})
        self._operation = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        self._send({"id": self._operation, "type": "subscribe", "payload": payload})

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next ``next`` payload's data; ``None`` when ``timeout`` seconds pass first.

        Raises :class:`ApiError` when the operation answers errors (it is over: subscribe
        again) and :class:`Unreachable` when the socket closes or the server completes the
        stream."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._read(left)
            if message is None:
                return None
            if message.get("id") != self._operation:
                continue  # the ``complete`` of an earlier operation, a pong, ...
            kind = message.get("type")
            payload = message.get("payload")
            if kind == "next" and isinstance(payload, dict):
                if payload.get("errors"):
                    self._operation = None
                    raise _api_error(payload["errors"])
                data = payload.get("data")
                if isinstance(data, dict):
                    return data
                raise ApiError(f"{self.url}: a next message without data", [])
            if kind == "error":
                self._operation = None
                raise _api_error(payload)
            if kind == "complete":
                self._operation = None
                raise Unreachable(f"{self.url}: the server ended the subscription")

    # -- the wire ---------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise Unreachable(_closed(self.url, exc)) from exc

    def _read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message that is not a protocol ping; ``None`` on timeout."""
        while True:
            try:
                raw = self.ws.recv(timeout)
            except TimeoutError:
                return None
            except ConnectionClosed as exc:
                raise Unreachable(_closed(self.url, exc)) from exc
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                raise ApiError(f"{self.url}: not a {PROTOCOL} message: {str(raw)[:80]!r}", [])
            if message.get("type") == "ping":
                self._send({"type": "pong"})
                continue
            return message


def _closed(url: str, exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return f"{url}: the connection dropped"
    reason = f" ({frame.reason})" if frame.reason else ""
    return f"{url}: the WebSocket closed with code {frame.code}{reason}"
