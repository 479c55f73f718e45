"""``submitRun``: the run and the first submission of each job are created as the DAG says;
invalid input is refused with the field named, before anything is written."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from runql.db import lifecycle
from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job, JobDependency, LogicalJob, Run
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient

SUBMIT = """
mutation Submit($input: SubmitRunInput!) {
  submitRun(input: $input) {
    run {
      id name status priority spec project { name } user { name }
      finishedAt terminationReason attempt submittedAt
      viewerCanStop viewerCanDelete
      jobCounts { total blocked submitted }
      jobs { name replicaNum jobNum submissionNum status spec }
    }
  }
}
"""

MAX_JOBS = 6
MAX_JSON = 200


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Small limits so the limit errors are cheap to reach."""
    return Settings(
        database_url=database_url,
        secret_key="test-secret",
        max_jobs_per_run=MAX_JOBS,
        max_json_bytes=MAX_JSON,
    )


async def _row_counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Run, LogicalJob, Job, JobDependency)
        }


DAG = [
    {"name": "prepare", "spec": {"cmd": "prep"}},
    {
        "name": "train",
        "replicas": 2,
        "dependsOn": ["prepare"],
        "retry": {"limit": 3, "onLeaseExpiry": False},
        "spec": {"cmd": "train"},
    },
    {"name": "evaluate", "dependsOn": ["train", "prepare"]},
]


