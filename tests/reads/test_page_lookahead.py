"""The runs page reads ahead: what its rows ask for is loaded with the page.

``Query.runs`` reads its selection (``runql/schema/lookahead.py``) and the runs resolver
loads the latest submissions (and what ``statusMessage`` needs) in the page's session,
priming the loaders; each row's ``user``, ``jobs`` and ``statusMessage`` then answer from
memory instead of awaiting a loader per row. These tests guard that the rows really
answer at once, that the look-ahead follows fragments, aliases, variables and
``@skip``/``@include``, and that its answers equal the loaders' own.
"""

from __future__ import annotations

import inspect

from runql.db.enums import JobStatus, RunStatus
from runql.db.lifecycle import JobDefinition
from runql.resolvers import runs as run_resolvers
from runql.resolvers.auth import authenticate
from runql.resolvers.context import Context
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

TWO_JOBS = [JobDefinition("prepare"), JobDefinition("train", replicas=2, depends_on=("prepare",))]

ROW = """
  id statusMessage user { name }
  latest: jobs { id submissionNum status }
  two: jobs(submissionsLimit: 2) { id submissionNum }
  waiting: jobs(submissionsLimit: $n, statuses: $statuses) { id name status }
"""

PAGE = f"""
query Page($n: Int!, $statuses: [JobStatus!]) {{
  runs(first: 10) {{ ...Edges }}
}}
fragment Edges on RunConnection {{ edges {{ node {{ ... on Run {{ ...Row }} }} }} }}
fragment Row on Run {{ {ROW} }}
"""

ONE_RUN = f"""
query One($id: ID!, $n: Int!, $statuses: [JobStatus!]) {{ run(id: $id) {{ {ROW} }} }}
"""


async def _owner(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user, project = await factory.user_in_project()
    return user, project


async def test_page_rows_answer_from_memory(factory: Factory, settings: Settings) -> None:
    user, project = await _owner(factory)
    for _ in range(3):
        await factory.run(project, user, jobs=TWO_JOBS, status=RunStatus.RUNNING)
    ctx = Context(
        db=factory.db,
        settings=settings,
        viewer_or_none=await authenticate(factory.db, f"Bearer {user.token}"),
    )
    needs = run_resolvers.PageNeeds(latest_jobs=frozenset({(2, ())}), status_message=True)

    page = await run_resolvers.runs(
        ctx, project=None, filter=None, first=10, after=None, last=None, before=None, needs=needs
    )

    runs = [edge.node for edge in page.edges]
    assert len(runs) == 3
    for run in runs:
        user_row = run_resolvers.run_user(ctx, run)
        jobs = run_resolvers.run_jobs(ctx, run, 2, None)
        message = run_resolvers.run_status_message_of(ctx, run)
        assert not any(inspect.isawaitable(v) for v in (user_row, jobs, message))
        assert user_row.name == "alice"  # type: ignore[union-attr]
        assert len(jobs) == 3 and message == "running"  # type: ignore[arg-type]
    # A shape the page did not read ahead still loads, through the loader.
    assert inspect.isawaitable(run_resolvers.run_jobs(ctx, runs[0], 3, None))


async def test_rows_read_ahead_answer_like_a_single_run(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_ids = [await factory.run(project, user, jobs=TWO_JOBS, status=RunStatus.RUNNING)]
    run_ids.append(await factory.run(project, user, status=RunStatus.RUNNING))
    await factory.add_submissions(run_ids[1], 3)  # a waiting retry: "retrying"
    variables = {"n": 3, "statuses": ["SUBMITTED", "BLOCKED"]}

    body, sql = await gql.counted(PAGE, variables, token=user.token)

    nodes = {edge["node"]["id"]: edge["node"] for edge in body["data"]["runs"]["edges"]}
    for run_id in run_ids:
        one = await gql(ONE_RUN, {"id": str(run_id), **variables}, token=user.token)
        assert nodes[str(run_id)] == one["data"]["run"]
    assert nodes[str(run_ids[1])]["statusMessage"] == "retrying"
    assert {job["status"] for job in nodes[str(run_ids[0])]["waiting"]} == {
        JobStatus.SUBMITTED.value,
        JobStatus.BLOCKED.value,
    }
    # token, page, three shapes of latest submissions (1, 2, and 3 with statuses), and the
    # newest terminated submissions for the retrying run: one statement each.
    assert sql.count == 6, sql.statements


async def test_skipped_selections_are_not_read_ahead(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    await factory.run(project, user, jobs=TWO_JOBS)

    body, sql = await gql.counted(
        """query($with: Boolean!) { runs { edges { node {
             id jobs @include(if: $with) { id } statusMessage @skip(if: true)
           } } } }""",
        {"with": False},
        token=user.token,
    )

    assert body["data"]["runs"]["edges"] == [
        {"node": {"id": body["data"]["runs"]["edges"][0]["node"]["id"]}}
    ]
    assert sql.count == 2, sql.statements  # token and page only
