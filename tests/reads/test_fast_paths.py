"""``runql.schema.fast_paths``: plain fields and enums skip strawberry's per-field wrapping
and answer exactly what strawberry's own path answers."""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from runql.schema import build_schema
from runql.schema.fast_paths import BASIC_RESOLVER, speed_up


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


strawberry.enum(Colour)


class Row:
    """What a resolver returns: not a strawberry instance (like runql's ORM rows)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@strawberry.type
class Thing:
    plain_name: str
    renamed: int = strawberry.field(name="alias")
    colour: Colour
    maybe_colour: Colour | None

    @strawberry.field
    def computed(self, times: int = 2) -> int:
        return self.renamed * times


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing]:
        rows = [Row(plain_name="a", renamed=1, colour=Colour.RED, maybe_colour=None)]
        rows.append(Row(plain_name="b", renamed=2, colour="green", maybe_colour=Colour.GREEN))
        return rows  # type: ignore[return-value]


DOCUMENT = "{ things { plainName alias colour maybeColour computed(times: 3) } }"


def test_the_answers_are_strawberrys() -> None:
    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query)

    changed = speed_up(fast._schema)
    expected = plain.execute_sync(DOCUMENT)
    answer = fast.execute_sync(DOCUMENT)

    assert changed == (4, 1)  # Thing's four plain fields; Colour
    assert expected.errors is None
    assert (
        answer.data
        == expected.data
        == {
            "things": [
                {"plainName": "a", "alias": 1, "colour": "RED", "maybeColour": None, "computed": 3},
                {
                    "plainName": "b",
                    "alias": 2,
                    "colour": "GREEN",
                    "maybeColour": "GREEN",
                    "computed": 6,
                },
            ]
        }
    )


def test_runqls_schema_takes_them() -> None:
    schema = build_schema()._schema
    run = schema.get_type("Run")
    status = schema.get_type("RunStatus")

    assert run.fields["submittedAt"].resolve.__name__ != BASIC_RESOLVER  # type: ignore[union-attr]
    assert run.fields["jobs"].resolve.__name__ != "resolve"  # type: ignore[union-attr]
    assert status.serialize.__name__ == "coerce_output_value"  # type: ignore[union-attr]
    assert "fast_paths" in status.serialize.__module__  # type: ignore[union-attr]
