"""The ``/graphql`` endpoint: strawberry's ASGI view, made to follow GraphQL over HTTP.

What strawberry does out of the box stays (parsing GET/POST, GraphiQL, websockets); this
subclass adds what the spec asks of a production server:

* ``Accept`` negotiation: ``application/graphql-response+json`` when the client asks for
  it, ``application/json`` otherwise (the default for clients that send no ``Accept``);
  406 when neither is acceptable.
* With ``application/graphql-response+json``, a request that fails before execution
  (parse, validation, limits, variable coercion) answers 400 and has no ``data`` entry;
  a missing or invalid token answers 401. With ``application/json`` those stay 200 with
  ``data: null``, as older clients expect.
* POST bodies must be ``application/json`` (415 otherwise) and at most
  ``max_body_bytes`` (413); mutations over GET answer 405 with ``Allow: POST``.
* Every answer carries ``X-Request-Id`` (the trace id when tracing is on, else the
  client's when it sent a sane one) and writes one JSON log line (``runql.observe.logs``),
  which also records the request's metrics (``runql.observe.metrics``, bound per request here).
* A body that cannot be decoded (not JSON, not UTF-8, nested deeper than the decoder
  recurses, not an object) answers 400 ``BAD_REQUEST`` like any other refusal.

WebSockets: each operation on a socket gets its own context (``runql.web.websocket``).

Persisted documents (APQ, trusted documents: ``runql.web.persisted``) pick the text a
request runs in ``execute_single``, before strawberry parses it.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http import process_result as strawberry_process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from runql.db.engine import Database
from runql.error_codes import ErrorCode
from runql.observe import metrics, tracing
from runql.observe.logs import RequestLog, current_request, request_scope
from runql.resolvers.context import Context, operation_context
from runql.schema.extensions.errors import public_errors
from runql.settings import Settings
from runql.tasks.event_listener import EventListener
from runql.web.graphiql import graphiql_page
from runql.web.persisted import (
    NO_CACHE,
    PersistedDocuments,
    Refusal,
    http_document_id,
    names_a_document,
    status_for,
)
from runql.web.websocket import (
    GraphQLWSHandler,
    RunqlWebSocketAdapter,
    TransportWSHandler,
    connection_context,
)

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


class _Refused(Exception):
    """A request refused before GraphQL sees it."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or None when nothing we speak is
    acceptable. Highest q wins; on a tie the order the client listed them in."""
    if not accept or not accept.strip():
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, media.strip().lower()))
    for _, _, media in sorted(ranked):
        if media == GRAPHQL_RESPONSE_JSON:
            return GRAPHQL_RESPONSE_JSON
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


def is_request_error(result: ExecutionResult) -> bool:
    """Failed before execution: no data and no error belongs to a field (spec's "request
    error": parse, validation, variable coercion, authentication)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"request body larger than {limit} bytes (RUNQL_MAX_BODY_BYTES)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that hands the already-read body to strawberry, then defers to the
    server's (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _Undecodable(json.JSONDecodeError):
    """A JSON document ``json.loads`` fails on with something other than a
    ``JSONDecodeError``; raised as one so every caller of ``decode_json`` (strawberry's
    body parsing and WebSocket message loop included) treats it as invalid JSON."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)


def _object_expected(body: bytes) -> bool:
    """True when a body cannot decode to an object or a batch (strawberry assumes one):
    JSON that starts with anything but ``{`` or ``[`` is a scalar or invalid."""
    start = body.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")[:1]
    return start not in (b"{", b"[")


class RunqlGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = RunqlWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = GraphQLWSHandler

    def __init__(
        self,
        schema: Any,
        *,
        db: Database,
        settings: Settings,
        metrics: metrics.Metrics | None = None,
        events: EventListener | None = None,
        documents: PersistedDocuments | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allowed_origins=settings.cors_origins,
            # strawberry's own cap (100 operations in flight per socket) would refuse
            # with a bare error; runql counts them itself, against its setting, from the
            # moment each arrives (``runql.web.websocket``).
            max_subscriptions_per_connection=None,
        )
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.events = events
        self.documents = documents or PersistedDocuments.from_settings(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with metrics.bind(self.metrics):  # for resolvers and socket handlers too
            if scope["type"] != "http":
                await super().__call__(scope, receive, send)
                return
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = tracing.trace_id()
        if request_id is None:
            given = Request(scope).headers.get("x-request-id", "")
            request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        log = RequestLog(request_id, method=scope["method"], path=scope["path"])
        with request_scope(log):
            response = await self._respond(scope, receive, request_id)
            response.headers["x-request-id"] = request_id
            log.status = response.status_code
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive, request_id: str) -> Response:
        request = Request(scope)
        accept = request.headers.get("accept")
        media = negotiate(accept)
        try:
            if self._wants_ide(request):
                return await self._run(request, receive, request_id, JSON)
            if media is None:
                raise _Refused(406, f"can answer {GRAPHQL_RESPONSE_JSON} or {JSON} only")
            return await self._run(request, receive, request_id, media)
        except _Refused as refused:
            log = current_request()
            if log is not None:
                log.error_codes = [_HTTP_CODES.get(refused.status, ErrorCode.BAD_REQUEST)]
            return self._refusal(refused, media or JSON)

    def _wants_ide(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def _run(
        self, request: Request, receive: Receive, request_id: str, media: str
    ) -> Response:
        body = b""
        if request.method == "POST":
            content_type, params = parse_content_type(request.headers.get("content-type", ""))
            charset = params.get("charset", "utf-8").lower()
            if content_type != JSON or charset not in ("utf-8", "utf8"):
                raise _Refused(415, f"send the request body as {JSON} (UTF-8)")
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.settings.max_body_bytes:
                raise _Refused(
                    413,
                    f"request body larger than {self.settings.max_body_bytes} bytes "
                    "(RUNQL_MAX_BODY_BYTES)",
                )
            body = await _read_body(receive, self.settings.max_body_bytes)
            if _object_expected(body):
                raise _Refused(400, "the request body must be a JSON object")
        request = Request(request.scope, _replay(body, receive))
        request.state.request_id = request_id
        request.state.media = media
        request.state.status = None
        try:
            response = await self.run(request)
        except HTTPException as exc:
            headers = {"Allow": "POST"} if exc.status_code == 405 else None
            raise _Refused(exc.status_code, exc.reason, headers) from None
        if response.media_type == JSON or response.headers.get("content-type") == JSON:
            response.headers["content-type"] = (
                f"{media}; charset=utf-8" if media == GRAPHQL_RESPONSE_JSON else JSON
            )
            if request.state.status:
                response.status_code = request.state.status
                if request.state.status == 401:
                    response.headers["www-authenticate"] = 'Bearer realm="runql"'
        return response

    def _refusal(self, refused: _Refused, media: str) -> Response:
        code = _HTTP_CODES.get(refused.status, ErrorCode.BAD_REQUEST)
        body = {"errors": [{"message": refused.message, "extensions": {"code": code}}]}
        response = JSONResponse(body, refused.status, headers=refused.headers)
        if media == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{media}; charset=utf-8"
        return response

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            raise
        except RecursionError:
            raise _Undecodable("nested too deeply") from None
        except UnicodeDecodeError:
            raise _Undecodable("not UTF-8") from None
        except ValueError:  # an integer with more digits than int() converts
            raise _Undecodable("a number has too many digits") from None

    def parse_json(self, data: str | bytes) -> Any:
        """strawberry's, with the reason in the message (body, or GET's ``variables``)."""
        try:
            return self.decode_json(data)
        except json.JSONDecodeError as exc:
            reason = exc.msg if isinstance(exc, _Undecodable) else str(exc)
            raise HTTPException(400, f"Unable to parse request JSON: {reason}") from None

    async def execute_single(  # type: ignore[override]
        self, request: Request, request_data: GraphQLRequestData, **kwargs: Any
    ) -> ExecutionResult:
        context: Context = kwargs["context"]
        viewer = context.viewer_or_none
        try:
            document_id = await http_document_id(
                request, request_data.query, request_data.extensions
            )
            resolved = self.documents.resolve(
                request_data.query,
                request_data.extensions,
                document_id,
                admin=viewer is not None and viewer.is_admin,
            )
        except Refusal as refusal:
            kwargs["sub_response"].headers["cache-control"] = NO_CACHE
            return PreExecutionError(data=None, errors=[refusal.error])
        request_data = dataclasses.replace(request_data, query=resolved.query)
        try:
            result = await super().execute_single(
                request=request, request_data=request_data, **kwargs
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError) and request.method == "GET":
                raise HTTPException(405, "only queries are allowed over GET: use POST") from None
            raise
        if not isinstance(result, PreExecutionError):
            self.documents.remember(resolved)
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Masks what the schema's extension could not see (errors raised around it), and
        applies the ``application/graphql-response+json`` status rules."""
        request_id = getattr(request.state, "request_id", None)
        if result.errors:
            result.errors = public_errors(
                result.errors, request_id, pre_execution=isinstance(result, PreExecutionError)
            )
        response = strawberry_process_result(result)
        log = current_request()
        if log is not None and result.errors:
            log.error_codes = [str((e.extensions or {}).get("code")) for e in result.errors]
        if getattr(request.state, "media", JSON) == GRAPHQL_RESPONSE_JSON and is_request_error(
            result
        ):
            response.pop("data", None)
            codes = {(e.extensions or {}).get("code") for e in result.errors or ()}
            request.state.status = (
                401 if codes == {ErrorCode.UNAUTHENTICATED} else status_for(codes) or 400
            )
        return response

    def should_render_graphql_ide(self, request: Any) -> bool:
        """strawberry's (a GET without ``query`` from a browser or ``*/*``), unless the GET
        names its document another way (a persisted query's hash, a ``documentId``)."""
        return super().should_render_graphql_ide(request) and not names_a_document(
            request.query_params
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """runql's GraphiQL page, whose assets runql serves itself (see runql/web/graphiql)."""
        return HTMLResponse(graphiql_page().html)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        """The request's context; for a socket, the connection's (``runql.web.websocket``
        builds one per operation from it)."""
        if isinstance(request, WebSocket):
            return connection_context(self.db, self.settings, request, self.events)
        return await operation_context(
            self.db,
            self.settings,
            authorization=request.headers.get("authorization"),
            request_id=getattr(request.state, "request_id", None) or uuid.uuid4().hex,
            request=request,
            response=response,
            events=self.events,
        )
