"""The UI's GraphQL documents (runql/web/ui/operations/*.graphql) are valid against the
schema, one operation per file, complete with the fragments they spread."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema, parse, validate

from runql.schema import build_schema
from runql.web.ui import all_operations
from runql.web.ui.operations import OPERATIONS_DIR

SCHEMA: GraphQLSchema = build_schema()._schema


def test_every_file_is_one_named_operation() -> None:
    files = sorted(p.stem for p in OPERATIONS_DIR.glob("*.graphql") if p.stem != "fragments")
    operations = all_operations()

    assert len(operations) == len(files) == 8
    assert set(operations) == {
        *("Runs", "Run", "RunSpec", "JobHistory", "RunEvents"),
        *("StopRuns", "RestartRuns", "DeleteRuns"),
    }


@pytest.mark.parametrize("name", sorted(all_operations()))
def test_operation_is_valid_against_the_schema(name: str) -> None:
    errors = validate(SCHEMA, parse(all_operations()[name]))

    assert errors == [], [e.message for e in errors]


def test_documents_carry_only_the_fragments_they_spread() -> None:
    runs, spec = all_operations()["Runs"], all_operations()["RunSpec"]

    assert "fragment RunRow on Run" in runs and "fragment JobRow" not in runs
    assert "fragment" not in spec


def test_the_list_reads_no_heavy_field() -> None:
    """The runs list and its events never ask for spec, summary or systemMetrics: the run
    page reads the spec on its own, when it is opened."""
    for name in ("Runs", "RunEvents", "Run", "StopRuns"):
        document = all_operations()[name]
        for heavy in ("spec", "summary", "systemMetrics", "result"):
            assert f" {heavy}\n" not in document and f" {heavy} " not in document, (name, heavy)
