"""Scenario 4: the all-projects runs page for a member of 1,000 projects, and an admin.

Visibility is a subquery on memberships, so a member of 1,000 projects should cost about
what an admin (who sees everything, no predicate) costs. Same query as scenario 1.
"""

from __future__ import annotations

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.runs_page import check_page, runql_page
from bench.seed import Seeded
from bench.timing import measure

SCENARIO = "4 all projects"


async def measure_all_projects(
    env: BenchEnv, seeded: Seeded, config: Config, report: Report
) -> None:
    members = len(seeded.project_ids)
    for label, token, key in (
        (f"member of {members} projects", seeded.member.token, "all_projects.member"),
        ("admin", seeded.admin.token, "all_projects.admin"),
    ):
        check_page(await runql_page(env, token), seeded)
        timing = await measure(
            lambda token=token: runql_page(env, token),  # type: ignore[misc]
            repeats=config.repeats,
            warmup=config.warmup,
        )
        report.timing(env.backend, SCENARIO, label, timing, key=key)
    ratio = report.ratio(env.backend, "all_projects.member", "all_projects.admin")
    report.figure(env.backend, "all_projects.member_over_admin", ratio, "x")
