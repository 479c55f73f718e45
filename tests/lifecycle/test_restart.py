"""``restartRuns``: what a restart re-runs (scope FAILED and ALL), per-item results in
request order, stale claims of the old attempt, a fresh retry budget, the history kept,
the event log, a statement count that does not grow with the number of runs, a run that
failed for good taken to DONE by a restart through the runner API, and restarts racing
stops and completions without deadlock (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy import select, update

from runql.db.engine import Database
from runql.db.enums import (
    CompletionStatus,
    EventKind,
    JobStatus,
    MemberRole,
    RestartScope,
    RunStatus,
)
from runql.db.lifecycle import JobDefinition, insert_run
from runql.db.models import Event, Job, LogicalJob, Run
from runql.db.visibility import Viewer
from runql.resolvers import lifecycle as lifecycle_resolvers
from runql.resolvers import runner
from runql.resolvers.context import Context
from runql.resolvers.lifecycle import RunAnswer
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle
from tests.runner.helpers import claim, complete, completion, renew
from tests.runner.test_lock_order import Race

RESTART = """
mutation Restart($input: RestartRunsInput!) {
  restartRuns(input: $input) {
    results { runId name error { code message }
      run { id status statusMessage attempt finishedAt terminationReason } }
  }
}
"""

RUN = """
query($id: ID!) {
  run(id: $id) {
    status statusMessage attempt finishedAt terminationReason
    jobs(submissionsLimit: 10) { name replicaNum submissionNum status terminationReason }
  }
}
"""

#: prep -> train (2 replicas) -> eval -> report, and side on its own.
PIPELINE = [
    JobDefinition("prep"),
    JobDefinition("train", replicas=2, depends_on=("prep",)),
    JobDefinition("eval", depends_on=("train",)),
    JobDefinition("report", depends_on=("eval",)),
    JobDefinition("side"),
]
#: How PIPELINE ends when replica 1 of train fails for good.
TRAIN_FAILED = {
    "prep": JobStatus.DONE,
    ("train", 0): JobStatus.DONE,
    ("train", 1): JobStatus.FAILED,
    "eval": JobStatus.ABORTED,
    "report": JobStatus.ABORTED,
    "side": JobStatus.DONE,
}


async def _owner(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user = await factory.user("alice")
    project = await factory.project("vision", [(user, MemberRole.USER)])
    return user, project


async def _restart(
    gql: GraphQLClient, token: str, ids: list[Any], scope: str | None = None
) -> list[dict[str, Any]]:
    restart_input: dict[str, Any] = {"runIds": [str(i) for i in ids]}
    if scope is not None:
        restart_input["scope"] = scope
    body = await gql(RESTART, {"input": restart_input}, token=token)
    results: list[dict[str, Any]] = body["data"]["restartRuns"]["results"]
    return results


async def _run(gql: GraphQLClient, token: str, run_id: int) -> dict[str, Any]:
    body = await gql(RUN, {"id": str(run_id)}, token=token)
    run: dict[str, Any] = body["data"]["run"]
    return run


def _submissions(run: dict[str, Any]) -> dict[tuple[str, int], list[tuple[int, str]]]:
    """Every submission of each logical job, newest first: (submissionNum, status)."""
    found: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for job in run["jobs"]:
        key = (job["name"], job["replicaNum"])
        found.setdefault(key, []).append((job["submissionNum"], job["status"]))
    return found


async def _pointers_in_step(db: Database, run_id: int) -> None:
    """Each logical job's latest-submission pointer names its newest submission."""
    async with db.read() as session:
        pointers = {
            (lj.replica_num, lj.job_num): lj.latest_submission_num
            for lj in await session.scalars(select(LogicalJob).where(LogicalJob.run_id == run_id))
        }
        newest: dict[tuple[int, int], int] = {}
        for job in await session.scalars(select(Job).where(Job.run_id == run_id)):
            key = (job.replica_num, job.job_num)
            newest[key] = max(newest.get(key, 0), job.submission_num)
    assert pointers == newest


