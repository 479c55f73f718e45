"""The ``Info`` type resolvers receive, bound to runql's context."""

from __future__ import annotations

import strawberry

from runql.resolvers.context import Context

Info = strawberry.Info[Context, None]
