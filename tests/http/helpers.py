"""Documents shared by the HTTP tests (tests/http/)."""

from __future__ import annotations

import graphql

#: What a client such as GraphiQL or Apollo asks to learn the whole schema.
FULL_INTROSPECTION = graphql.get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