async def test_submit_creates_the_run_and_submission_zero_of_every_logical_job(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await factory.user_in_project()

    body = await gql(
        SUBMIT,
        {
            "input": {
                "project": "vision",
                "name": "resnet",
                "priority": 5,
                "spec": {"lr": 0.1},
                "jobs": DAG,
            }
        },
        token=user.token,
    )

    run = body["data"]["submitRun"]["run"]
    assert {k: run[k] for k in ("name", "status", "priority", "spec", "project", "user")} == {
        "name": "resnet",
        "status": "SUBMITTED",
        "priority": 5,
        "spec": {"lr": 0.1},
        "project": {"name": "vision"},
        "user": {"name": "alice"},
    }
    assert (run["finishedAt"], run["terminationReason"], run["attempt"]) == (None, None, 0)
    assert run["submittedAt"]
    assert (run["viewerCanStop"], run["viewerCanDelete"]) == (True, False)
    assert run["jobCounts"] == {"total": 4, "blocked": 3, "submitted": 1}
    assert [
        (j["name"], j["jobNum"], j["replicaNum"], j["submissionNum"], j["status"], j["spec"])
        for j in run["jobs"]
    ] == [
        ("prepare", 0, 0, 0, "SUBMITTED", {"cmd": "prep"}),
        ("train", 1, 0, 0, "BLOCKED", {"cmd": "train"}),
        ("train", 1, 1, 0, "BLOCKED", {"cmd": "train"}),
        ("evaluate", 2, 0, 0, "BLOCKED", {}),
    ]
    async with db.read() as session:
        policies = (
            await session.execute(
                select(
                    LogicalJob.job_num,
                    LogicalJob.retry_limit,
                    LogicalJob.retry_on_failure,
                    LogicalJob.retry_on_lease_expiry,
                ).order_by(LogicalJob.job_num, LogicalJob.replica_num)
            )
        ).all()
        edges = (
            await session.execute(
                select(JobDependency.job_num, JobDependency.depends_on_job_num).order_by(
                    JobDependency.job_num, JobDependency.depends_on_job_num
                )
            )
        ).all()
    assert [tuple(p) for p in policies] == [
        (0, 0, True, True),
        (1, 3, True, False),
        (1, 3, True, False),
        (2, 0, True, True),
    ]
    assert [tuple(e) for e in edges] == [(1, 0), (2, 0), (2, 1)]


async def test_statements_do_not_grow_with_the_number_of_jobs(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await factory.user_in_project()
    query = "mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"
    counts = []
    for n in (2, MAX_JOBS):  # both with dependencies: a run without any skips that INSERT
        jobs = [{"name": f"j{i}", "dependsOn": [f"j{i - 1}"] if i else []} for i in range(n)]
        _, sql = await gql.counted(
            query, {"input": {"project": "vision", "name": f"r{n}", "jobs": jobs}}, token=user.token
        )
        counts.append(sql.count)
    assert counts[0] == counts[1], counts


async def test_generated_names_are_readable_and_unique(
    factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await factory.user_in_project()
    names = []
    for _ in range(5):
        body = await gql(
            SUBMIT, {"input": {"project": "vision", "jobs": [{"name": "main"}]}}, token=user.token
        )
        names.append(body["data"]["submitRun"]["run"]["name"])

    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d+(-[0-9a-f]{4})?", name) for name in names), names
    assert len(set(names)) == 5
    assert [int(name.split("-")[2]) for name in names] == [1, 2, 3, 4, 5]


async def test_a_taken_name_is_a_clear_error_on_the_name_field(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    user, _ = await factory.user_in_project()
    variables = {"input": {"project": "vision", "name": "resnet", "jobs": [{"name": "main"}]}}
    await gql(SUBMIT, variables, token=user.token)
    before = await _row_counts(db)

    body = await gql(SUBMIT, variables, token=user.token, expect_errors=True)

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "name"
    assert "already has a run named 'resnet'" in error["message"]
    assert await _row_counts(db) == before


def _job(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra}


INVALID: dict[str, tuple[dict[str, Any], str, str, str]] = {
    # case: (input overrides, code, field, message fragment)
    "no jobs": ({"jobs": []}, "BAD_USER_INPUT", "jobs", "at least one job"),
    "duplicate job names": (
        {"jobs": [_job("a"), _job("b"), _job("a")]},
        "BAD_USER_INPUT",
        "jobs[2].name",
        "duplicate job name 'a' (also jobs[0])",
    ),
    "unknown dependency": (
        {"jobs": [_job("a"), _job("b", dependsOn=["a", "nope"])]},
        "BAD_USER_INPUT",
        "jobs[1].dependsOn",
        "unknown job 'nope'",
    ),
    "cycle": (
        {
            "jobs": [
                _job("a", dependsOn=["c"]),
                _job("b", dependsOn=["a"]),
                _job("c", dependsOn=["b"]),
            ]
        },
        "BAD_USER_INPUT",
        "jobs[0].dependsOn",
        "dependency cycle: a -> c -> b -> a",
    ),
    "self dependency": (
        {"jobs": [_job("a"), _job("b", dependsOn=["b"])]},
        "BAD_USER_INPUT",
        "jobs[1].dependsOn",
        "dependency cycle: b -> b",
    ),
    "too many jobs": (
        {"jobs": [_job(f"j{i}") for i in range(MAX_JOBS + 1)]},
        "LIMIT_EXCEEDED",
        "jobs",
        f"at most {MAX_JOBS} (got {MAX_JOBS + 1})",
    ),
    "too many replicas": (
        {"jobs": [_job("a", replicas=MAX_JOBS), _job("b")]},
        "LIMIT_EXCEEDED",
        "jobs (logical jobs: sum of replicas)",
        f"at most {MAX_JOBS} (got {MAX_JOBS + 1})",
    ),
    "zero replicas": (
        {"jobs": [_job("a", replicas=0)]},
        "BAD_USER_INPUT",
        "jobs[0].replicas",
        "at least 1",
    ),
    "negative retry limit": (
        {"jobs": [_job("a", retry={"limit": -1})]},
        "BAD_USER_INPUT",
        "jobs[0].retry.limit",
        "must not be negative",
    ),
    "empty job name": ({"jobs": [_job(" ")]}, "BAD_USER_INPUT", "jobs[0].name", "empty"),
    "job spec too large": (
        {"jobs": [_job("a", spec={"blob": "x" * MAX_JSON})]},
        "LIMIT_EXCEEDED",
        "jobs[0].spec (bytes)",
        f"at most {MAX_JSON}",
    ),
    "job spec not an object": (
        {"jobs": [_job("a", spec=[1, 2])]},
        "BAD_USER_INPUT",
        "jobs[0].spec",
        "must be a JSON object",
    ),
    "run spec too large": (
        {"spec": {"blob": "x" * MAX_JSON}},
        "LIMIT_EXCEEDED",
        "spec (bytes)",
        f"at most {MAX_JSON}",
    ),
    "run spec not an object": ({"spec": "text"}, "BAD_USER_INPUT", "spec", "JSON object"),
    "run name too long": ({"name": "n" * 129}, "LIMIT_EXCEEDED", "name", "at most 128"),
    "run name padded": ({"name": " x"}, "BAD_USER_INPUT", "name", "whitespace"),
    "unknown project": ({"project": "nope"}, "NOT_FOUND", "project", "no project named 'nope'"),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_input_names_the_field_and_writes_nothing(
    db: Database, factory: Factory, gql: GraphQLClient, case: str
) -> None:
    user, _ = await factory.user_in_project()
    overrides, code, field, fragment = INVALID[case]
    before = await _row_counts(db)

    body = await gql(
        SUBMIT,
        {"input": {"project": "vision", "jobs": [_job("main")], **overrides}},
        token=user.token,
        expect_errors=True,
    )

    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["field"] == field
    assert error["message"].startswith(field)
    assert fragment in error["message"]
    assert await _row_counts(db) == before


@pytest.mark.parametrize("role", list(MemberRole))
async def test_any_member_may_submit(
    factory: Factory, gql: GraphQLClient, role: MemberRole
) -> None:
    user = await factory.user("carol")
    await factory.project("vision", [(user, role)])

    body = await gql(
        SUBMIT, {"input": {"project": "vision", "jobs": [_job("main")]}}, token=user.token
    )

    assert body["data"]["submitRun"]["run"]["user"] == {"name": "carol"}


async def test_admins_may_submit_to_any_project_and_strangers_to_none(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    await factory.user_in_project()
    admin = await factory.user("root", admin=True)
    stranger = await factory.user("mallory")
    variables = {"input": {"project": "vision", "jobs": [_job("main")]}}

    ok = await gql(SUBMIT, variables, token=admin.token)
    refused = await gql(SUBMIT, variables, token=stranger.token, expect_errors=True)
    anonymous = await gql(SUBMIT, variables, expect_errors=True)

    assert ok["data"]["submitRun"]["run"]["project"] == {"name": "vision"}
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["NOT_FOUND"]
    assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
    assert (await _row_counts(db))["runs"] == 1


async def test_a_generated_name_that_is_taken_is_replaced_in_the_same_transaction(
    db: Database, factory: Factory
) -> None:
    user, project = await factory.user_in_project()
    # The name the seeded generator picks first for the project's 2nd run, taken already.
    taken = lifecycle._generated_name(2, 0, random.Random(1))
    await factory.run(project, user, name=taken)

    async with db.write() as session:
        run = await lifecycle.submit_run(
            session,
            project_id=project.id,
            user_id=user.id,
            name=None,
            jobs=[JobDefinition("main")],
            spec={},
            rng=random.Random(1),
        )

    assert run.name != taken
    assert re.fullmatch(r"[a-z]+-[a-z]+-2", run.name)
    async with db.read() as session:
        names = set(await session.scalars(select(Run.name).where(Run.deleted.is_(False))))
    assert names == {taken, run.name}
