"""The service answers a query end to end on both databases."""

from __future__ import annotations

from tests.factories import Factory, GraphQLClient


async def test_member_reads_runs_of_their_project(factory: Factory, gql: GraphQLClient) -> None:
    alice, project = await factory.user_in_project()
    await factory.run(project, alice, name="resnet")

    body = await gql("{ me { name } runs { edges { node { name status } } } }", token=alice.token)

    assert body["data"] == {
        "me": {"name": "alice"},
        "runs": {"edges": [{"node": {"name": "resnet", "status": "SUBMITTED"}}]},
    }
