"""Authentication: a missing or wrong token gets one UNAUTHENTICATED error and no data."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from runql.db.engine import Database
from runql.db.models import User
from tests.factories import Factory, GraphQLClient

UNAUTHENTICATED = {
    "data": None,
    "errors": [
        {
            "message": "missing or invalid API token: "
            "send the header 'Authorization: Bearer <token>' (over a WebSocket, or put it "
            "under 'Authorization' in the connection_init payload)",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ],
}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "rql_demo_admin_token"],
)
async def test_missing_or_wrong_token(factory: Factory, http, header: str | None) -> None:  # type: ignore[no-untyped-def]
    await factory.user("alice")
    headers = {"Authorization": header} if header is not None else {}

    response = await http.post(
        "/graphql", json={"query": "{ me { name } runs { edges { cursor } } }"}, headers=headers
    )

    assert response.json() == UNAUTHENTICATED


async def test_valid_token_identifies_the_user(factory: Factory, gql: GraphQLClient) -> None:
    alice = await factory.user("alice")

    body = await gql("{ me { name role } }", token=alice.token)

    assert body["data"] == {"me": {"name": "alice", "role": "USER"}}


async def test_tokens_are_stored_hashed(db: Database, factory: Factory) -> None:
    alice = await factory.user("alice")

    async with db.read() as session:
        stored = await session.scalar(select(User.token_hash).where(User.id == alice.id))

    assert stored is not None and alice.token not in stored and len(stored) == 64


async def test_introspection_needs_no_token(factory: Factory, gql: GraphQLClient) -> None:
    body = await gql("{ __schema { queryType { name } } }")

    assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}


async def test_bad_id_argument_is_a_clear_error(factory: Factory, gql: GraphQLClient) -> None:
    alice = await factory.user("alice")

    body = await gql('{ run(id: "abc") { id } }', token=alice.token, expect_errors=True)

    assert body["data"] == {"run": None}
    assert (
        body["errors"][0]["message"] == "id: not a valid ID: 'abc' (IDs are decimal ASCII digits)"
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
