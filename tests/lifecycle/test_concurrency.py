"""20 lifecycle requests at once through the ASGI app, on SQLite and on PostgreSQL.

Overlapping stop requests name the same runs in different orders (the PostgreSQL row locks
must still be taken in one order), an abort races graceful stops, deletes race each
other and submits race for a name. The test checks the final state against the answers
each request got: no lock errors, nothing lost, nothing applied twice.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update

from runql.db.engine import Database
from runql.db.enums import MemberRole, RunStatus
from runql.db.models import Run
from tests.factories import Factory, GraphQLClient

STOP = """mutation($input: StopRunsInput!) { stopRuns(input: $input) {
  results { runId error { code } run { status } } } }"""
DELETE = """mutation($ids: [ID!]!) { deleteRuns(input: { runIds: $ids }) {
  results { runId error { code } } } }"""
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id name } } }"""
RUN = """query($id: ID!) { run(id: $id) { status terminationReason
  jobs { name status terminationReason } } }"""


async def test_twenty_concurrent_lifecycle_requests_end_consistently(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    alice = await factory.user("alice")
    mona = await factory.user("mona")
    project = await factory.project("vision", [(alice, MemberRole.USER)])
    await factory.member(project, mona, MemberRole.MANAGER)
    queued = await factory.pipelines(project, alice, 10, prefix="queued-")  # stop ends them
    # A stop makes these TERMINATING:
    running = await factory.pipelines(project, alice, 10, prefix="running-", running=True)
    raced = running[5:]  # also aborted by mona
    finished = await factory.pipelines(project, alice, 6, prefix="finished-")
    async with db.write() as session:
        await session.execute(update(Run).where(Run.id.in_(finished)).values(status=RunStatus.DONE))

    rng = random.Random(3)
    requests: list[tuple[str, Any]] = []
    for _ in range(6):
        ids = queued + running
        rng.shuffle(ids)
        requests.append(
            (
                "stop",
                gql(
                    STOP,
                    {"input": {"runIds": [str(i) for i in ids]}},
                    token=alice.token,
                    expect_errors=True,
                ),
            )
        )
    for _ in range(2):
        ids = list(reversed(raced))
        variables = {"input": {"runIds": [str(i) for i in ids], "abort": True}}
        requests.append(("abort", gql(STOP, variables, token=mona.token, expect_errors=True)))
    for _ in range(6):
        ids = finished[:]
        rng.shuffle(ids)
        requests.append(
            (
                "delete",
                gql(DELETE, {"ids": [str(i) for i in ids]}, token=alice.token, expect_errors=True),
            )
        )
    for i in range(6):
        job = [{"name": "main"}]
        submit: dict[str, Any] = {"project": "vision", "jobs": job}
        if i < 2:
            submit["name"] = "twin"
        requests.append(
            ("submit", gql(SUBMIT, {"input": submit}, token=alice.token, expect_errors=True))
        )
    assert len(requests) == 20

    bodies = await asyncio.gather(*(call for _, call in requests))

    answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (kind, _), body in zip(requests, bodies, strict=True):
        answers[kind].append(body)
    # Only the losing twin submit may fail, and only because of its name.
    errors = [e for body in bodies for e in body.get("errors", [])]
    assert [
        (e.get("extensions", {}).get("code"), e.get("extensions", {}).get("field")) for e in errors
    ] == [("BAD_USER_INPUT", "name")], errors

    # Per run, what each kind of request answered: (error code or None, run status).
    seen: dict[tuple[str, str], list[tuple[str | None, str | None]]] = defaultdict(list)
    for kind in ("stop", "abort", "delete"):
        for body in answers[kind]:
            field = "deleteRuns" if kind == "delete" else "stopRuns"
            for r in body["data"][field]["results"]:
                code = r["error"] and r["error"]["code"]
                status = r["run"]["status"] if r.get("run") else None
                seen[(kind, r["runId"])].append((code, status))

    async def final(run_id: int) -> dict[str, Any]:
        body = await gql(RUN, {"id": str(run_id)}, token=alice.token)
        run: dict[str, Any] = body["data"]["run"]
        return run

    # Queued runs: exactly one stop applied (TERMINATED at once), the others were late.
    for run_id in queued:
        answered = sorted(seen[("stop", str(run_id))], key=str)
        assert answered == sorted(
            [(None, "TERMINATED")] + [("ALREADY_FINISHED", None)] * 5, key=str
        )
        run = await final(run_id)
        assert (run["status"], run["terminationReason"]) == ("TERMINATED", "TERMINATED_BY_USER")
        assert {j["status"] for j in run["jobs"]} == {"TERMINATED"}

    # Running runs nobody aborted: every stop accepted (idempotent), still winding down.
    for run_id in running[:5]:
        assert seen[("stop", str(run_id))] == [(None, "TERMINATING")] * 6
        run = await final(run_id)
        assert run["status"] == "TERMINATING"
        assert [(j["name"], j["status"]) for j in run["jobs"]] == [
            ("a", "TERMINATING"),
            ("b", "TERMINATED"),
        ]

    # Raced runs: exactly one abort applied; graceful stops applied only before it, and
    # the blocked job shows which came first.
    for run_id in raced:
        aborts = sorted(seen[("abort", str(run_id))], key=str)
        assert aborts == sorted([(None, "TERMINATED"), ("ALREADY_FINISHED", None)], key=str)
        stops = seen[("stop", str(run_id))]
        assert set(stops) <= {(None, "TERMINATING"), ("ALREADY_FINISHED", None)}
        run = await final(run_id)
        assert (run["status"], run["terminationReason"]) == ("TERMINATED", "ABORTED_BY_USER")
        jobs = {j["name"]: j["status"] for j in run["jobs"]}
        graceful_first = (None, "TERMINATING") in stops
        assert jobs == {"a": "ABORTED", "b": "TERMINATED" if graceful_first else "ABORTED"}

    # Finished runs: each deleted exactly once; later deletes no longer find it.
    for run_id in finished:
        answered = sorted(seen[("delete", str(run_id))], key=str)
        assert answered == sorted([(None, None)] + [("NOT_FOUND", None)] * 5, key=str)
    async with db.read() as session:
        flags = set(await session.scalars(select(Run.deleted).where(Run.id.in_(finished))))
        live = list(
            await session.scalars(
                select(Run.name).where(Run.deleted.is_(False), Run.project_id == project.id)
            )
        )
        total = await session.scalar(select(func.count()).select_from(Run))
    assert flags == {True}

    # Submits: one twin and four generated names, all distinct; nothing else created.
    submitted = [b["data"]["submitRun"]["run"]["name"] for b in answers["submit"] if b["data"]]
    assert len(submitted) == 5
    assert submitted.count("twin") == 1
    assert len(set(submitted)) == 5
    assert sorted(live) == sorted(
        [f"queued-{i}" for i in range(10)] + [f"running-{i}" for i in range(10)] + submitted
    )
    assert total == 10 + 10 + 6 + 5
