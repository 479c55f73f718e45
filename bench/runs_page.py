"""Scenario 1: the runs page against history depth, and the naive baseline.

runql answers ``runs(first: 50)`` through the real app; the naive baseline
(:mod:`bench.naive`) loads the same page the way slow orchestrators do. Both answers are
checked against the seeded data before anything is timed, so a wrong answer can never
produce a fast figure.
"""

from __future__ import annotations

import json
from typing import Any

from bench import naive
from bench.env import BenchEnv, Config
from bench.report import Report
from bench.seed import Seeded
from bench.timing import measure

SCENARIO = "1 runs page"

RUNS_PAGE = """
query RunsPage {
  runs(first: 50) {
    edges { node {
      id name status statusMessage submittedAt
      user { name }
      jobs(submissionsLimit: 1) { id status submissionNum terminationReason exitStatus }
    } }
  }
}
"""


class WrongAnswer(RuntimeError):
    """A benchmarked request returned something other than the seeded page."""


def check_page(nodes: list[dict[str, Any]], seeded: Seeded) -> None:
    """The page holds the 50 newest runs, each with its latest submission per job."""
    ids = [int(node["id"]) for node in nodes]
    if ids != seeded.page_run_ids:
        raise WrongAnswer(f"page runs {ids[:3]}... are not the 50 newest runs")
    for node in nodes:
        jobs = node["jobs"]
        numbers = {job["submissionNum"] for job in jobs}
        if len(jobs) != seeded.jobs_per_run or numbers != {seeded.depth - 1}:
            raise WrongAnswer(f"run {node['id']}: jobs {jobs} at depth {seeded.depth}")
        if seeded.depth > 1 and int(node["id"]) % 2 == 0 and node["statusMessage"] != "retrying":
            raise WrongAnswer(f"run {node['id']}: status message {node['statusMessage']!r}")


async def runql_page(env: BenchEnv, token: str, query: str = RUNS_PAGE) -> list[dict[str, Any]]:
    data = await env.gql(query, token=token)
    nodes: list[dict[str, Any]] = [edge["node"] for edge in data["runs"]["edges"]]
    return nodes


async def measure_depth(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    """runql and the naive baseline at the current depth."""
    depth = seeded.depth
    token = seeded.member.token
    check_page(await runql_page(env, token), seeded)
    timing = await measure(
        lambda: runql_page(env, token), repeats=config.repeats, warmup=config.warmup
    )
    report.timing(env.backend, SCENARIO, f"runql D={depth}", timing, key=f"runs_page.d{depth}")

    # The naive page grows with depth: at D=1000 a call takes seconds, so fewer samples,
    # and its warm-up is the shallower depths' calls. Its answer is checked after timing.
    repeats = config.repeats if depth <= 10 else max(1, config.repeats // 5)
    timing = await measure(
        lambda: naive.naive_page(env.db, seeded.member.id),
        repeats=repeats,
        warmup=config.warmup if depth == 1 else 0,
    )
    check_page(json.loads(timing.result), seeded)
    report.timing(env.backend, SCENARIO, f"naive D={depth}", timing, key=f"naive_page.d{depth}")


def summarise(report: Report, backend: str, depths: tuple[int, ...]) -> None:
    """Flatness (deepest / D=1) and runql against the naive baseline at the deepest D."""
    deepest = max(depths)
    flat = report.ratio(backend, f"runs_page.d{deepest}", "runs_page.d1")
    report.figure(backend, f"runs_page.flatness_d{deepest}_over_d1", flat, "x")
    for depth in depths:
        speedup = report.ratio(backend, f"naive_page.d{depth}", f"runs_page.d{depth}")
        report.figure(backend, f"runs_page.naive_over_runql_d{depth}", speedup, "x")
    statements = report.statements(backend, f"runs_page.d{deepest}")
    report.figure(backend, f"runs_page.statements_d{deepest}", statements, "statements")
