"""``deleteRuns``: soft delete of finished runs, per-item results in request order, the
run invisible through every read field afterwards, its name free again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from runql.db.engine import Database
from runql.db.enums import MemberRole, RunStatus
from runql.db.lifecycle import JobDefinition, insert_run
from runql.db.models import Run
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

DELETE = """
mutation Delete($ids: [ID!]!) {
  deleteRuns(input: { runIds: $ids }) {
    results { runId name error { code message } run { id name status } }
  }
}
"""


async def _owner(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user, project = await factory.user_in_project()
    return user, project


async def _delete(gql: GraphQLClient, token: str, ids: list[Any]) -> list[dict[str, Any]]:
    body = await gql(DELETE, {"ids": [str(i) for i in ids]}, token=token)
    results: list[dict[str, Any]] = body["data"]["deleteRuns"]["results"]
    return results


async def test_a_deleted_run_is_invisible_through_every_read_field(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    admin = await factory.user("root", admin=True)
    await factory.run(project, user, name="kept", status=RunStatus.DONE)
    gone = await factory.run(project, user, name="gone", status=RunStatus.DONE)
    jobs = await gql(
        "query($id: ID!) { run(id: $id) { jobs { id } } }", {"id": str(gone)}, token=user.token
    )
    job_id = jobs["data"]["run"]["jobs"][0]["id"]

    (result,) = await _delete(gql, user.token, [gone])

    assert result["error"] is None
    assert result["run"] == {"id": str(gone), "name": "gone", "status": "DONE"}
    for viewer in (user, admin):
        body = await gql(
            """query($run: ID!, $job: ID!) {
                 runs { edges { node { name } } }
                 inProject: runs(project: "vision") { edges { node { name } } }
                 named: runs(filter: { nameContains: "gone" }) { edges { node { name } } }
                 done: runs(filter: { statuses: [DONE] }) { edges { node { name } } }
                 run(id: $run) { name }
                 job(id: $job) { id }
               }""",
            {"run": str(gone), "job": job_id},
            token=viewer.token,
        )
        assert body["data"] == {
            "runs": {"edges": [{"node": {"name": "kept"}}]},
            "inProject": {"edges": [{"node": {"name": "kept"}}]},
            "named": {"edges": []},
            "done": {"edges": [{"node": {"name": "kept"}}]},
            "run": None,
            "job": None,
        }
    # Mutations cannot reach it either.
    assert [r["error"]["code"] for r in await _delete(gql, user.token, [gone])] == ["NOT_FOUND"]
    stop = await gql(
        """mutation { a: stopRuns(input: { project: "vision", names: ["gone"] }) {
             results { error { code } } } }""",
        token=user.token,
    )
    assert stop["data"]["a"]["results"] == [{"error": {"code": "NOT_FOUND"}}]
    # The row stays: a soft delete keeps the history.
    async with db.read() as session:
        assert await session.scalar(select(Run.deleted).where(Run.id == gone)) is True


async def test_the_name_of_a_deleted_run_can_be_used_again(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    old = await factory.run(project, user, name="resnet", status=RunStatus.FAILED)
    submit = """mutation { submitRun(input: { project: "vision", name: "resnet",
                  jobs: [{ name: "main" }] }) { run { id name } } }"""
    refused = await gql(submit, token=user.token, expect_errors=True)
    assert refused["errors"][0]["extensions"]["field"] == "name"

    await _delete(gql, user.token, [old])
    body = await gql(submit, token=user.token)

    run = body["data"]["submitRun"]["run"]
    assert run["name"] == "resnet"
    assert run["id"] != str(old)


async def test_only_finished_runs_are_deleted_with_a_result_per_id_in_order(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    colleague = await factory.user("bob")
    await factory.member(project, colleague, MemberRole.USER)
    runs = {
        status: await factory.run(project, user, name=status.value.lower(), status=status)
        for status in RunStatus
    }
    theirs = await factory.run(project, colleague, name="theirs", status=RunStatus.DONE)
    requested = [*runs.values(), theirs, 424242, runs[RunStatus.DONE]]

    results = await _delete(gql, user.token, requested)

    assert [r["runId"] for r in results] == [str(i) for i in requested]
    finished = {RunStatus.TERMINATED, RunStatus.FAILED, RunStatus.DONE}
    expected = [None if status in finished else "NOT_FINISHED" for status in runs]
    expected += ["FORBIDDEN", "NOT_FOUND", None]
    assert [r["error"] and r["error"]["code"] for r in results] == expected
    not_finished = next(r for r in results if r["name"] == "running")
    assert "still RUNNING; stop it first" in not_finished["error"]["message"]
    left = await gql("{ runs { edges { node { name } } } }", token=user.token)
    assert sorted(e["node"]["name"] for e in left["data"]["runs"]["edges"]) == sorted(
        [s.value.lower() for s in RunStatus if s not in finished] + ["theirs"]
    )


@pytest.mark.slow
async def test_deleting_500_runs_costs_the_statements_of_deleting_one(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    async with db.write() as session:
        ids = [
            (
                await insert_run(
                    session,
                    project_id=project.id,
                    user_id=user.id,
                    name=f"bulk-{i}",
                    jobs=[JobDefinition("main")],
                )
            ).id
            for i in range(501)
        ]
        await session.execute(update(Run).values(status=RunStatus.DONE))

    counts = []
    for batch in (ids[:1], ids[1:]):
        body, sql = await gql.counted(DELETE, {"ids": [str(i) for i in batch]}, token=user.token)
        results = body["data"]["deleteRuns"]["results"]
        assert [r["error"] for r in results] == [None] * len(batch)
        counts.append(sql.count)

    assert counts[0] == counts[1], counts
    left = await gql("{ runs { edges { node { id } } } }", token=user.token)
    assert left["data"]["runs"]["edges"] == []


async def test_more_than_the_batch_limit_is_refused_as_a_whole(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await _owner(factory)

    body = await gql(
        DELETE, {"ids": [str(i) for i in range(501)]}, token=user.token, expect_errors=True
    )

    (error,) = body["errors"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": "runIds", "limit": 500}
    assert error["message"] == "runIds must be at most 500 (got 501)"
