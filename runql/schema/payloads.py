"""Payload types shared by the bulk mutations.

``ItemError`` is the resolvers' own class, declared here as a GraphQL type: one class for
one concept, its description rendered from ``runql.error_codes`` so the codes listed are
exactly the codes an item can carry.
"""

from __future__ import annotations

from runql.error_codes import ITEM_CODES
from runql.resolvers.errors import ItemError
from runql.schema.expose import expose

expose(
    ItemError,
    description=(
        "Why one item of a bulk call was not applied: `code`, stable and machine-readable, "
        f"is one of {', '.join(ITEM_CODES)} (see docs/errors.md); `message` explains it "
        "for a person and names the item."
    ),
    fields={
        "code": "Stable machine-readable code (docs/errors.md).",
        "message": "Human-readable explanation, naming the item.",
    },
)

__all__ = ["ItemError"]
