"""The ``/graphql`` endpoint: strawberry's ASGI view with runql's per-request context."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from runql.db.engine import Database
from runql.graphiql import graphiql_page
from runql.resolvers.auth import authenticate
from runql.resolvers.context import Context
from runql.settings import Settings


class RunqlGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, *, db: Database, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
        )
        self.db = db
        self.settings = settings

    async def render_graphql_ide(self, request: Request) -> Response:
        """runql's GraphiQL page, whose assets runql serves itself (see runql/graphiql)."""
        return HTMLResponse(graphiql_page().html)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        viewer = await authenticate(self.db, request.headers.get("authorization"))
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        return Context(
            db=self.db,
            settings=self.settings,
            viewer_or_none=viewer,
            request_id=request_id,
            request=request,
            response=response,
        )
