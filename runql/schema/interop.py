"""What the schema serves so that other GraphQL tooling reads it back.

graphql-core 3.3 follows the spec's draft where graphql-js 16 (GraphQL Code Generator,
Apollo's tooling, GraphiQL) does not yet: its ``@deprecated`` may also go on directive
definitions (``DIRECTIVE_DEFINITION``), and a client that prints the introspected schema
and parses it again with graphql-js 16.0 (or a later 16 release before the draft was taken
up; 16.15 has it) fails on that location. The schema serves
``@deprecated`` with the four locations of the released spec (October 2021), which both
accept; runql deprecates nothing on a directive definition.

Strawberry's ``DateTime`` names no specification; runql's timestamps are UTC with their
offset (``2024-05-01T12:00:00.123456+00:00``), that is RFC 3339's ``date-time``, so the
scalar says so with ``@specifiedBy``, as ``JSON`` names ECMA-404.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from graphql import DirectiveLocation, GraphQLDeprecatedDirective, GraphQLDirective
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

#: ``@deprecated`` where graphql-js 16 and the October 2021 spec allow it.
DEPRECATED = GraphQLDirective(
    name=GraphQLDeprecatedDirective.name,
    locations=(
        DirectiveLocation.FIELD_DEFINITION,
        DirectiveLocation.ARGUMENT_DEFINITION,
        DirectiveLocation.INPUT_FIELD_DEFINITION,
        DirectiveLocation.ENUM_VALUE,
    ),
    args=GraphQLDeprecatedDirective.args,
    description=GraphQLDeprecatedDirective.description,
)

DATE_TIME_URL = "https://datatracker.ietf.org/doc/html/rfc3339"

#: The schema's ``scalar_overrides``: strawberry's ``DateTime`` with its specification.
SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {
    dt.datetime: dataclasses.replace(DateTimeDefinition, specified_by_url=DATE_TIME_URL),
}


def served_directives(directives: tuple[GraphQLDirective, ...]) -> tuple[GraphQLDirective, ...]:
    """The schema's directives with :data:`DEPRECATED` for graphql-core's
    ``@deprecated`` (printed SDL leaves specified directives out: it does not change)."""
    return tuple(DEPRECATED if d.name == DEPRECATED.name else d for d in directives)
