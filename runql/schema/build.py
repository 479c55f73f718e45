"""Build the Schema object (an Apollo Federation v2 subgraph).

Extensions, outermost first: error masking (sees every other extension's result), the
API-token check, document limits built once from the settings (depth, aliases and lexical
tokens before execution; the query cost when execution starts, after the API-token
check), and the parse/validation caches, so a document seen before costs neither parsing
nor validation. ``outermost`` go first (the tracing span of the operation, when on).
What it serves so that graphql-js tooling reads it back: ``runql.schema.interop``.
Plain attribute fields and enums then skip strawberry's per-field wrapping
(``runql.schema.fast_paths``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext

from runql.schema.extensions.auth import RequireViewer
from runql.schema.extensions.errors import ErrorMasking
from runql.schema.extensions.limits import limits_extension
from runql.schema.extensions.operation_log import OperationNameLogger
from runql.schema.extensions.transport import SubscriptionsOverWebSocket
from runql.schema.fast_paths import speed_up
from runql.schema.interop import SCALAR_OVERRIDES, served_directives
from runql.schema.roots.mutation import build_mutation
from runql.schema.roots.query import Query
from runql.schema.roots.subscription import Subscription
from runql.settings import Settings


class RunqlSchema(strawberry.federation.Schema):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._schema.directives = served_directives(self._schema.directives)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error with a traceback, client mistakes included;
        runql logs the unexpected ones itself, with the request id (``ErrorMasking``)."""


def build_schema(
    settings: Settings | None = None, *, outermost: Sequence[type[SchemaExtension]] = ()
) -> RunqlSchema:
    """The schema with ``settings``' limits; the defaults when none are given (the SDL does
    not depend on settings, so ``runql export-schema`` needs none)."""
    settings = settings or Settings()
    cache_size = settings.graphql_cache_size
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        *outermost,
        ErrorMasking,
        OperationNameLogger,
        RequireViewer,
        SubscriptionsOverWebSocket,
        limits_extension(settings),
        lambda: ParserCache(maxsize=cache_size),
        lambda: ValidationCache(maxsize=cache_size),
    ]
    schema = RunqlSchema(
        query=Query,
        mutation=build_mutation(),
        subscription=Subscription,
        extensions=extensions,
        scalar_overrides=SCALAR_OVERRIDES,
    )
    speed_up(schema._schema)  # strawberry's per-field costs on plain fields (fast_paths)
    return schema
