"""GraphQL documents and small helpers of the live-update tests (tests/live/): what was
submitted, what the event log holds, what a subscriber saw, and when a server's event
listener has caught up. The server runs in the test's loop (tests/inloop.py) and is
spoken to with the suite's WebSocket client (tests/wsclient.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from runql.db import events as event_log
from runql.db.engine import Database
from runql.db.models import Event
from tests.inloop import Served
from tests.waiting import until

RUN_EVENTS = """
subscription($project: String, $runIds: [ID!], $after: String) {
  runEvents(project: $project, runIds: $runIds, after: $after) {
    cursor kind at run { id status } job { id status submissionNum }
  }
}
"""
JOBS_READY = "subscription($project: String) { jobsReady(project: $project) { ready } }"
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"""
CLAIM = """mutation($input: ClaimJobsInput!) {
  claimJobs(input: $input) { claims { claimToken job { id } } }
}"""
COMPLETE = """mutation($input: CompleteJobsInput!) {
  completeJobs(input: $input) { results { jobId error { code } } }
}"""
STOP = "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { error { code } } } }"


def submit_input(project: str, *jobs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"project": project, "jobs": list(jobs) or [{"name": "a"}]}
    if name is not None:
        payload["name"] = name
    return {"input": payload}


async def caught_up(server: Served, db: Database) -> None:
    """Until the server's event listener has read every event in the log (its next
    subscriber replays them all: nothing is left for its live path)."""
    async with db.read() as session:
        newest = (
            await session.execute(
                select(Event.txid, Event.id).order_by(Event.txid.desc(), Event.id.desc()).limit(1)
            )
        ).first()
    if newest is None:
        return
    wanted = event_log.EventPosition(int(newest.txid), int(newest.id))
    listener = server.app.state.event_listener
    if not listener.subscribers:  # an idle listener only moves to safe positions: wake it
        listener.read_now()
    await until(lambda: listener.position is not None and listener.position >= wanted)


async def log_of(db: Database) -> list[tuple[str, int, int | None]]:
    """The whole event log as (kind, run id, job id), in position order. Read directly,
    not through ``read_events``: after the writes returned every row is committed, but on
    PostgreSQL ``read_events`` holds back rows while any older transaction of the cluster
    is in flight (another test suite's, say), and the test must know what to wait for."""
    async with db.read() as session:
        rows = await session.execute(
            select(Event.kind, Event.run_id, Event.job_id).order_by(Event.txid, Event.id)
        )
    return [(str(kind), run_id, job_id) for kind, run_id, job_id in rows]


def seen(events: list[dict[str, Any]]) -> list[tuple[str, int, int | None]]:
    return [
        (e["kind"], int(e["run"]["id"]), int(e["job"]["id"]) if e["job"] else None) for e in events
    ]
