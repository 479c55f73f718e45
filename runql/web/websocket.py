"""GraphQL over WebSockets: every operation on a socket is a request of its own.

strawberry builds one context per *connection* (``get_context`` at the handshake) and
runs every operation of the socket with it. runql's context carries per-request state:
DataLoaders with their caches and the authenticated viewer. Kept for the life of a socket
they would answer ``run(id)`` from what the socket read first, let a user removed from a
project (or whose token was revoked) keep reading and writing it, and skip the body limit
HTTP enforces. So here:

* The context strawberry keeps is the *connection's*: the handshake request and the
  ``connection_init`` payload (``connection_params``), no viewer, no loaders. Resolvers
  never see it.
* Each operation (graphql-transport-ws ``subscribe``, graphql-ws ``start``) gets its own
  :class:`~runql.resolvers.context.Context`, built in the operation's task: the
  connection's token authenticated again, fresh loaders, a new request id, one log line
  (``runql.observe.logs.request_scope``), errors masked with that id. A subscription keeps its
  operation's context for as long as it streams.
* The token: ``Authorization`` in the ``connection_init`` payload (what a browser can
  send: it cannot set headers on a WebSocket handshake), else the handshake's
  ``Authorization`` header. A missing or invalid token is not refused at connection time:
  each operation answers ``UNAUTHENTICATED``, as over HTTP.
* A ``subscribe``/``start`` message larger than ``max_body_bytes`` answers one error,
  ``LIMIT_EXCEEDED`` naming ``RUNQL_MAX_BODY_BYTES``, and nothing runs; the socket stays
  open. Any other message over the limit closes the socket (1009, message too big).
  ``runql serve`` also caps frames in uvicorn (:func:`max_frame_bytes`), so a frame far
  over the limit is not even read.

A socket that closes under a running operation (the client went away, or the server is
stopping and closed every socket) is expected: the operation's next message ends it
quietly (:class:`SocketClosed`), without a traceback. Anything else an operation raises
goes to the JSON log (``runql.web.websocket``), not to strawberry's plain-text logger.

strawberry reads the context from ``handler.context`` when it starts an operation; the
handlers below make that attribute the running operation's context (a context variable
set in the operation's task) and the connection's everywhere else, so strawberry's own
operation code runs unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from json import JSONDecodeError
from typing import Any

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from starlette.websockets import WebSocketDisconnected as StarletteSocketGone
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportWSMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage

from runql.db.engine import Database
from runql.error_codes import ErrorCode
from runql.observe.logs import RequestLog, current_request, request_scope
from runql.resolvers.context import Context, Place, SocketState, operation_context
from runql.resolvers.errors import SettingExceeded
from runql.schema.extensions.errors import public_errors
from runql.settings import Settings
from runql.tasks.event_listener import EventListener

logger = logging.getLogger(__name__)

LIMIT_SETTING = "RUNQL_MAX_BODY_BYTES"
MESSAGE_TOO_BIG = 1009  # RFC 6455 close code

_operation_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "runql_ws_operation_context", default=None
)


class SocketClosed(WebSocketDisconnected):
    """A message could not be sent: the socket has closed. Expected (a client that went
    away, a server that is stopping); ends the operation that sent it, quietly. A
    strawberry ``WebSocketDisconnected``, so its loops treat it as the end of the socket."""


#: What sending on a closed socket raises, depending on who noticed first: strawberry,
#: starlette (before and after it marked the socket disconnected) or the server (uvicorn's
#: ``ClientDisconnected`` is an ``OSError``).
_CLOSED_ERRORS = (WebSocketDisconnected, WebSocketDisconnect, StarletteSocketGone, OSError)


def max_frame_bytes(max_body_bytes: int) -> int:
    """uvicorn's ``ws_max_size``: room for a message somewhat over ``max_body_bytes`` (it
    gets the GraphQL error naming the limit), a hard stop well before uvicorn's 16 MiB."""
    return 2 * max_body_bytes + 64 * 1024


def connection_authorization(connection: Context) -> str | None:
    """The ``Authorization`` value of a socket: the ``connection_init`` payload's (any
    case), else the handshake header's."""
    params = connection.connection_params or {}
    for key, value in params.items():
        if key.lower() == "authorization" and isinstance(value, str):
            return value
    request = connection.request
    return request.headers.get("authorization") if request is not None else None


async def socket_operation_context(
    connection: Context, request_id: str, place: Place | None = None
) -> Context:
    """A fresh context for one operation on the socket ``connection`` describes, built
    like an HTTP request's (``runql.resolvers.context.operation_context``)."""
    return await operation_context(
        connection.db,
        connection.settings,
        authorization=connection_authorization(connection),
        request_id=request_id,
        request=connection.request,
        response=connection.response,
        events=connection.events,
        connection_params=connection.connection_params,
        socket=connection.socket,
        place=place,
    )


