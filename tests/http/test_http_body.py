"""A request whose JSON cannot be decoded answers a GraphQL-shaped 400, never a bare 500.

JSON decoding fails in more ways than ``JSONDecodeError``: nesting deeper than the
interpreter's recursion limit (``RecursionError``), bytes that are not UTF-8
(``UnicodeDecodeError``), an integer with more digits than Python converts
(``ValueError``), or a valid document that is not an object.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from runql.db.engine import Database
from runql.db.models import Run
from tests.factories import Factory

DEEP = 100_000
HEADERS = {"Content-Type": "application/json"}
SUBMIT = (
    '{"query": "mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }",'
    ' "variables": {"input": {"project": "vision", "name": "r", "jobs": [{"name": "a"}],'
    ' "spec": {"x": %s}}}}'
)

UNDECODABLE_BODIES = [
    pytest.param(SUBMIT % ("[" * DEEP + "]" * DEEP), id="nested-too-deeply"),
    pytest.param(
        '{"query": "{ me { name } }", "variables": {"x": ' + "[" * DEEP + "]" * DEEP + "}}",
        id="nested-variables",
    ),
    pytest.param(SUBMIT % ("1" * 5000), id="integer-with-too-many-digits"),
    pytest.param(b'{"query": "{ me { name } }", "operationName": "\xff\xfe"}', id="not-utf-8"),
    pytest.param(SUBMIT % "[1, 2", id="truncated"),
    pytest.param('"{ me { name } }"', id="a-string-not-an-object"),
    pytest.param("42", id="a-number-not-an-object"),
    pytest.param("null", id="null-not-an-object"),
]


@pytest.fixture
async def token(factory: Factory) -> str:
    user, _ = await factory.user_in_project()
    return user.token


def _assert_bad_request(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON" in error["message"]
    return dict(error)


async def _run_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Run)) or 0)


@pytest.mark.parametrize("body", UNDECODABLE_BODIES)
async def test_an_undecodable_post_body_is_a_graphql_shaped_400(
    http: httpx.AsyncClient, db: Database, token: str, body: str | bytes
) -> None:
    response = await http.post(
        "/graphql", content=body, headers={**HEADERS, "Authorization": f"Bearer {token}"}
    )

    _assert_bad_request(response)
    assert await _run_count(db) == 0


async def test_the_refusal_says_why(http: httpx.AsyncClient, token: str) -> None:
    deep = await http.post("/graphql", content=SUBMIT % ("[" * DEEP + "]" * DEEP), headers=HEADERS)
    scalar = await http.post("/graphql", content="42", headers=HEADERS)

    assert "nested too deeply" in _assert_bad_request(deep)["message"]
    assert "object" in _assert_bad_request(scalar)["message"]


async def test_undecodable_variables_over_get_are_a_graphql_shaped_400(
    http: httpx.AsyncClient, token: str
) -> None:
    depth = 5_000  # beyond the recursion limit, still a sane URL
    response = await http.get(
        "/graphql",
        params={"query": "{ me { name } }", "variables": "[" * depth + "]" * depth},
        headers={"Authorization": f"Bearer {token}"},
    )

    _assert_bad_request(response)


async def test_a_decodable_body_still_runs(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post(
        "/graphql",
        content=json.dumps({"query": "{ me { name } }"}),
        headers={**HEADERS, "Authorization": f"Bearer {token}"},
    )

    assert response.json() == {"data": {"me": {"name": "alice"}}}
