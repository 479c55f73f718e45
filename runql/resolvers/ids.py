"""GraphQL ``ID`` values are decimal strings of integer primary keys."""

from __future__ import annotations

from runql.resolvers.errors import BadInput

_MAX_ID = 2**63 - 1


def parse_id(value: str, field: str) -> int | None:
    """The integer behind an ID. Malformed IDs are bad input; out-of-range ones match
    nothing (None) so ``run(id:)`` answers null like any unknown id."""
    text = value.strip()
    if not text.isdigit():
        raise BadInput(field, f"not a valid ID: {value!r}")
    number = int(text)
    return number if number <= _MAX_ID else None