def _too_big(size: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"message is {size} bytes, over the limit of {limit} ({LIMIT_SETTING})",
        extensions={
            "code": ErrorCode.LIMIT_EXCEEDED,
            "limit": limit,
            "actual": size,
            "setting": LIMIT_SETTING,
        },
    )


def _error_codes(errors: object) -> list[str]:
    if isinstance(errors, dict):
        errors = [errors]
    if not isinstance(errors, list):
        return []
    return [str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)]


class RunqlWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's ASGI adapter, also noting the size in bytes of the message being
    handled (``message_bytes``), so handlers can hold it to ``max_body_bytes``."""

    message_bytes = 0

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        # strawberry's loop, plus the size: a generator cannot be wrapped to see the text.
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    text = await self.ws.receive_text()
                    self.message_bytes = len(text) if text.isascii() else len(text.encode())
                    yield self.view.decode_json(text)
                except JSONDecodeError as e:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from e
        except KeyError as e:
            raise NonTextMessageReceived from e
        except WebSocketDisconnect:
            pass


class _PerOperation:
    """What both protocols' handlers share: ``context`` is the running operation's
    context inside an operation's task and the connection's elsewhere; each operation's
    place among the socket's subscriptions (``places``, by operation id)."""

    websocket: Any
    view: Any
    _connection: Context
    _places: dict[str, Place] | None = None

    @property
    def places(self) -> dict[str, Place]:
        if self._places is None:
            self._places = {}
        return self._places

    def _admit(self, operation_id: str) -> GraphQLError | None:
        """The refusal of an arriving operation (its message too large, or no place left
        on the socket), or None once it has taken its place."""
        error = self._oversized()
        if error is not None:
            self._log_refusal(error)
            return error
        return self._take_place(operation_id)

    def _take_place(self, operation_id: str) -> SettingExceeded | None:
        """Takes the arriving operation's place on the socket, or returns the
        ``LIMIT_EXCEEDED`` refusal to answer instead (nothing runs)."""
        socket = self._connection.socket
        if socket is None:
            return None
        try:
            place = socket.take_place(self._connection.settings.max_subscriptions_per_connection)
        except SettingExceeded as refusal:
            self._log_refusal(refusal)
            return refusal
        self._release(operation_id)  # a reused id: the old operation's place is gone
        self.places[operation_id] = place
        return None

    def _release(self, operation_id: str, place: Place | None = None) -> None:
        """Gives back the place of ``operation_id`` (only if it is still ``place``, when
        given: the id may have been reused by a newer operation meanwhile)."""
        held = self.places.get(operation_id)
        if held is not None and (place is None or held is place):
            del self.places[operation_id]
            held.release()
        if place is not None:
            place.release()

    @property
    def context(self) -> Context:
        return _operation_context.get() or self._connection

    @context.setter
    def context(self, value: Context) -> None:
        self._connection = value

    def _oversized(self) -> GraphQLError | None:
        size = getattr(self.websocket, "message_bytes", 0)
        limit = self._connection.settings.max_body_bytes
        return _too_big(size, limit) if size > limit else None

    async def _close_if_oversized(self) -> bool:
        error = self._oversized()
        if error is not None:
            await self.websocket.close(code=MESSAGE_TOO_BIG, reason=error.message[:120])
        return error is not None

    @contextmanager
    def _operation_log(self) -> Iterator[RequestLog]:
        """The operation's request id and log line (``runql.observe.logs``)."""
        request = self._connection.request
        path = request.url.path if request is not None else ""
        with request_scope(RequestLog(uuid.uuid4().hex, method="WS", path=path)) as log:
            yield log

    def _log_refusal(self, error: GraphQLError) -> None:
        """An operation refused before it ran is still a request with its own log line."""
        with self._operation_log() as log:
            log.error_codes = _error_codes([error.formatted])

    async def _enter_operation(self, log: RequestLog, operation_id: str) -> GraphQLError | None:
        """Installs this task's operation context. When that fails (the token lookup
        raised: an outage), returns the masked error to answer instead."""
        place = self.places.get(operation_id)
        try:
            context = await socket_operation_context(self._connection, log.request_id, place)
        except Exception as exc:
            [error] = public_errors([GraphQLError(str(exc), original_error=exc)], log.request_id)
            return error
        _operation_context.set(context)
        return None

    def _untrusted(self, query: str) -> GraphQLError | None:
        """Trusted documents hold over sockets too (texts only: no ids, no APQ here)."""
        context = _operation_context.get()
        documents = getattr(self.view, "documents", None)
        if documents is None or context is None or documents.trusted is None:
            return None
        viewer = context.viewer_or_none
        error: GraphQLError | None = documents.allows_text(
            query, admin=viewer is not None and viewer.is_admin
        )
        return error

    def _log_error_codes(self, errors: object) -> None:
        request_log = current_request()
        if request_log is not None:
            request_log.error_codes += _error_codes(errors)

    async def _send_or_closed(self, send: Any, message: Any) -> None:
        """``await send(message)``; :class:`SocketClosed` when the socket has closed."""
        try:
            await send(message)
        except SocketClosed:
            raise
        except _CLOSED_ERRORS as exc:
            raise SocketClosed(str(exc)) from exc

    async def handle_task_exception(self, error: Exception) -> None:
        """strawberry's hook for an error that ended an operation: a closed socket is no
        news; anything else is logged with its traceback, as JSON, under the operation's
        request id."""
        if isinstance(error, SocketClosed):
            return
        logger.error("WebSocket operation failed unexpectedly", exc_info=error)


