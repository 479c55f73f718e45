"""Build the Schema object (an Apollo Federation v2 subgraph)."""

from __future__ import annotations

import strawberry

from runql.schema.auth import RequireViewer
from runql.schema.mutation import build_mutation
from runql.schema.query import Query


def build_schema() -> strawberry.federation.Schema:
    return strawberry.federation.Schema(
        query=Query,
        mutation=build_mutation(),
        extensions=[RequireViewer],
    )
