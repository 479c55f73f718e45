"""Keyset pagination of ``runs``: both directions, stable under inserts, limits, cursors."""

from __future__ import annotations

import base64

import pytest

from runql.db.enums import MemberRole
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

PAGE = """
query($first: Int, $after: String, $last: Int, $before: String) {
  runs(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _runs(factory: Factory, count: int) -> tuple[UserHandle, ProjectHandle]:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    for i in range(count):
        await factory.run(project, user, name=f"r{i:02d}")
    return user, project


def _names(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [edge["node"]["name"] for edge in body["data"]["runs"]["edges"]]


async def test_forwards_then_backwards(factory: Factory, gql: GraphQLClient) -> None:
    user, _ = await _runs(factory, 7)

    first = await gql(PAGE, {"first": 3}, token=user.token)
    info = first["data"]["runs"]["pageInfo"]
    second = await gql(PAGE, {"first": 3, "after": info["endCursor"]}, token=user.token)
    info2 = second["data"]["runs"]["pageInfo"]
    third = await gql(PAGE, {"first": 3, "after": info2["endCursor"]}, token=user.token)
    back = await gql(PAGE, {"last": 3, "before": info2["startCursor"]}, token=user.token)

    assert _names(first) == ["r06", "r05", "r04"]
    assert info["hasNextPage"] and not info["hasPreviousPage"]
    assert _names(second) == ["r03", "r02", "r01"]
    assert info2["hasNextPage"] and info2["hasPreviousPage"]
    assert _names(third) == ["r00"]
    assert not third["data"]["runs"]["pageInfo"]["hasNextPage"]
    assert _names(back) == ["r06", "r05", "r04"]
    assert not back["data"]["runs"]["pageInfo"]["hasPreviousPage"]
    assert back["data"]["runs"]["pageInfo"]["hasNextPage"]


async def test_last_without_cursor_is_the_oldest_page(factory: Factory, gql: GraphQLClient) -> None:
    user, _ = await _runs(factory, 5)

    body = await gql(PAGE, {"last": 2}, token=user.token)

    assert _names(body) == ["r01", "r00"]
    assert body["data"]["runs"]["pageInfo"]["hasPreviousPage"]


async def test_no_duplicates_or_gaps_while_runs_are_inserted(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _runs(factory, 10)
    seen: list[str] = []
    after = None
    while True:
        body = await gql(PAGE, {"first": 3, "after": after}, token=user.token)
        seen += _names(body)
        await factory.run(project, user, name=f"new{len(seen)}")  # newer than every page
        info = body["data"]["runs"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]

    assert seen == [f"r{i:02d}" for i in reversed(range(10))]


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_page_size_over_the_limit_names_it(
    factory: Factory, gql: GraphQLClient, argument: str
) -> None:
    user, _ = await _runs(factory, 1)

    body = await gql(PAGE, {argument: 101}, token=user.token, expect_errors=True)

    assert body["data"] is None
    error = body["errors"][0]
    assert error["message"] == f"{argument} must be at most 100 (got 101)"
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": argument, "limit": 100}


async def test_exactly_the_limit_is_fine(factory: Factory, gql: GraphQLClient) -> None:
    user, _ = await _runs(factory, 2)

    body = await gql(PAGE, {"first": 100}, token=user.token)

    assert len(_names(body)) == 2


async def test_first_and_last_together_are_refused(factory: Factory, gql: GraphQLClient) -> None:
    user, _ = await _runs(factory, 1)

    body = await gql(PAGE, {"first": 1, "last": 1}, token=user.token, expect_errors=True)

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def _tamper(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[10] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


async def test_tampered_garbage_and_foreign_cursors_are_clear_errors(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await _runs(factory, 3)
    body = await gql(PAGE, {"first": 1}, token=user.token)
    cursor = body["data"]["runs"]["pageInfo"]["endCursor"]
    projects = await gql("{ projects { pageInfo { endCursor } } }", token=user.token)
    foreign = projects["data"]["projects"]["pageInfo"]["endCursor"]

    for bad, expected in (
        (_tamper(cursor), "after: not a valid cursor"),
        ("!!!not-base64", "after: not a valid cursor"),
        ("", "after: not a valid cursor"),
        (foreign, "after: this cursor does not belong to the runs list"),
    ):
        result = await gql(PAGE, {"first": 1, "after": bad}, token=user.token, expect_errors=True)
        assert result["data"] is None
        assert result["errors"][0]["message"].startswith(expected)
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_filters(factory: Factory, gql: GraphQLClient) -> None:
    alice = await factory.user("alice")
    bob = await factory.user("bob")
    project = await factory.project("p", [(alice, MemberRole.USER), (bob, MemberRole.USER)])
    await factory.run(project, alice, name="train-a")
    await factory.run(project, bob, name="train_b")
    await factory.run(project, bob, name="eval-c")

    async def names(filter: dict) -> list[str]:  # type: ignore[type-arg]
        body = await gql(
            "query($f: RunFilter) { runs(filter: $f) { edges { node { name } } } }",
            {"f": filter},
            token=alice.token,
        )
        return _names(body)

    assert await names({"userName": "bob"}) == ["eval-c", "train_b"]
    assert await names({"nameContains": "train"}) == ["train_b", "train-a"]
    assert await names({"nameContains": "_"}) == ["train_b"]
    assert await names({"statuses": ["DONE"]}) == []
    assert await names({"onlyActive": True}) == ["eval-c", "train_b", "train-a"]
    assert await names({"submittedAfter": "2999-01-01T00:00:00"}) == []
    assert await names({"submittedBefore": "2999-01-01T00:00:00Z"}) == [
        "eval-c",
        "train_b",
        "train-a",
    ]