async def test_a_restart_reruns_the_failed_job_and_its_aborted_downstream_only(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.finished_run(
        project, user, PIPELINE, TRAIN_FAILED, status=RunStatus.FAILED
    )

    (result,) = await _restart(gql, user.token, [run_id])  # scope FAILED by default

    assert result["error"] is None
    assert result["run"] == {
        "id": str(run_id),
        "status": "SUBMITTED",
        "statusMessage": "restarted by alice",
        "attempt": 1,
        "finishedAt": None,
        "terminationReason": None,
    }
    run = await _run(gql, user.token, run_id)
    assert _submissions(run) == {
        ("prep", 0): [(0, "DONE")],
        ("train", 0): [(0, "DONE")],
        ("train", 1): [(1, "SUBMITTED"), (0, "FAILED")],  # prep is DONE: ready at once
        ("eval", 0): [(1, "BLOCKED"), (0, "ABORTED")],  # waits for train's replica 1
        ("report", 0): [(1, "BLOCKED"), (0, "ABORTED")],
        ("side", 0): [(0, "DONE")],
    }
    await _pointers_in_step(db, run_id)

    # Only the re-run job is claimable; once it is DONE, the kept replica 0 and it
    # unblock eval, and the run goes on to DONE.
    (first,) = await claim(gql, user.token)
    assert (first["job"]["name"], first["job"]["submissionNum"]) == ("train", 1)
    assert (await _run(gql, user.token, run_id))["statusMessage"] == "running"
    for expected in ("eval", "report"):
        await complete(gql, user.token, [completion(first)])
        (first,) = await claim(gql, user.token)
        assert first["job"]["name"] == expected
    await complete(gql, user.token, [completion(first)])
    run = await _run(gql, user.token, run_id)
    assert (run["status"], run["terminationReason"], run["attempt"]) == (
        "DONE",
        "ALL_JOBS_DONE",
        1,
    )


async def test_scope_all_reruns_every_job_and_a_done_run_needs_it(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    jobs = [JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    done = await factory.finished_run(
        project, user, jobs, {"a": JobStatus.DONE, "b": JobStatus.DONE}, status=RunStatus.DONE
    )
    failed = await factory.finished_run(
        project,
        user,
        PIPELINE,
        TRAIN_FAILED,
        status=RunStatus.FAILED,
    )

    # Stopped as its last job ended DONE (not a state runql leaves, but a restart must
    # not leave it SUBMITTED with nothing to run).
    all_done_but_stopped = await factory.finished_run(
        project, user, jobs, {"a": JobStatus.DONE, "b": JobStatus.DONE}, status=RunStatus.TERMINATED
    )

    refused = await _restart(gql, user.token, [done, all_done_but_stopped], "FAILED")
    results = await _restart(gql, user.token, [done, failed], "ALL")

    assert [r["error"]["code"] for r in refused] == ["INVALID_STATE", "INVALID_STATE"]
    assert all("nothing failed" in r["error"]["message"] for r in refused)
    unchanged = await _run(gql, user.token, all_done_but_stopped)
    assert (unchanged["status"], unchanged["attempt"], len(unchanged["jobs"])) == (
        "TERMINATED",
        0,
        2,
    )
    assert [(r["error"], r["run"]["status"], r["run"]["attempt"]) for r in results] == [
        (None, "SUBMITTED", 1),
        (None, "SUBMITTED", 1),
    ]
    assert _submissions(await _run(gql, user.token, done)) == {
        ("a", 0): [(1, "SUBMITTED"), (0, "DONE")],
        ("b", 0): [(1, "BLOCKED"), (0, "DONE")],
    }
    latest = {
        key: subs[0] for key, subs in _submissions(await _run(gql, user.token, failed)).items()
    }
    assert latest == {
        ("prep", 0): (1, "SUBMITTED"),
        ("train", 0): (1, "BLOCKED"),
        ("train", 1): (1, "BLOCKED"),
        ("eval", 0): (1, "BLOCKED"),
        ("report", 0): (1, "BLOCKED"),
        ("side", 0): (1, "SUBMITTED"),
    }


async def test_a_terminated_run_restarts_and_restarts_again(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(
        project, user, jobs=[JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    )
    stopped = await gql(
        "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { run { status } } } }",
        {"id": str(run_id)},
        token=user.token,
    )
    assert stopped["data"]["stopRuns"]["results"][0]["run"]["status"] == "TERMINATED"

    (first,) = await _restart(gql, user.token, [run_id])
    await gql(
        "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { run { status } } } }",
        {"id": str(run_id)},
        token=user.token,
    )
    (second,) = await _restart(gql, user.token, [run_id])

    assert (first["run"]["attempt"], second["run"]["attempt"]) == (1, 2)
    assert _submissions(await _run(gql, user.token, run_id)) == {
        ("a", 0): [(2, "SUBMITTED"), (1, "TERMINATED"), (0, "TERMINATED")],
        ("b", 0): [(2, "BLOCKED"), (1, "TERMINATED"), (0, "TERMINATED")],
    }
    await _pointers_in_step(db, run_id)


async def test_results_come_per_requested_id_in_request_order(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    colleague = await factory.user("bob")
    await factory.member(project, colleague, MemberRole.USER)
    stranger = await factory.user("eve")
    elsewhere = await factory.project("nlp", [(stranger, MemberRole.USER)])
    one_job = {"main": JobStatus.FAILED}
    mine = await factory.finished_run(
        project, user, [JobDefinition("main")], one_job, status=RunStatus.FAILED, name="mine"
    )
    running = await factory.run(project, user, name="running", status=RunStatus.RUNNING)
    theirs = await factory.finished_run(
        project, colleague, [JobDefinition("main")], one_job, status=RunStatus.FAILED
    )
    invisible = await factory.finished_run(
        elsewhere, stranger, [JobDefinition("main")], one_job, status=RunStatus.FAILED
    )
    requested: list[Any] = [running, 999_999, theirs, mine, invisible, "abc", mine, 2**70]

    results = await _restart(gql, user.token, requested)

    assert [r["runId"] for r in results] == [str(i) for i in requested[:5]] + [
        None,
        str(mine),
        str(2**70),
    ]
    codes = [r["error"] and r["error"]["code"] for r in results]
    assert codes == [
        "INVALID_STATE",
        "NOT_FOUND",
        "FORBIDDEN",
        None,
        "NOT_FOUND",
        "BAD_USER_INPUT",
        None,
        "NOT_FOUND",
    ]
    messages = [r["error"]["message"] for r in results if r["error"]]
    assert "still RUNNING; only finished runs (DONE, FAILED, TERMINATED)" in messages[0]
    assert "may restart it" in messages[2]
    # A duplicate answers twice, applied once.
    assert results[3]["run"] == results[6]["run"]
    assert results[3]["run"]["attempt"] == 1
    assert (await _run(gql, user.token, mine))["jobs"][0]["submissionNum"] == 1
    # Nothing happened to the runs that were refused.
    async with db.read() as session:
        rows = await session.execute(select(Run.id, Run.attempt).where(Run.id != mine))
        attempts = {run_id: attempt for run_id, attempt in rows}
    assert set(attempts.values()) == {0}
    assert (await _run(gql, colleague.token, theirs))["status"] == "FAILED"

    # Runs named within a project.
    body = await gql(
        RESTART,
        {"input": {"project": "vision", "names": ["nope", "mine"], "scope": "ALL"}},
        token=user.token,
    )
    by_name = body["data"]["restartRuns"]["results"]
    assert [(r["name"], r["runId"]) for r in by_name] == [("nope", None), ("mine", str(mine))]
    assert by_name[0]["error"]["code"] == "NOT_FOUND"
    assert by_name[1]["error"]["code"] == "INVALID_STATE"  # restarted above: SUBMITTED


@pytest.mark.parametrize(
    ("restart_input", "code", "field"),
    [
        ({"runIds": ["1"], "names": ["a"], "project": "p"}, "BAD_USER_INPUT", "runIds"),
        ({"names": ["a"]}, "BAD_USER_INPUT", "project"),
        ({}, "BAD_USER_INPUT", "project"),
        ({"runIds": [str(i) for i in range(501)]}, "LIMIT_EXCEEDED", "runIds"),
    ],
)
async def test_a_wrong_request_is_one_error_naming_the_argument(
    factory: Factory,
    gql: GraphQLClient,
    restart_input: dict[str, Any],
    code: str,
    field: str,
) -> None:
    user, _ = await _owner(factory)

    body = await gql(RESTART, {"input": restart_input}, token=user.token, expect_errors=True)

    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (code, field)


async def test_claims_of_the_old_attempt_are_stale(factory: Factory, gql: GraphQLClient) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=[JobDefinition("a", replicas=2)])
    old = await claim(gql, user.token)
    await complete(gql, user.token, [completion(c, "FAILED") for c in old])
    assert (await _run(gql, user.token, run_id))["status"] == "FAILED"
    # Before the restart a repeated completion is answered as applied.
    assert [
        r["error"] for r in await complete(gql, user.token, [completion(old[0], "FAILED")])
    ] == [None]

    await _restart(gql, user.token, [run_id])
    new = await claim(gql, user.token)

    repeated = await complete(gql, user.token, [completion(c, "FAILED") for c in old])
    renewed = await renew(gql, user.token, old)
    # The old tokens on the new submissions are not their claims either.
    forged = [{**n, "claimToken": o["claimToken"]} for n, o in zip(new, old, strict=True)]
    crossed = await complete(gql, user.token, [completion(c) for c in forged])
    assert {r["error"]["code"] for r in repeated + renewed + crossed} == {"STALE_CLAIM"}
    assert "restarted" in repeated[0]["error"]["message"]
    assert [r["error"] for r in await complete(gql, user.token, [completion(c) for c in new])] == [
        None,
        None,
    ]
    assert (await _run(gql, user.token, run_id))["status"] == "DONE"


async def test_the_retry_budget_is_fresh_after_a_restart(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.run(project, user, jobs=[JobDefinition("a", retry_limit=1)])

    async def fail_until_final() -> list[tuple[int, str]]:
        while claims := await claim(gql, user.token):
            await complete(gql, user.token, [completion(c, "FAILED") for c in claims])
        return _submissions(await _run(gql, user.token, run_id))[("a", 0)]

    assert await fail_until_final() == [(1, "FAILED"), (0, "FAILED")]
    await _restart(gql, user.token, [run_id])
    # Submission 2 is the restart's, 3 its one retry: the budget counted from the restart.
    assert await fail_until_final() == [(3, "FAILED"), (2, "FAILED"), (1, "FAILED"), (0, "FAILED")]
    assert (await _run(gql, user.token, run_id))["status"] == "FAILED"


async def test_a_restart_appends_the_run_and_its_new_submissions_to_the_event_log(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _owner(factory)
    run_id = await factory.finished_run(
        project, user, PIPELINE, TRAIN_FAILED, status=RunStatus.FAILED
    )
    async with db.read() as session:
        before = await session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))

    await _restart(gql, user.token, [run_id])

    async with db.read() as session:
        events = (
            await session.execute(
                select(Event.kind, Event.run_id, Job.name, Job.submission_num)
                .outerjoin(Job, Job.id == Event.job_id)
                .where(Event.id > before)
                .order_by(Event.id)
            )
        ).all()
    assert [tuple(e) for e in events] == [
        (EventKind.RUN_RESTARTED, run_id, None, None),
        (EventKind.JOB_RETRIED, run_id, "train", 1),
        (EventKind.JOB_RETRIED, run_id, "eval", 1),
        (EventKind.JOB_RETRIED, run_id, "report", 1),
    ]


async def _failed_runs(db: Database, project: ProjectHandle, user: UserHandle, n: int) -> list[int]:
    """``n`` FAILED runs a -> b (a failed, b aborted), inserted in one transaction."""
    jobs = [JobDefinition("a"), JobDefinition("b", depends_on=("a",))]
    async with db.write() as session:
        ids = [
            (
                await insert_run(
                    session, project_id=project.id, user_id=user.id, name=f"bulk-{n}-{i}", jobs=jobs
                )
            ).id
            for i in range(n)
        ]
        for job_num, status in ((0, JobStatus.FAILED), (1, JobStatus.ABORTED)):
            await session.execute(
                update(Job).where(Job.run_id.in_(ids), Job.job_num == job_num).values(status=status)
            )
        await session.execute(update(Run).where(Run.id.in_(ids)).values(status=RunStatus.FAILED))
    return ids


@pytest.mark.parametrize(
    ("scope", "many"),
    [("FAILED", 500), ("ALL", 50)],  # 500 is the batch limit; ALL differs only in its filter
)
async def test_restarting_500_runs_costs_the_statements_of_restarting_5(
    db: Database, factory: Factory, gql: GraphQLClient, scope: str, many: int
) -> None:
    owner = await factory.user("alice")
    manager = await factory.user("mona")
    project = await factory.project("vision", [(owner, MemberRole.USER)])
    await factory.member(project, manager, MemberRole.MANAGER)
    query = """mutation($input: RestartRunsInput!) { restartRuns(input: $input) { results {
        runId error { code } run { id status attempt statusMessage jobCounts { total } }
    } } }"""

    counts = []
    for n in (5, many):
        ids = await _failed_runs(db, project, owner, n)
        variables = {"input": {"runIds": [str(i) for i in ids], "scope": scope}}
        body, sql = await gql.counted(query, variables, token=manager.token)
        results = body["data"]["restartRuns"]["results"]
        assert {(r["error"], r["run"]["status"], r["run"]["attempt"]) for r in results} == {
            (None, "SUBMITTED", 1)
        }
        assert {r["run"]["statusMessage"] for r in results} == {"restarted by mona"}
        counts.append(sql.count)
        async with db.read() as session:
            added = await session.scalar(
                select(Job.id).where(Job.run_id.in_(ids), Job.submission_num == 1).limit(1)
            )
        assert added is not None

    assert counts[0] == counts[1], counts


# --- races (PostgreSQL: row locks; SQLite: one writer at a time) -----------------------


def _restart_call(race: Race, run_ids: list[int]) -> Awaitable[list[RunAnswer]]:
    ids = [str(i) for i in run_ids]
    return lifecycle_resolvers.restart_runs(
        race.ctx, run_ids=ids, project=None, names=None, scope=RestartScope.FAILED
    )


def _codes(answers: list[Any], key: str) -> dict[str, list[str | None]]:
    """Error codes (None: applied) per item key (``run_id`` / ``job_id``)."""
    found: dict[str, list[str | None]] = {}
    for answer in answers:
        found.setdefault(getattr(answer, key), []).append(answer.error and answer.error.code)
    return found


def _all_codes(answers: list[Any]) -> set[str | None]:
    return {answer.error and answer.error.code for answer in answers}


async def test_restarts_racing_stops_completions_and_renewals_never_deadlock(
    db: Database, factory: Factory, settings: Settings
) -> None:
    """Two restarts of three runs (listed in opposite orders), a stop, completions that
    end the third run, renewals of its jobs and a stale completion of the old attempt,
    all at once. Every writer locks runs before jobs in id order, so no round deadlocks:
    40 rounds catch a lock-order bug that deadlocks one round in six with a chance of
    about 999 in 1,000. The final state must be what the answers say."""
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    ctx = Context(db=db, settings=settings, viewer_or_none=Viewer(user.id, user.name, False))
    race = Race(db, ctx, project)
    jobs = [JobDefinition("a", replicas=4), JobDefinition("b", replicas=2, depends_on=("a",))]
    for _ in race.rounds(40):
        kept_failed, stopped, running = await race.runs(jobs, 3)
        claims = await race.claim_all()
        await race.complete(claims[kept_failed] + claims[stopped], CompletionStatus.FAILED)
        leases = [runner.Lease(str(c.job.id), c.token) for c in claims[running]]

        answers = await race.gather(
            _restart_call(race, [kept_failed, stopped, running]),
            _restart_call(race, [running, stopped, kept_failed]),
            race.stop([stopped, running]),
            race.complete(claims[running], CompletionStatus.FAILED),
            race.renew(leases),
            race.complete(claims[kept_failed], CompletionStatus.FAILED),
        )

        restarts = _codes(answers[0] + answers[1], "run_id")
        stops = _codes(answers[2], "run_id")
        assert _all_codes(answers[3]) == {None}  # the running run's end always applies
        # Renewed before the completion; after it finished (or was restarted), refused.
        assert _all_codes(answers[4]) <= {None, "INVALID_STATE", "STALE_CLAIM"}
        # Before the restart a repeat, answered; after it, stale.
        assert _all_codes(answers[5]) <= {None, "STALE_CLAIM"}
        for run_id in (kept_failed, stopped, running):
            applied = restarts[str(run_id)].count(None)
            assert set(restarts[str(run_id)]) <= {None, "INVALID_STATE"}
            run = await race.run(run_id)
            rows = await race.jobs(run_id)
            await _pointers_in_step(db, run_id)
            # Each restart re-ran every logical job (all failed, aborted or stopped).
            per_job: dict[tuple[int, int], list[Job]] = {}
            for job in rows:
                per_job.setdefault((job.job_num, job.replica_num), []).append(job)
            assert run.attempt == applied
            assert {len(subs) for subs in per_job.values()} == {1 + applied}
            latest = {subs[-1].status for subs in per_job.values()}
            if run.status == RunStatus.SUBMITTED:
                assert latest == {JobStatus.SUBMITTED, JobStatus.BLOCKED}
            else:
                assert not latest & {JobStatus.SUBMITTED, JobStatus.BLOCKED, JobStatus.RUNNING}
        assert (await race.run(kept_failed)).attempt == 1  # nobody stops it: one restart
        # The stop applies only to a restarted run (it was FAILED before), and a second
        # restart only after that stop.
        stop_applied = stops[str(stopped)] == [None]
        attempt = (await race.run(stopped)).attempt
        assert attempt == 1 + stop_applied or (stop_applied and attempt == 1)
        if attempt == 1 and stop_applied:
            assert (await race.run(stopped)).status == RunStatus.TERMINATED
