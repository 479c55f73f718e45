"""The items of ``completeJobs`` and ``renewLeases`` are built straight from graphql-core's
coerced values (``runql.schema.runner._leaf_fields``), not by strawberry's per-field
conversion: they must come out exactly as strawberry would build them, from variables and
from literals in the document alike."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryList

from runql.db.enums import CompletionStatus
from runql.db.lifecycle import JobDefinition
from runql.schema import build_schema
from runql.schema.runner import CompletionInput, LeaseInput, _leaf_fields
from tests.factories import Factory, GraphQLClient
from tests.runner.helpers import claim

COMPLETION_VALUES: list[dict[str, Any]] = [
    {"jobId": "7", "claimToken": "rqc_a", "status": CompletionStatus.DONE},
    {
        "jobId": "8",
        "claimToken": "rqc_b",
        "status": CompletionStatus.FAILED,
        "exitStatus": 137,
        "message": "out of memory",
        "result": {"nested": [1, {"a": None}], "x": 0.5},
    },
    {
        "jobId": "9",
        "claimToken": "rqc_c",
        "status": CompletionStatus.DONE,
        "exitStatus": None,
        "message": None,
        "result": None,
    },
]


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (CompletionInput, COMPLETION_VALUES),
        (LeaseInput, [{"jobId": "7", "claimToken": "rqc_a"}]),
    ],
)
def test_bulk_items_are_built_as_strawberry_builds_them(
    cls: type, values: list[dict[str, Any]]
) -> None:
    schema = build_schema()
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    fast = definition.from_input
    assert fast is not None, "the fast path is not installed"

    def convert() -> list[Any]:
        registry = schema.schema_converter.scalar_registry
        built = convert_argument(values, StrawberryList(cls), registry, schema.config)
        assert isinstance(built, list)
        return built

    ours = convert()
    try:
        definition.from_input = None  # strawberry's own conversion
        reference = convert()
    finally:
        definition.from_input = fast
    assert ours == reference
    assert [type(item) for item in ours] == [cls] * len(values)


def test_an_input_with_a_field_strawberry_converts_is_refused() -> None:
    @strawberry.input
    class Nested:
        ids: list[int]

    _leaf_fields(Nested)
    schema = build_schema()
    context = type("Context", (), {"scalar_registry": schema.schema_converter.scalar_registry})()
    with pytest.raises(TypeError, match=r"Nested\.ids is not a scalar or an enum"):
        Nested.__strawberry_definition__.from_input(Nested, {"ids": [1]}, context)  # type: ignore[attr-defined]


async def test_items_written_as_literals_in_the_document_apply(
    factory: Factory, gql: GraphQLClient
) -> None:
    alice, project = await factory.user_in_project()
    await factory.run(project, alice, jobs=[JobDefinition("shard", replicas=2)])
    first, second = await claim(gql, alice.token, limit=2)

    renewed = await gql(
        f"""mutation {{ renewLeases(input: {{ leases: [
              {{ jobId: "{first["job"]["id"]}", claimToken: "{first["claimToken"]}" }}
            ] }}) {{ results {{ jobId mustStop error {{ code }} }} }} }}""",
        token=alice.token,
    )
    body = await gql(
        f"""mutation {{ completeJobs(input: {{ completions: [
              {{ jobId: "{first["job"]["id"]}", claimToken: "{first["claimToken"]}",
                 status: FAILED, exitStatus: 3, message: "bad", result: {{ k: [1, "two"] }} }}
              {{ jobId: "{second["job"]["id"]}", claimToken: "{second["claimToken"]}",
                 status: DONE }}
            ] }}) {{ results {{ error {{ code }}
                   job {{ status exitStatus terminationMessage result }} }} }} }}""",
        token=alice.token,
    )

    assert renewed["data"]["renewLeases"]["results"] == [
        {"jobId": first["job"]["id"], "mustStop": False, "error": None}
    ]
    assert body["data"]["completeJobs"]["results"] == [
        {
            "error": None,
            "job": {
                "status": "FAILED",
                "exitStatus": 3,
                "terminationMessage": "bad",
                "result": {"k": [1, "two"]},
            },
        },
        {
            "error": None,
            "job": {
                "status": "DONE",
                "exitStatus": None,
                "terminationMessage": None,
                "result": None,
            },
        },
    ]
