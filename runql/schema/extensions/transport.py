"""Subscriptions run over WebSockets only.

Over HTTP, GraphQL would execute a subscription like a query: its root field resolves to
its (absent) first event and the client gets an unexplained null error. This extension
answers a clear ``BAD_REQUEST`` instead, before anything runs. (Multipart HTTP
subscriptions are refused earlier: runql answers JSON only, 406.)

Over a WebSocket, every operation took a place among its socket's subscriptions when it
arrived (``runql.resolvers.context.SocketState``): a query or mutation gives it back here,
as soon as its type is known, so only subscriptions count against
``RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION``.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from runql.resolvers.events import NotOverWebSocket


class SubscriptionsOverWebSocket(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        over_http = getattr(ctx.context, "socket", None) is None
        subscription = ctx.operation_type == OperationType.SUBSCRIPTION
        if over_http and subscription and ctx.result is None:
            ctx.result = ExecutionResult(data=None, errors=[NotOverWebSocket()])
        place = getattr(ctx.context, "place", None)
        if place is not None and not subscription:
            place.release()
        yield
