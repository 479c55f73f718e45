"""Each limit rejects with an error naming it; a request just under it passes. The document
rules are built once, so a repeated document is validated once (the cache hits)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql.language import Lexer, Source, TokenKind
from strawberry.extensions.validation_cache import _get_validate_cache

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.resolvers import projects as project_resolvers
from runql.resolvers.context import Context
from runql.settings import Settings
from runql.web.app import create_app
from tests.factories import Factory, UserHandle

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def alice(factory: Factory) -> UserHandle:
    user = await factory.user("alice")
    await factory.project("vision", [(user, MemberRole.MANAGER)])
    return user


async def _post(client: httpx.AsyncClient, user: UserHandle, query: str, **variables: Any) -> Any:
    body = {"query": query, "variables": variables or None}
    response = await client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {user.token}"}
    )
    return response.json()


def _limit_error(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload.get("data") is None, payload
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    return error  # type: ignore[no-any-return]


DEPTH_4 = "{ runs { edges { node { name } } } }"
DEPTH_5 = "{ runs { edges { node { project { name } } } } }"


async def test_query_depth(client_with: ClientFactory, alice: UserHandle) -> None:
    async with client_with(max_query_depth=4) as client:
        under = await _post(client, alice, DEPTH_4)
        over = await _post(client, alice, DEPTH_5)
        via_fragment = await _post(
            client,
            alice,
            "query { runs { edges { node { ...R } } } } fragment R on Run { project { name } }",
        )

    assert under == {"data": {"runs": {"edges": []}}}
    for payload in (over, via_fragment):
        error = _limit_error(payload)
        assert error["message"] == "query depth is 5, over the limit of 4 (RUNQL_MAX_QUERY_DEPTH)"
        assert error["extensions"]["limit"] == 4


async def test_introspection_is_not_counted_in_depth(client_with: ClientFactory) -> None:
    deep = "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }"
    async with client_with(max_query_depth=2) as client:
        response = await client.post("/graphql", json={"query": deep})

    assert "errors" not in response.json()


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(n)) + " }"


async def test_aliases(client_with: ClientFactory, alice: UserHandle) -> None:
    async with client_with(max_aliases=3) as client:
        under = await _post(client, alice, _aliases(3))
        over = await _post(client, alice, _aliases(4))
        spread_twice = await _post(
            client,
            alice,
            "{ a: me { ...F } b: me { ...F } } fragment F on User { x: name y: name }",
        )

    assert under["data"] == {f"a{i}": {"name": "alice"} for i in range(3)}
    assert _limit_error(over)["message"] == (
        "number of aliases is 4, over the limit of 3 (RUNQL_MAX_ALIASES)"
    )
    # a, b, and the fragment's two aliases each time it is spread
    assert _limit_error(spread_twice)["extensions"]["actual"] == 6


def _token_count(query: str) -> int:
    lexer = Lexer(Source(query))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


async def test_tokens(client_with: ClientFactory, alice: UserHandle) -> None:
    query = "{ me { name role } }"
    tokens = _token_count(query)
    async with (
        client_with(max_tokens=tokens) as at_limit,
        client_with(max_tokens=tokens - 1) as below,
    ):
        ok = await _post(at_limit, alice, query)
        refused = await _post(below, alice, query)

    assert ok == {"data": {"me": {"name": "alice", "role": "USER"}}}
    error = _limit_error(refused)
    assert f"more than {tokens - 1} tokens" in error["message"]


async def test_page_size(client_with: ClientFactory, alice: UserHandle, factory: Factory) -> None:
    query = "query($n: Int) { runs(first: $n) { edges { cursor } } }"
    async with client_with(max_page_size=5) as client:
        under = await _post(client, alice, query, n=5)
        over = await _post(client, alice, query, n=6)

    assert under == {"data": {"runs": {"edges": []}}}
    [error] = over["errors"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": "first", "limit": 5}
    assert error["message"] == "first must be at most 5 (got 6)"


async def test_stop_batch_size(client_with: ClientFactory, alice: UserHandle) -> None:
    query = "mutation($ids: [ID!]) { stopRuns(input: {runIds: $ids}) { __typename } }"
    async with client_with(max_stop_batch=2) as client:
        under = await _post(client, alice, query, ids=["1", "2"])
        over = await _post(client, alice, query, ids=["1", "2", "3"])

    assert under == {"data": {"stopRuns": {"__typename": "StopRunsPayload"}}}
    [error] = over["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 2


async def test_runner_batch_size(client_with: ClientFactory, alice: UserHandle) -> None:
    query = """mutation($n: Int!) {
      claimJobs(input: {runnerName: "r1", limit: $n}) { claims { claimToken } }
    }"""
    async with client_with(max_batch_size=3) as client:
        under = await _post(client, alice, query, n=3)
        over = await _post(client, alice, query, n=4)

    assert under == {"data": {"claimJobs": {"claims": []}}}
    [error] = over["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 3


async def test_statement_timeout_is_a_clear_error(
    database_url: str,
    settings: Settings,
    factory: Factory,
    alice: UserHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = Database(database_url, statement_timeout_ms=100)
    if db.is_sqlite:
        await db.dispose()
        pytest.skip("statement_timeout is a PostgreSQL setting")
    from sqlalchemy import text

    original_me = project_resolvers.me

    async def slow_me(ctx: Context) -> Any:
        async with ctx.db.read() as session:
            await session.execute(text("SELECT pg_sleep(2)"))
        return await original_me(ctx)

    monkeypatch.setattr(project_resolvers, "me", slow_me)
    app = create_app(settings, db=db)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            payload = await _post(client, alice, "{ me { name } }")
    finally:
        await db.dispose()

    [error] = payload["errors"]
    assert error["extensions"]["code"] == "STATEMENT_TIMEOUT"
    assert "RUNQL_STATEMENT_TIMEOUT_MS" in error["message"]
    assert "pg_sleep" not in str(payload) and "Traceback" not in str(payload)


async def test_a_repeated_document_is_validated_once(
    http: httpx.AsyncClient, alice: UserHandle
) -> None:
    """The rules are built once per schema: were they rebuilt per request (strawberry's
    limiter extensions as factories), the cache key would change and this would miss."""
    cache = _get_validate_cache(Settings().graphql_cache_size)
    query = "{ me { name } runs { edges { node { id name status } } } }"
    headers = {"Authorization": f"Bearer {alice.token}"}

    await http.post("/graphql", json={"query": query}, headers=headers)
    before = cache.cache_info()
    await http.post("/graphql", json={"query": query}, headers=headers)
    after = cache.cache_info()

    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="RUNQL_MAX_ALIASES: must be at least 1"):
        Settings(max_aliases=0)


def test_docs_list_every_limit() -> None:
    """docs/limits.md is where a client looks up a limit it ran into: every one is there."""
    documented = (Path(__file__).parents[2] / "docs" / "limits.md").read_text()
    settings = [f.name for f in dataclasses.fields(Settings)]
    limits = [n for n in settings if n.startswith("max_") or n == "statement_timeout_ms"]

    assert [n for n in limits if f"`RUNQL_{n.upper()}`" not in documented] == []
