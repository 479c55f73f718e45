"""Federation v2 subgraph: ``_entities`` batching, order, nulls and visibility; ``_service``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.models import Job
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

ENTITIES = """
query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Run { id name }
    ... on Job { id name }
    ... on Project { id name }
    ... on User { id name }
  }
}
"""


async def _job_ids(db: Database, run_ids: list[int]) -> list[int]:
    async with db.read() as session:
        rows = await session.scalars(select(Job.id).where(Job.run_id.in_(run_ids)).order_by(Job.id))
        return list(rows)


def _rep(typename: str, **keys: Any) -> dict[str, Any]:
    return {"__typename": typename, **{k: str(v) for k, v in keys.items()}}


async def _world(factory: Factory) -> tuple[UserHandle, ProjectHandle, list[int]]:
    alice, vision = await factory.user_in_project()
    runs = [await factory.run(vision, alice, name=f"r{i}") for i in range(25)]
    return alice, vision, runs


async def test_100_mixed_representations_cost_a_constant_number_of_statements(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, vision, runs = await _world(factory)
    users = [alice.id] + [(await factory.user()).id for _ in range(24)]
    for i in range(1, 25):  # share a project, so alice may see them
        await factory.member(vision, UserHandle(users[i], "", ""))
    jobs = await _job_ids(db, runs)
    projects = [(await factory.project(f"p{i}", [(alice, MemberRole.USER)])) for i in range(24)]
    mixed: list[dict[str, Any]] = []
    for i in range(25):
        project = vision if i == 0 else projects[i - 1]
        mixed += [
            _rep("Run", id=runs[i]),
            _rep("Job", id=jobs[i]),
            _rep("Project", id=project.id) if i % 2 else _rep("Project", name=project.name),
            _rep("User", id=users[i]),
        ]
    one_of_each = mixed[:4]

    single, single_sql = await gql.counted(
        ENTITIES, {"representations": [_rep("Run", id=runs[0])]}, token=alice.token
    )
    four, four_sql = await gql.counted(
        ENTITIES, {"representations": one_of_each}, token=alice.token
    )
    hundred, hundred_sql = await gql.counted(
        ENTITIES, {"representations": mixed}, token=alice.token
    )

    assert single["data"]["_entities"] == [{"__typename": "Run", "id": str(runs[0]), "name": "r0"}]
    assert len(hundred["data"]["_entities"]) == 100
    assert None not in hundred["data"]["_entities"]
    # token lookup + one run + one job + one user statement; projects: one by id, one by name
    assert single_sql.count == 2
    assert four_sql.count == 5  # the first project is looked up by name only
    assert hundred_sql.count == 6
    assert four["data"]["_entities"][2] == {
        "__typename": "Project",
        "id": str(vision.id),
        "name": "vision",
    }


async def test_entities_keep_order_and_answer_null_for_unknown_ids(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, vision, runs = await _world(factory)
    jobs = await _job_ids(db, runs[:2])
    representations = [
        _rep("Run", id=runs[3]),
        _rep("Run", id=999_999),
        _rep("Job", id=jobs[1]),
        _rep("Project", name="nope"),
        _rep("Run", id=runs[1]),
        _rep("User", id=alice.id),
        _rep("Job", id=2**70),  # out of range: no such id
        _rep("Project", name="vision"),
    ]

    body = await gql(ENTITIES, {"representations": representations}, token=alice.token)

    assert body["data"]["_entities"] == [
        {"__typename": "Run", "id": str(runs[3]), "name": "r3"},
        None,
        {"__typename": "Job", "id": str(jobs[1]), "name": "main"},
        None,
        {"__typename": "Run", "id": str(runs[1]), "name": "r1"},
        {"__typename": "User", "id": str(alice.id), "name": "alice"},
        None,
        {"__typename": "Project", "id": str(vision.id), "name": "vision"},
    ]


async def test_entities_apply_visibility(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice, vision, _ = await _world(factory)
    bob = await factory.user("bob")
    admin = await factory.user("root", admin=True)
    secret = await factory.project("secret", [(bob, MemberRole.USER)])
    hidden_run = await factory.run(secret, bob, name="hidden")
    [hidden_job] = await _job_ids(db, [hidden_run])
    foreign = [
        _rep("Run", id=hidden_run),
        _rep("Job", id=hidden_job),
        _rep("Project", id=secret.id),
        _rep("Project", name="secret"),
        _rep("User", id=bob.id),  # shares no project with alice
    ]

    as_alice = await gql(ENTITIES, {"representations": foreign}, token=alice.token)
    as_admin = await gql(ENTITIES, {"representations": foreign}, token=admin.token)
    await factory.member(vision, bob)
    bob_now_shares = await gql(ENTITIES, {"representations": foreign[-1:]}, token=alice.token)

    assert as_alice["data"]["_entities"] == [None] * 5
    assert [e["name"] for e in as_admin["data"]["_entities"]] == [
        "hidden",
        "main",
        "secret",
        "secret",
        "bob",
    ]
    assert bob_now_shares["data"]["_entities"] == [
        {"__typename": "User", "id": str(bob.id), "name": "bob"}
    ]


async def test_deleted_runs_are_not_entities(
    factory: Factory, gql: GraphQLClient, db: Database
) -> None:
    alice, _, runs = await _world(factory)
    from sqlalchemy import update

    from runql.db.models import Run

    async with db.write() as session:
        await session.execute(update(Run).where(Run.id == runs[0]).values(deleted=True))

    body = await gql(ENTITIES, {"representations": [_rep("Run", id=runs[0])]}, token=alice.token)

    assert body["data"]["_entities"] == [None]


async def test_nested_fields_of_entities_batch_too(factory: Factory, gql: GraphQLClient) -> None:
    alice, _, runs = await _world(factory)
    query = """
    query E($r: [_Any!]!) {
      _entities(representations: $r) { ... on Run { name project { name } user { name } } }
    }"""

    _, few = await gql.counted(
        query, {"r": [_rep("Run", id=r) for r in runs[:2]]}, token=alice.token
    )
    body, many = await gql.counted(
        query, {"r": [_rep("Run", id=r) for r in runs]}, token=alice.token
    )

    assert {e["project"]["name"] for e in body["data"]["_entities"]} == {"vision"}
    assert many.count == few.count == 4  # token, runs, projects, users


async def test_a_bad_representation_fails_alone(factory: Factory, gql: GraphQLClient) -> None:
    alice, _, runs = await _world(factory)
    representations = [_rep("Run", id=runs[0]), _rep("Run", id="abc"), _rep("Project")]

    body = await gql(
        ENTITIES, {"representations": representations}, token=alice.token, expect_errors=True
    )

    assert body["data"]["_entities"][0] == {"__typename": "Run", "id": str(runs[0]), "name": "r0"}
    assert body["data"]["_entities"][1:] == [None, None]
    errors = sorted(body["errors"], key=lambda e: e["path"])
    assert [(e["path"], e["extensions"]["code"]) for e in errors] == [
        (["_entities", 1], "BAD_USER_INPUT"),
        (["_entities", 2], "BAD_USER_INPUT"),
    ]
    assert errors[0]["message"] == "id: not a valid ID: 'abc' (IDs are decimal ASCII digits)"


@pytest.mark.parametrize(
    "document",
    [
        '{ _entities(representations: [{__typename: "Run", id: "1"}]) { __typename } }',
        "{ _service { sdl } _entities(representations: []) { __typename } }",
    ],
)
async def test_entities_need_a_token(factory: Factory, gql: GraphQLClient, document: str) -> None:
    body = await gql(document, expect_errors=True)

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_service_sdl_is_public_and_is_the_exported_schema(gql: GraphQLClient) -> None:
    from runql.schema import build_schema

    body = await gql("{ _service { sdl } }")

    sdl = body["data"]["_service"]["sdl"]
    assert sdl == build_schema().as_str()
    assert 'schema @link(url: "https://specs.apollo.dev/federation/v2' in sdl
    for entity in (
        'type Run @key(fields: "id")',
        'type Job @key(fields: "id")',
        'type Project @key(fields: "id") @key(fields: "name")',
        'type User @key(fields: "id")',
    ):
        assert entity in sdl
