"""A restart over a real WebSocket: ``runEvents`` subscribers see the run restarted and
its new submissions, and an idle runner's ``jobsReady`` fires for the jobs made ready."""

from __future__ import annotations

from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole, RunStatus
from runql.db.lifecycle import JobDefinition
from runql.settings import Settings
from tests.factories import Factory
from tests.inloop import serving
from tests.live.helpers import JOBS_READY, RUN_EVENTS
from tests.wsclient import socket

LIST = '{ runs(project: "vision") { eventCursor edges { node { name } } } }'
RESTART = """mutation($ids: [ID!]!) { restartRuns(input: { runIds: $ids }) {
  results { error { code } } } }"""


async def test_subscribers_see_a_restart_and_runners_are_woken(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice = await factory.user("alice")
    project = await factory.project("vision", [(alice, MemberRole.USER)])
    jobs = [JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    run_id = await factory.finished_run(
        project,
        alice,
        jobs,
        {"a": JobStatus.FAILED, "b": JobStatus.ABORTED},
        status=RunStatus.FAILED,
    )
    async with serving(settings, db) as server, socket(server.ws_url, alice.token) as ws:
        ready = await ws.subscribe(JOBS_READY, {"project": "vision"})
        await ws.nothing(ready, 0.3)  # a failed run has nothing to claim
        # From the list's cursor: however late the subscription registers, it replays.
        listed = await server.gql(alice.token, LIST)
        cursor = listed["runs"]["eventCursor"]
        watched = await ws.subscribe(RUN_EVENTS, {"runIds": [str(run_id)], "after": cursor})
        await ws.nothing(watched, 0.3)

        answer = await server.gql(alice.token, RESTART, {"ids": [str(run_id)]})

        assert answer["restartRuns"]["results"] == [{"error": None}]
        events = [(await ws.next(watched))["runEvents"] for _ in range(3)]
        if events[0]["kind"] == "RUN_SUBMITTED":  # the cursor may sit before the run's start
            events = [*events[1:], (await ws.next(watched))["runEvents"]]
        assert [(e["kind"], e["run"]["status"]) for e in events] == [
            ("RUN_RESTARTED", "SUBMITTED"),
            ("JOB_RETRIED", "SUBMITTED"),
            ("JOB_RETRIED", "SUBMITTED"),
        ]
        assert [(e["job"]["submissionNum"], e["job"]["status"]) for e in events[1:]] == [
            (1, "SUBMITTED"),
            (1, "BLOCKED"),
        ]
        assert (await ws.next(ready))["jobsReady"] == {"ready": 1}
