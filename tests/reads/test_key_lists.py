"""Loader batches of any length are one statement with a fixed number of bind parameters
(runql.db.key_lists).

Nothing but the request body bounds a batch: a federation ``_entities`` call under the
default limits carries 40,000 representations, and ``runs(first: 100) { jobs { spec } }``
over runs of 5,000 jobs reads 500,000 ids. asyncpg refuses a statement with more than
32,767 parameters, which an expanding ``IN`` list reaches at 32,768 ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import accounts as account_queries
from runql.db import jobs as job_queries
from runql.db import runs as run_queries
from runql.db.engine import Database, record_statements
from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from runql.db.models import Job
from runql.db.visibility import Viewer
from tests.factories import Factory, GraphQLClient

#: Over asyncpg's 32,767 parameters per statement.
MANY = 40_000


def _padded(real: list[Any], filler: Callable[[int], Any]) -> list[Any]:
    """``real`` values spread among absent ones, ``MANY`` in all."""
    values = [filler(i) for i in range(MANY - len(real))]
    for n, value in enumerate(real):
        values.insert(n * (MANY // len(real)), value)
    return values


def _absent_id(i: int) -> int:
    return 10_000_000 + i


Lookup = Callable[[AsyncSession, Viewer, dict[str, Any]], Awaitable[Any]]

#: name -> (query, which of the world's values it takes, filler, how to read the answer)
LOOKUPS: dict[str, tuple[Lookup, str, Callable[[int], Any], Callable[[Any], set[Any]]]] = {
    "jobs_by_ids": (
        lambda s, v, w: job_queries.jobs_by_ids(s, v, w["job_ids"]),
        "job_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "job_columns": (
        lambda s, v, w: job_queries.job_columns(s, w["job_ids"], ["spec"]),
        "job_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "runs_by_ids": (
        lambda s, v, w: run_queries.runs_by_ids(s, v, w["run_ids"]),
        "run_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "run_columns": (
        lambda s, v, w: run_queries.run_columns(s, w["run_ids"], ["spec"]),
        "run_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "latest_submissions": (
        lambda s, v, w: job_queries.latest_submissions(s, limit=1, run_ids=w["run_ids"]),
        "run_ids",
        _absent_id,
        lambda rows: {row.run_id for row in rows},
    ),
    "latest_terminated": (
        lambda s, v, w: job_queries.latest_terminated(s, w["run_ids"]),
        "run_ids",
        _absent_id,
        lambda rows: {row.run_id for row in rows},
    ),
    "job_counts": (
        lambda s, v, w: job_queries.job_counts(s, w["run_ids"]),
        "run_ids",
        _absent_id,
        lambda counts: set(counts),
    ),
    "users_by_ids": (
        lambda s, v, w: account_queries.users_by_ids(s, w["user_ids"]),
        "user_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "visible_users_by_ids": (
        lambda s, v, w: account_queries.visible_users_by_ids(s, v, w["user_ids"]),
        "user_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "projects_by_ids": (
        lambda s, v, w: account_queries.projects_by_ids(s, v, w["project_ids"]),
        "project_ids",
        _absent_id,
        lambda found: set(found),
    ),
    "projects_by_names": (
        lambda s, v, w: account_queries.projects_by_names(s, v, w["project_names"]),
        "project_names",
        lambda i: f"absent-{i}",
        lambda found: set(found),
    ),
    "member_roles": (
        lambda s, v, w: account_queries.member_roles(s, v, w["project_ids"]),
        "project_ids",
        _absent_id,
        lambda roles: set(roles),
    ),
}


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_a_lookup_of_40000_values_is_one_statement(
    db: Database, factory: Factory, name: str
) -> None:
    query, kind, filler, answered = LOOKUPS[name]
    users = [await factory.user() for _ in range(3)]
    projects = [await factory.project(members=[(u, MemberRole.USER) for u in users])]
    projects.append(await factory.project(members=[(users[0], MemberRole.USER)]))
    run_ids = [await factory.run(projects[i % 2], users[0]) for i in range(4)]
    await factory.set_job(run_ids[1], termination_reason="FAILED_BY_RUNNER")
    await factory.set_job(run_ids[3], termination_reason="FAILED_BY_RUNNER")
    async with db.read() as session:
        job_ids = list(await session.scalars(select(Job.id).where(Job.run_id.in_(run_ids))))
    world: dict[str, list[Any]] = {
        "job_ids": job_ids,
        "run_ids": run_ids,
        "user_ids": [u.id for u in users],
        "project_ids": [p.id for p in projects],
        "project_names": [p.name for p in projects],
    }
    real = world[kind]
    expected = set(real) if name != "latest_terminated" else {run_ids[1], run_ids[3]}
    viewer = Viewer(user_id=users[0].id, name=users[0].name, is_admin=False)

    async with db.read() as session:
        with record_statements() as sql:
            found = await query(session, viewer, {kind: _padded(real, filler)})

    assert answered(found) == expected
    assert sql.count == 1, sql.statements


@pytest.mark.slow
async def test_entities_with_40000_representations(
    db: Database, factory: Factory, gql: GraphQLClient
) -> None:
    """The federation path that reaches it: ``_entities`` batches every Job id into one
    ``jobs_by_ids`` call (the request is under the default body and cost limits)."""
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    run_id = await factory.run(project, user, jobs=[JobDefinition(f"j{n}") for n in range(100)])
    async with db.read() as session:
        job_ids = list(await session.scalars(select(Job.id).where(Job.run_id == run_id)))
    ids = _padded(job_ids, _absent_id)

    body, sql = await gql.counted(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Job { id } } }",
        {"r": [{"__typename": "Job", "id": str(i)} for i in ids]},
        token=user.token,
    )

    answer = body["data"]["_entities"]
    assert [int(e["id"]) if e else None for e in answer] == [
        i if i in set(job_ids) else None for i in ids
    ]
    assert sql.count == 2, sql.statements  # token lookup; the jobs
