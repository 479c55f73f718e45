"""Who sees what: members see their projects' runs and jobs, admins see all, and the rule
is SQL (a subquery on membership), never an IN list of project ids."""

from __future__ import annotations

import re

from sqlalchemy import insert, select

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.models import Member, Project
from tests.factories import Factory, GraphQLClient, ProjectHandle


async def _two_projects(factory: Factory) -> dict[str, object]:
    alice = await factory.user("alice")
    bob = await factory.user("bob")
    admin = await factory.user("root", admin=True)
    vision = await factory.project("vision", [(alice, MemberRole.USER)])
    nlp = await factory.project("nlp", [(bob, MemberRole.USER)])
    alice_run = await factory.run(vision, alice, name="alice-run")
    bob_run = await factory.run(nlp, bob, name="bob-run")
    return {"alice": alice, "bob": bob, "admin": admin, "alice_run": alice_run, "bob_run": bob_run}


async def _job_id(gql: GraphQLClient, token: str, run_id: int) -> str:
    body = await gql(
        "query($id: ID!) { run(id: $id) { jobs { id } } }", {"id": str(run_id)}, token=token
    )
    return str(body["data"]["run"]["jobs"][0]["id"])


async def test_member_sees_only_their_projects_through_every_field(
    factory: Factory, gql: GraphQLClient
) -> None:
    w = await _two_projects(factory)
    alice, admin = w["alice"], w["admin"]
    bob_job = await _job_id(gql, admin.token, w["bob_run"])  # type: ignore[attr-defined]

    body = await gql(
        """query($run: ID!, $job: ID!) {
             runs { edges { node { name } } }
             nlpRuns: runs(project: "nlp") { edges { node { name } } }
             run(id: $run) { name }
             job(id: $job) { id }
             projects { edges { node { name } } }
             project(name: "nlp") { name }
           }""",
        {"run": str(w["bob_run"]), "job": bob_job},
        token=alice.token,  # type: ignore[attr-defined]
    )

    assert body["data"] == {
        "runs": {"edges": [{"node": {"name": "alice-run"}}]},
        "nlpRuns": {"edges": []},
        "run": None,
        "job": None,
        "projects": {"edges": [{"node": {"name": "vision"}}]},
        "project": None,
    }


async def test_admin_sees_every_project(factory: Factory, gql: GraphQLClient) -> None:
    w = await _two_projects(factory)
    admin = w["admin"]
    bob_job = await _job_id(gql, admin.token, w["bob_run"])  # type: ignore[attr-defined]

    body = await gql(
        """query($run: ID!, $job: ID!) {
             runs { edges { node { name } } }
             run(id: $run) { name project { name } }
             job(id: $job) { run { name } }
             projects { edges { node { name } } }
           }""",
        {"run": str(w["bob_run"]), "job": bob_job},
        token=admin.token,  # type: ignore[attr-defined]
    )

    assert body["data"] == {
        "runs": {"edges": [{"node": {"name": "bob-run"}}, {"node": {"name": "alice-run"}}]},
        "run": {"name": "bob-run", "project": {"name": "nlp"}},
        "job": {"run": {"name": "bob-run"}},
        "projects": {"edges": [{"node": {"name": "nlp"}}, {"node": {"name": "vision"}}]},
    }


async def test_member_of_500_projects_gets_the_page_without_an_in_list(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user = await factory.user("busy")
    other = await factory.user("other")
    async with db.write() as session:
        await session.execute(insert(Project), [{"name": f"p{i:03d}"} for i in range(501)])
    async with db.read() as session:
        ids = list(await session.scalars(select(Project.id).order_by(Project.name)))
    async with db.write() as session:
        await session.execute(
            insert(Member), [{"project_id": pid, "user_id": user.id} for pid in ids[:500]]
        )
    hidden = ids[500]
    for pid in (ids[0], ids[250], ids[499]):
        await factory.run(ProjectHandle(pid, ""), user)
    await factory.run(ProjectHandle(hidden, "p500"), other, name="hidden")

    body, sql = await gql.counted(
        "{ runs(first: 100) { edges { node { name project { name } } } } }", token=user.token
    )

    names = {e["node"]["project"]["name"] for e in body["data"]["runs"]["edges"]}
    assert names == {"p000", "p250", "p499"}
    page_sql = [s for s in sql.statements if "FROM runs" in s]
    assert page_sql and all("members" in s for s in page_sql)
    longest_in_list = max(len(re.findall(r"\?|\$\d+", s)) for s in sql.statements)
    assert longest_in_list < 50, "project ids must not be sent as bind parameters"
