"""The standard full introspection query answers a complete schema.

GraphiQL, graphql-codegen, Apollo's tools and most client generators send the query
graphql-js' ``getIntrospectionQuery()`` builds; one field of it that cannot be answered
(an input default with no GraphQL literal, say) fails the whole query. graphql-core builds
the same query, here with every option on.
"""

from __future__ import annotations

from typing import Any

import graphql

from runql.schema import build_schema
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient
from tests.http.helpers import FULL_INTROSPECTION


def _input_field(data: dict[str, Any], type_name: str, field: str) -> dict[str, Any]:
    [type_] = [t for t in data["__schema"]["types"] if t["name"] == type_name]
    [value] = [f for f in type_["inputFields"] if f["name"] == field]
    return value  # type: ignore[no-any-return]


async def test_full_introspection_query_answers_a_usable_schema(gql: GraphQLClient) -> None:
    payload = await gql(FULL_INTROSPECTION, expect_errors=True)

    assert "errors" not in payload, payload.get("errors")
    client_schema = graphql.build_client_schema(payload["data"])
    # Everything a client sees survives the round trip; only applied directives
    # (federation's @key, @link), which introspection does not carry, are left out.
    server = graphql.print_schema(build_schema()._schema)
    assert graphql.print_schema(client_schema) == server


async def test_every_input_default_has_a_graphql_literal(gql: GraphQLClient) -> None:
    payload = await gql(FULL_INTROSPECTION)
    data = payload["data"]

    assert _input_field(data, "JobInput", "spec")["defaultValue"] == "null"
    assert _input_field(data, "SubmitRunInput", "spec")["defaultValue"] == "null"
    assert _input_field(data, "JobInput", "dependsOn")["defaultValue"] == "[]"
    assert _input_field(data, "JobInput", "replicas")["defaultValue"] == "1"


def test_full_introspection_fits_the_document_limits() -> None:
    """The token limit (introspection is exempt from depth only) lets it through with room."""
    lexer = graphql.language.Lexer(graphql.Source(FULL_INTROSPECTION))
    tokens = 0
    while lexer.advance().kind != graphql.language.TokenKind.EOF:
        tokens += 1

    assert tokens * 5 < Settings().max_tokens


SUBMIT = """
mutation($input: SubmitRunInput!) {
  submitRun(input: $input) { run { spec jobs { name spec } } }
}
"""


async def test_absent_or_null_spec_is_an_empty_object(gql: GraphQLClient, factory: Factory) -> None:
    """What the nullable ``spec`` (default null, not ``{}``) means for a submission."""
    user, _ = await factory.user_in_project()
    jobs = [{"name": "absent"}, {"name": "null", "spec": None}]

    payload = await gql(SUBMIT, {"input": {"project": "vision", "jobs": jobs}}, token=user.token)
    explicit = await gql(
        SUBMIT,
        {"input": {"project": "vision", "jobs": jobs[:1], "spec": None}},
        token=user.token,
    )

    run = payload["data"]["submitRun"]["run"]
    assert run["spec"] == {}
    assert sorted((j["name"], j["spec"]) for j in run["jobs"]) == [("absent", {}), ("null", {})]
    assert explicit["data"]["submitRun"]["run"]["spec"] == {}
