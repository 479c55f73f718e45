"""The standard full introspection query answers a complete schema.

GraphiQL, graphql-codegen, Apollo's tools and most client generators send the query
graphql-js' ``getIntrospectionQuery()`` builds; one field of it that cannot be answered
(an input default with no GraphQL literal, say) fails the whole query. graphql-core builds
the same query, here with every option on. What it says must also read back in graphql-js
16: the directives' locations are the released spec's (graphql-core 3.3 adds a draft's),
and ``DateTime`` names its specification (RFC 3339), which its values follow.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import graphql

from runql.schema import build_schema
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient
from tests.http.helpers import FULL_INTROSPECTION
from tests.http.test_schema_contract import COMPOSITION, node_with_packages

#: Every directive location of the October 2021 spec, all that graphql-js 16.0 parses.
SPEC_2021_LOCATIONS = {
    *("QUERY", "MUTATION", "SUBSCRIPTION", "FIELD", "FRAGMENT_DEFINITION", "FRAGMENT_SPREAD"),
    *("INLINE_FRAGMENT", "VARIABLE_DEFINITION", "SCHEMA", "SCALAR", "OBJECT"),
    *("FIELD_DEFINITION", "ARGUMENT_DEFINITION", "INTERFACE", "UNION", "ENUM", "ENUM_VALUE"),
    *("INPUT_OBJECT", "INPUT_FIELD_DEFINITION"),
}
#: RFC 3339's ``date-time`` (section 5.6): a ``T``, seconds, and an offset or ``Z``.
RFC_3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


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


async def test_directives_are_where_graphql_js_16_reads_them(gql: GraphQLClient) -> None:
    """graphql-core 3.3 puts ``@deprecated`` on directive definitions too (a draft of the
    spec); graphql-js 16.0 (and the 16 releases until one took the draft up: 16.15 has it)
    cannot parse that location back, so GraphQL Code Generator failed on the endpoint."""
    payload = await gql(FULL_INTROSPECTION)
    directives = {d["name"]: d for d in payload["data"]["__schema"]["directives"]}

    assert directives["deprecated"]["locations"] == [
        "FIELD_DEFINITION",
        "ARGUMENT_DEFINITION",
        "INPUT_FIELD_DEFINITION",
        "ENUM_VALUE",
    ]
    assert directives["deprecated"]["args"][0]["defaultValue"] == '"No longer supported"'
    for name, directive in directives.items():
        assert set(directive["locations"]) <= SPEC_2021_LOCATIONS, name


async def test_graphql_js_16_0_reads_the_live_introspection_back(gql: GraphQLClient) -> None:
    """What a client generator does with the answer, in graphql-js 16.0.0
    (tests/composition/client_schema.mjs): build the client schema, print it, parse it."""
    node = node_with_packages("read the introspection back with graphql-js")
    payload = await gql(FULL_INTROSPECTION)

    done = subprocess.run(  # noqa: ASYNC221
        [node, "client_schema.mjs"],
        cwd=COMPOSITION,
        input=json.dumps(payload["data"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.stdout, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ok": True, "errors": []}


async def test_date_time_names_rfc_3339_and_its_values_follow_it(
    gql: GraphQLClient, factory: Factory
) -> None:
    payload = await gql(
        '{ __type(name: "DateTime") { specifiedByURL } '
        'json: __type(name: "JSON") { specifiedByURL } }'
    )
    user, _ = await factory.user_in_project()
    submitted = await gql(
        "mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { submittedAt } } }",
        {"input": {"project": "vision", "jobs": [{"name": "a"}]}},
        token=user.token,
    )

    assert payload["data"]["__type"] == {
        "specifiedByURL": "https://datatracker.ietf.org/doc/html/rfc3339"
    }
    assert payload["data"]["json"]["specifiedByURL"]  # the same style: the spec itself
    stamp = submitted["data"]["submitRun"]["run"]["submittedAt"]
    assert RFC_3339.fullmatch(stamp), stamp


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
