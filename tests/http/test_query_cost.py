"""The query cost limit: a document asking for too many objects is refused before anything
executes, whatever the shape it hides them in (variables, fragments, bulk inputs); the
pages clients really ask for, and introspection, pass with room to spare."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import graphql
import httpx
import pytest

from runql.db.engine import record_statements
from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from runql.schema import build_schema
from runql.schema.extensions import limits
from runql.schema.extensions.cost import SIZES, operation_cost
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient, UserHandle
from tests.http.helpers import FULL_INTROSPECTION

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

DEFAULT_LIMIT = Settings().max_query_cost

#: The report that answered 1.9 MB in 3.9 s on SQLite: every run of a page, 100
#: submissions of every logical job, and 100 more of each of those, with their specs.
HOSTILE = """
{ runs { edges { node {
    jobs(submissionsLimit: 100) { spec submissions(first: 100) { spec } }
} } } }
"""
#: 1 connection + 20 edges + 20 runs + 20 * (100 * 10 jobs) * (1 + 100 submissions)
HOSTILE_COST = 1 + 20 + 20 + 20 * 100 * 10 * (1 + 100)

HOSTILE_VIA_VARIABLES = """
query Report($n: Int!) { runs { edges { node {
    jobs(submissionsLimit: $n) { spec submissions(first: $n) { spec } }
} } } }
"""

HOSTILE_VIA_FRAGMENTS = """
query { runs { ...Page } }
fragment Page on RunConnection { edges { node { ...RunJobs } } }
fragment RunJobs on Run { jobs(submissionsLimit: 100) { ...History } }
fragment History on Job { spec submissions(first: 100) { spec } }
"""

#: The web UI's runs page at its usual size.
RUNS_PAGE = """
query RunsPage($after: String) {
  runs(first: 50, after: $after) {
    edges { cursor node {
      id name status statusMessage submittedAt finishedAt priority
      user { name } project { name }
      jobCounts { total running done failed }
      jobs(submissionsLimit: 1) {
        id name status replicaNum jobNum submissionNum terminationReason exitStatus
        startedAt finishedAt
      }
      viewerCanStop viewerCanDelete
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture
async def alice(factory: Factory) -> UserHandle:
    """A member of a project with a few runs of a few jobs, one with a retry history."""
    user = await factory.user("alice")
    project = await factory.project("vision", [(user, MemberRole.MANAGER)])
    jobs = [JobDefinition("prepare", spec={"cmd": "prep"}), JobDefinition("train", replicas=2)]
    run_ids = [await factory.run(project, user, jobs=jobs) for _ in range(3)]
    await factory.add_submissions(run_ids[0], 5)
    return user


async def _post(
    client: httpx.AsyncClient | GraphQLClient,
    user: UserHandle,
    query: str,
    variables: dict[str, Any] | None = None,
    accept: str | None = None,
) -> tuple[httpx.Response, int]:
    """POST a document; returns the response and the SQL statements it issued."""
    http = client.http if isinstance(client, GraphQLClient) else client
    headers = {"Authorization": f"Bearer {user.token}"}
    if accept:
        headers["Accept"] = accept
    with record_statements() as recorded:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    return response, recorded.count


async def _authentication_statements(gql: GraphQLClient, user: UserHandle) -> int:
    """What any request with a token costs before GraphQL runs: the token lookup."""
    _, count = await _post(gql, user, "{ __typename }")
    return count


def _cost_error(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert payload.get("data") is None, payload
    [error] = payload["errors"]
    return error  # type: ignore[no-any-return]


async def test_the_hostile_report_is_refused_before_anything_runs(
    gql: GraphQLClient, alice: UserHandle
) -> None:
    auth = await _authentication_statements(gql, alice)

    response, statements = await _post(gql, alice, HOSTILE)

    error = _cost_error(response)
    assert error["message"] == (
        f"query cost is {HOSTILE_COST}, over the limit of {DEFAULT_LIMIT} (RUNQL_MAX_QUERY_COST)"
    )
    assert error["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "limit": DEFAULT_LIMIT,
        "actual": HOSTILE_COST,
        "setting": "RUNQL_MAX_QUERY_COST",
    }
    assert statements == auth  # no resolver ran


async def test_over_cost_is_a_request_error_over_http(
    gql: GraphQLClient, alice: UserHandle
) -> None:
    response, _ = await _post(gql, alice, HOSTILE, accept="application/graphql-response+json")

    assert response.status_code == 400
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_sizes_given_by_variables_count(gql: GraphQLClient, alice: UserHandle) -> None:
    """The same document costs what its variables ask for, request by request."""
    auth = await _authentication_statements(gql, alice)

    small, _ = await _post(gql, alice, HOSTILE_VIA_VARIABLES, {"n": 1})
    large, statements = await _post(gql, alice, HOSTILE_VIA_VARIABLES, {"n": 100})
    small_again, _ = await _post(gql, alice, HOSTILE_VIA_VARIABLES, {"n": 1})

    assert "errors" not in small.json() and "errors" not in small_again.json()
    assert small.json() == small_again.json()
    assert _cost_error(large)["extensions"]["actual"] == HOSTILE_COST
    assert statements == auth


async def test_fragments_count_where_they_are_spread(gql: GraphQLClient, alice: UserHandle) -> None:
    auth = await _authentication_statements(gql, alice)

    response, statements = await _post(gql, alice, HOSTILE_VIA_FRAGMENTS)

    assert _cost_error(response)["extensions"]["actual"] == HOSTILE_COST
    assert statements == auth


async def test_fragments_spread_many_times_count_every_time(
    client_with: ClientFactory, alice: UserHandle
) -> None:
    """Each spread level doubles the objects: 2^10 Users, estimated without expanding."""
    levels = 10
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ me {{ name }} }}"
    async with client_with(max_query_cost=2**levels - 1) as client:
        response, _ = await _post(client, alice, query)

    assert _cost_error(response)["extensions"]["actual"] == 2**levels


async def test_bulk_mutations_count_their_items(
    client_with: ClientFactory, gql: GraphQLClient, alice: UserHandle
) -> None:
    """stopRuns with 3 ids: the payload, 3 results and their 3 runs."""
    query = """mutation($ids: [ID!]) {
      stopRuns(input: {runIds: $ids}) { results { run { status } } }
    }"""
    auth = await _authentication_statements(gql, alice)
    ids = ["1", "2", "3"]
    async with (
        client_with(max_query_cost=6) as under,
        client_with(max_query_cost=7) as at_limit,
    ):
        refused, statements = await _post(under, alice, query, {"ids": ids})
        applied, _ = await _post(at_limit, alice, query, {"ids": ids})

    assert _cost_error(refused)["extensions"]["actual"] == 7
    assert statements == auth  # nothing read, nothing stopped
    assert "errors" not in applied.json()


async def test_a_document_whose_cost_needs_no_variables_is_estimated_once(
    gql: GraphQLClient, alice: UserHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def counting(*args: Any) -> Any:
        calls.append(1)
        return operation_cost(*args)

    monkeypatch.setattr(limits, "operation_cost", counting)
    static = "query Static { runs(first: 7) { edges { node { id jobs { id } } } } }"
    for _ in range(3):
        await _post(gql, alice, static)
    assert len(calls) == 1
    for n in (1, 1, 2):
        await _post(gql, alice, HOSTILE_VIA_VARIABLES, {"n": n})
    assert len(calls) == 1 + 3


async def test_the_runs_page_passes_with_a_wide_margin(
    client_with: ClientFactory, alice: UserHandle
) -> None:
    """The UI's page of 50 runs with their latest jobs passes a tenth of the default."""
    async with client_with(max_query_cost=DEFAULT_LIMIT // 10) as client:
        response, _ = await _post(client, alice, RUNS_PAGE)

    payload = response.json()
    assert "errors" not in payload, payload["errors"]
    assert len(payload["data"]["runs"]["edges"]) == 3


async def test_introspection_is_not_counted(client_with: ClientFactory) -> None:
    """GraphiQL's (and every client generator's) introspection query, whatever the limit."""
    async with client_with(max_query_cost=1) as client:
        response = await client.post("/graphql", json={"query": FULL_INTROSPECTION})

    payload = response.json()
    assert "errors" not in payload, payload["errors"]
    assert payload["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_the_limit_is_configurable(client_with: ClientFactory, alice: UserHandle) -> None:
    """1 connection + 20 edges + 20 runs: 41."""
    query = "{ runs { edges { node { id } } } }"
    async with (
        client_with(max_query_cost=41) as at_limit,
        client_with(max_query_cost=40) as under,
    ):
        passed, _ = await _post(at_limit, alice, query)
        refused, _ = await _post(under, alice, query)

    assert len(passed.json()["data"]["runs"]["edges"]) == 3
    error = _cost_error(refused)
    assert error["message"] == "query cost is 41, over the limit of 40 (RUNQL_MAX_QUERY_COST)"


def test_every_list_of_objects_has_a_size_rule() -> None:
    """A new list field without a rule would be estimated at a guessed size: give it one
    (its own arguments, or its parent's, as for a connection's edges)."""
    schema = build_schema()._schema
    ruled_children = {
        (graphql.get_named_type(_field(schema, parent, name).type).name, child)
        for (parent, name), rule in SIZES.items()
        for child in _children_named_by(rule)
    }
    missing = []
    for type_ in schema.type_map.values():
        if type_.name.startswith("__") or not isinstance(type_, graphql.GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            returns = graphql.get_named_type(field.type)
            is_list = graphql.is_list_type(graphql.get_nullable_type(field.type))
            if not is_list or not graphql.is_composite_type(returns):
                continue
            if (type_.name, name) not in SIZES and (type_.name, name) not in ruled_children:
                missing.append(f"{type_.name}.{name}")

    assert missing == []


def _field(schema: graphql.GraphQLSchema, type_name: str, name: str) -> graphql.GraphQLField:
    type_ = schema.get_type(type_name)
    assert isinstance(type_, graphql.GraphQLObjectType), type_name
    return type_.fields[name]


def _children_named_by(rule: Any) -> set[str]:
    """The child list fields a rule sizes (rules read their arguments lazily, so a stub
    with no arguments is enough to see which children they name)."""

    class NoArguments:
        def get(self, name: str) -> None:
            return None

    return set(rule(NoArguments(), 1).children)
