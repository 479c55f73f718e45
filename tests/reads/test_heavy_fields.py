"""Heavy JSON columns are read only when a query asks for their field, and always come
back as JSON objects."""

from __future__ import annotations

import re

import pytest

from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from tests.factories import Factory, GraphQLClient, UserHandle

HEAVY_RUN = re.compile(r"runs\.(spec|summary|system_metrics)\b")
HEAVY_JOB = re.compile(r"jobs\.(spec|result)\b")
SPEC = {"image": "python:3.11", "resources": {"gpu": 2}, "env": {"A": "1"}}


async def _one_run(factory: Factory) -> UserHandle:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    await factory.run(project, user, spec=SPEC, jobs=[JobDefinition("main", spec={"cmd": "go"})])
    return user


def _reads_heavy(statements: list[str]) -> bool:
    return any(HEAVY_RUN.search(s) or HEAVY_JOB.search(s) for s in statements)


async def test_page_without_heavy_fields_reads_no_heavy_column(
    factory: Factory, gql: GraphQLClient
) -> None:
    user = await _one_run(factory)

    body, sql = await gql.counted(
        """{ runs { edges { node { id name status statusMessage jobCounts { total }
              jobs { id status submissions { id } } } } } }""",
        token=user.token,
    )

    assert body["data"]["runs"]["edges"]
    assert sql.statements, "the page issued SQL"
    assert not _reads_heavy(sql.statements), sql.statements


QUERIES = {
    "field": "{ runs { edges { node { id spec } } } }",
    "fragment": "{ runs { edges { node { ...R } } } } fragment R on Run { id spec }",
    "inline fragment": "{ runs { edges { node { ... on Run { id spec } } } } }",
}


@pytest.mark.parametrize("shape", list(QUERIES))
async def test_spec_is_read_when_asked_and_is_an_object(
    factory: Factory, gql: GraphQLClient, shape: str
) -> None:
    user = await _one_run(factory)

    body, sql = await gql.counted(QUERIES[shape], token=user.token)

    assert body["data"]["runs"]["edges"][0]["node"]["spec"] == SPEC
    assert any(HEAVY_RUN.search(s) for s in sql.statements)


async def test_heavy_fields_of_a_page_cost_one_statement(
    factory: Factory, gql: GraphQLClient
) -> None:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    for _ in range(20):
        await factory.run(project, user, spec=SPEC)

    body, sql = await gql.counted(
        "{ runs(first: 20) { edges { node { spec summary systemMetrics } } } }", token=user.token
    )

    nodes = [edge["node"] for edge in body["data"]["runs"]["edges"]]
    assert len(nodes) == 20
    assert all(n == {"spec": SPEC, "summary": None, "systemMetrics": None} for n in nodes)
    assert sum(bool(HEAVY_RUN.search(s)) for s in sql.statements) == 1


async def test_job_spec_and_result_are_objects(factory: Factory, gql: GraphQLClient) -> None:
    user = await _one_run(factory)

    body = await gql("{ runs { edges { node { jobs { spec result } } } } }", token=user.token)

    job = body["data"]["runs"]["edges"][0]["node"]["jobs"][0]
    assert job == {"spec": {"cmd": "go"}, "result": None}
