"""The GraphQL schema: declarative strawberry types whose resolvers call ``runql.resolvers``."""

from runql.schema.build import build_schema

__all__ = ["build_schema"]
