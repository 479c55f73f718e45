"""Unexpected exceptions are masked (with a request id that finds the logged traceback);
expected errors pass unchanged; nothing internal reaches a client."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from runql.db.enums import MemberRole
from runql.observe.logs import JsonFormatter
from runql.resolvers import projects as project_resolvers
from runql.resolvers import runs as run_resolvers
from runql.resolvers.context import Context
from runql.resolvers.errors import Forbidden
from tests.factories import Factory, UserHandle

SECRET = "boom in /srv/runql/secret.py: SELECT token_hash FROM users"


@pytest.fixture
async def alice(factory: Factory) -> UserHandle:
    user, project = await factory.user_in_project()
    await factory.run(project, user, name="resnet")
    return user


def _headers(user: UserHandle, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}", **extra}


@pytest.fixture
def broken_me(monkeypatch: pytest.MonkeyPatch) -> None:
    async def me(ctx: Context) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(project_resolvers, "me", me)


@pytest.mark.usefixtures("broken_me")
async def test_unexpected_exception_is_masked_and_logged_with_the_request_id(
    http: httpx.AsyncClient, alice: UserHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="runql.errors"):
        response = await http.post(
            "/graphql", json={"query": "{ me { name } }"}, headers=_headers(alice)
        )

    request_id = response.headers["x-request-id"]
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Internal server error",
                "locations": [{"line": 1, "column": 3}],
                "path": ["me"],
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            }
        ],
    }
    [record] = [r for r in caplog.records if r.name == "runql.errors"]
    assert record.request_id == request_id  # type: ignore[attr-defined]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == request_id
    assert SECRET in line["traceback"] and "Traceback" in line["traceback"]


async def test_masked_error_in_a_nested_field_keeps_the_rest(
    http: httpx.AsyncClient, alice: UserHandle, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await factory.project("other", [(alice, MemberRole.USER)])
    run_id = await factory.run(project, alice, name="bert")

    async def broken_project(ctx: Context, run: Any) -> Any:
        raise KeyError(SECRET)

    monkeypatch.setattr(run_resolvers, "run_project", broken_project)
    query = f'{{ me {{ name }} run(id: "{run_id}") {{ name project {{ name }} }} }}'

    body = (await http.post("/graphql", json={"query": query}, headers=_headers(alice))).json()

    assert body["data"] == {"me": {"name": "alice"}, "run": None}
    [error] = body["errors"]
    assert error["path"] == ["run", "project"]
    assert error["message"] == "Internal server error"
    assert SECRET not in json.dumps(body) and "KeyError" not in json.dumps(body)


async def test_client_errors_pass_unchanged(
    http: httpx.AsyncClient, alice: UserHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def forbidden_me(ctx: Context) -> Any:
        raise Forbidden("projects: you may not list them", code="FORBIDDEN")

    bad_id = await http.post(
        "/graphql", json={"query": '{ run(id: "x1") { id } }'}, headers=_headers(alice)
    )
    monkeypatch.setattr(project_resolvers, "me", forbidden_me)
    forbidden = await http.post(
        "/graphql", json={"query": "{ me { name } }"}, headers=_headers(alice)
    )

    assert bad_id.json()["errors"][0]["message"] == (
        "id: not a valid ID: 'x1' (IDs are decimal ASCII digits)"
    )
    assert bad_id.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert forbidden.json()["errors"][0]["message"] == "projects: you may not list them"
    assert forbidden.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN"}


@pytest.mark.usefixtures("broken_me")
async def test_masked_errors_over_graphql_response_json(
    http: httpx.AsyncClient, alice: UserHandle
) -> None:
    headers = _headers(alice, Accept="application/graphql-response+json")

    response = await http.post("/graphql", json={"query": "{ me { name } }"}, headers=headers)

    # A field error is not a request error: the spec wants 2xx and a data entry.
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
