"""Scenario 7: federation ``_entities`` with 100 mixed representations.

40 runs, 40 jobs, up to 10 users and projects for the rest, as an Apollo gateway would send them in
one request. Each entity must come back resolved (its name or status present); the
figure is the latency and the SQL statements of the request.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bench.env import BenchEnv, Config, GraphQLError
from bench.report import Report
from bench.seed import Seeded
from bench.timing import measure
from runql.db.models import Job, User

SCENARIO = "7 _entities"

ENTITIES = """
query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Run { id name runStatus: status }
    ... on Job { id jobStatus: status submissionNum }
    ... on User { id name }
    ... on Project { id name }
  }
}
"""


async def representations(env: BenchEnv, seeded: Seeded) -> list[dict[str, Any]]:
    async with env.db.read() as session:
        job_ids = list(
            await session.scalars(
                select(Job.id).where(Job.run_id.in_(seeded.run_ids[:40])).limit(40)
            )
        )
        user_ids = list(await session.scalars(select(User.id).limit(10)))
    reps: list[dict[str, Any]] = []
    reps += [{"__typename": "Run", "id": str(i)} for i in seeded.run_ids[:40]]
    reps += [{"__typename": "Job", "id": str(i)} for i in job_ids]
    reps += [{"__typename": "User", "id": str(i)} for i in user_ids]
    projects = seeded.project_ids[: 100 - len(reps)]  # the rest: projects (few users exist)
    reps += [{"__typename": "Project", "id": str(i)} for i in projects]
    # Mixed, as a gateway's batch would be.
    return reps[::2] + reps[1::2]


def _resolved(entity: dict[str, Any] | None) -> bool:
    if entity is None:
        return False
    return bool(entity.get("name") or entity.get("jobStatus"))


async def measure_entities(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    reps = await representations(env, seeded)
    variables = {"representations": reps}
    token = seeded.admin.token
    quiet = logging.getLogger("strawberry.execution")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the probe may fail; its tracebacks are not news
    try:
        data = await env.gql(ENTITIES, variables, token=token)
    except GraphQLError as exc:
        report.skip(env.backend, SCENARIO, f"_entities failed: {str(exc)[:160]}")
        return
    finally:
        quiet.setLevel(level)
    entities = data["_entities"]
    unresolved = [rep for rep, e in zip(reps, entities, strict=True) if not _resolved(e)]
    if len(entities) != len(reps) or unresolved:
        report.skip(
            env.backend,
            SCENARIO,
            f"_entities does not resolve references yet ({len(unresolved)} of "
            f"{len(reps)} came back without data, e.g. {unresolved[:1]})",
        )
        return
    timing = await measure(
        lambda: env.gql(ENTITIES, variables, token=token),
        repeats=config.repeats,
        warmup=config.warmup,
    )
    report.timing(
        env.backend, SCENARIO, f"{len(reps)} mixed representations", timing, key="entities"
    )
    report.figure(env.backend, "entities.statements", timing.statements, "statements")
