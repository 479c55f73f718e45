"""The resolvers' own dataclasses declared as GraphQL types, so a concept has one class.

``runql.resolvers`` imports no strawberry, so its records (``ItemError``, ``PageInfo``,
``Edge``, ``JobCounts``) cannot carry GraphQL descriptions; :func:`expose` declares one as a
type here and gives each field its description. ``strawberry.type`` works on the class
itself: it adds the GraphQL definition and rebuilds the dataclass with a keyword-only
``__init__`` (the resolvers build these records with keywords; they stay frozen, and
every field keeps its plain default). The field order is the dataclass's.
"""

from __future__ import annotations

from collections.abc import Mapping

import strawberry
from strawberry.types.base import get_object_definition


def expose(cls: type, *, description: str, fields: Mapping[str, str]) -> None:
    """Declare the resolvers' dataclass ``cls`` a GraphQL type of the same name, with
    ``description`` and a description for each field (all of them, by Python name)."""
    strawberry.type(cls, description=description)
    definition = get_object_definition(cls, strict=True)
    described = {field.python_name for field in definition.fields}
    if described != set(fields):
        raise TypeError(
            f"{cls.__name__}: descriptions for {sorted(fields)}, fields {sorted(described)}"
        )
    for field in definition.fields:
        field.description = fields[field.python_name]
