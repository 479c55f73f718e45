"""``Job.dependsOn``: the names of the jobs a job waits for (a run page draws the DAG from
it), read for a whole page of runs with one statement."""

from __future__ import annotations

from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from tests.factories import Factory, GraphQLClient

DAG = [
    JobDefinition("fetch"),
    JobDefinition("lint"),
    JobDefinition("train", replicas=2, depends_on=("fetch",)),
    JobDefinition("report", depends_on=("train", "lint")),
]
PAGE = """{ runs(first: 20) { edges { node { name
  jobs { name replicaNum dependsOn } } } } }"""


async def test_each_job_names_its_upstream_jobs_in_job_order(
    factory: Factory, gql: GraphQLClient
) -> None:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    await factory.run(project, user, jobs=DAG)

    body = await gql(PAGE, token=user.token)

    [edge] = body["data"]["runs"]["edges"]
    shown = {(j["name"], j["replicaNum"]): j["dependsOn"] for j in edge["node"]["jobs"]}
    assert shown == {
        ("fetch", 0): [],
        ("lint", 0): [],
        ("train", 0): ["fetch"],
        ("train", 1): ["fetch"],
        ("report", 0): ["lint", "train"],  # job order: lint was submitted before train
    }


async def test_a_page_of_runs_reads_dependencies_with_one_statement(
    factory: Factory, gql: GraphQLClient
) -> None:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    for _ in range(12):
        await factory.run(project, user, jobs=DAG)

    body, sql = await gql.counted(PAGE, token=user.token)

    runs = body["data"]["runs"]["edges"]
    assert len(runs) == 12
    assert all(len(run["node"]["jobs"]) == 5 for run in runs)
    assert sum("job_dependencies" in s for s in sql.statements) == 1, sql.statements