class TransportWSHandler(_PerOperation, BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with a context per ``subscribe``."""

    async def handle_message(self, message: TransportWSMessage) -> None:
        if not isinstance(message, dict):  # strawberry would fail on ``message["type"]``
            await self.handle_invalid_message("WebSocket message must be a JSON object")
            return
        if message.get("type") != "subscribe" and await self._close_if_oversized():
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged or message["id"] in self.operations:
            await super().handle_subscribe(message)  # strawberry closes the socket
            return
        error = self._admit(message["id"])
        if error is None:
            await super().handle_subscribe(message)
            return
        await self.send_message(
            {"id": message["id"], "type": "error", "payload": [error.formatted]}
        )

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        place = self.places.get(operation.id)
        try:
            with self._operation_log() as log:
                error = await self._enter_operation(log, operation.id) or self._untrusted(
                    operation.query
                )
                if error is not None:
                    await operation.send_initial_errors([error])
                    return
                await super().run_operation(operation)
        except SocketClosed:
            pass  # the client or the server closed the socket: nothing to tell anyone
        finally:
            self._release(operation.id, place)

    async def cleanup_operation(self, operation_id: str) -> None:
        self._release(operation_id)
        await super().cleanup_operation(operation_id)

    async def send_message(self, message: TransportWSMessage) -> None:
        if message["type"] == "next":
            self._log_error_codes(message["payload"].get("errors"))
        elif message["type"] == "error":
            self._log_error_codes(message["payload"])
        await self._send_or_closed(super().send_message, message)


class GraphQLWSHandler(_PerOperation, BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol with a context per ``start``."""

    async def handle_message(self, message: OperationMessage) -> None:
        if not isinstance(message, dict):  # ignored, like a message that is not JSON
            return
        if message.get("type") != "start" and await self._close_if_oversized():
            return
        await super().handle_message(message)

    async def handle_start(self, message: StartMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_start(message)  # strawberry closes the socket
            return
        if message["id"] in self.tasks:  # strawberry would end it first: so do we
            await self.cleanup_operation(message["id"])
        error = self._admit(message["id"])
        if error is None:
            await super().handle_start(message)
            return
        await self.send_message({"type": "error", "id": message["id"], "payload": error.formatted})

    async def cleanup_operation(self, operation_id: str) -> None:
        self._release(operation_id)
        await super().cleanup_operation(operation_id)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        place = self.places.get(operation_id)
        try:
            with self._operation_log() as log:
                error = await self._enter_operation(log, operation_id) or self._untrusted(query)
                if error is not None:
                    await self.send_message(
                        {"type": "error", "id": operation_id, "payload": error.formatted}
                    )
                    await self.send_message({"type": "complete", "id": operation_id})
                    self.tasks.pop(operation_id, None)
                    return
                await super().handle_async_results(operation_id, query, operation_name, variables)
        finally:
            self._release(operation_id, place)

    async def send_message(self, message: OperationMessage) -> None:
        if message["type"] == "data":
            self._log_error_codes(message["payload"].get("errors"))
        elif message["type"] == "error":
            self._log_error_codes(message["payload"])
        await self._send_or_closed(super().send_message, message)


def connection_context(
    db: Database, settings: Settings, websocket: WebSocket, events: EventListener | None = None
) -> Context:
    """The context strawberry keeps for the socket: no viewer, never given to resolvers."""
    return Context(
        db=db,
        settings=settings,
        viewer_or_none=None,
        request=websocket,
        response=websocket,
        events=events,
        socket=SocketState(),
    )


__all__ = [
    "GraphQLWSHandler",
    "RunqlWebSocketAdapter",
    "SocketClosed",
    "TransportWSHandler",
    "connection_authorization",
    "connection_context",
    "max_frame_bytes",
    "socket_operation_context",
]
