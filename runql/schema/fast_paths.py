"""Two per-field costs strawberry adds on top of graphql-core, taken off a built schema.

A runs page is mostly plain attribute fields and enums (dstack's shape: about 750 fields
for 50 runs), so what strawberry does per field shows (bench/RESULTS.md, scenario 8b):

* A field without a resolver ("basic") resolves through ``_get_basic_result`` ->
  ``StrawberryField.get_result`` -> two property reads -> ``getattr``: four Python calls
  for one attribute read. It gets a two-argument function that reads the attribute.
* An enum value is serialised by scanning the enum's values for the one whose value
  equals it. It gets a dict from value to name.

Both keep strawberry's behaviour exactly (the same attribute through the same
``getattr``, the same name for the same value, anything else handed to strawberry's own
code) and only apply where strawberry's default path is in place: a field with a
resolver, a field extension, or a custom ``default_resolver`` keeps strawberry's path.
Measured on the dstack page executed from memory: about 5% of its CPU time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLEnumType, GraphQLField, GraphQLObjectType, GraphQLSchema
from strawberry.types.field import StrawberryField

DEFINITION = "strawberry-definition"  # GraphQLCoreConverter.DEFINITION_BACKREF
BASIC_RESOLVER = "_get_basic_result"  # strawberry's resolver of fields without one


def _attribute_reader(name: str) -> Callable[..., Any]:
    def resolve(source: Any, info: Any) -> Any:
        return getattr(source, name)

    resolve._is_default = True  # type: ignore[attr-defined]  # as strawberry marks its own
    return resolve


def _takes_basic(field: GraphQLField) -> StrawberryField | None:
    definition = (field.extensions or {}).get(DEFINITION)
    if (
        isinstance(definition, StrawberryField)
        and getattr(field.resolve, "__name__", "") == BASIC_RESOLVER
        and definition.is_basic_field
        and definition.default_resolver is getattr
        and not definition.is_subscription
        and definition.python_name
    ):
        return definition
    return None


def _enum_serialiser(enum_type: GraphQLEnumType, wrapped: Any) -> Callable[[Any], Any]:
    names = {value.value: name for name, value in enum_type.values.items()}
    strawberry_path = enum_type.coerce_output_value

    def coerce_output_value(value: Any) -> Any:
        if type(value) is wrapped:
            name = names.get(value.value)
            if name is not None:
                return name
        return strawberry_path(value)

    return coerce_output_value


def speed_up(schema: GraphQLSchema) -> tuple[int, int]:
    """Applies both to ``schema`` (graphql-core's, from strawberry); returns how many
    fields and enums it changed."""
    fields = enums = 0
    for graphql_type in schema.type_map.values():
        if isinstance(graphql_type, GraphQLObjectType):
            for field in graphql_type.fields.values():
                definition = _takes_basic(field)
                if definition is not None:
                    field.resolve = _attribute_reader(definition.python_name)
                    fields += 1
        elif isinstance(graphql_type, GraphQLEnumType):
            wrapped = getattr(graphql_type, "wrapped_cls", None)
            if isinstance(wrapped, type):
                serialise = _enum_serialiser(graphql_type, wrapped)
                for method in ("coerce_output_value", "serialize"):  # on this instance only
                    setattr(graphql_type, method, serialise)
                enums += 1
    return fields, enums


__all__ = ["speed_up"]
