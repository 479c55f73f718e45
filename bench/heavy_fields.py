"""Scenario 3: heavy fields are read only when asked for.

The runs page with and without ``spec`` and ``summary`` (~20 KB + ~5 KB per run): latency,
statements, and the bytes the database driver returned for the request.
"""

from __future__ import annotations

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.runs_page import RUNS_PAGE, runql_page
from bench.seed import Seeded
from bench.timing import measure

SCENARIO = "3 heavy fields"

WITH_HEAVY = RUNS_PAGE.replace("submittedAt\n", "submittedAt spec summary\n")


async def measure_heavy(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    token = seeded.member.token
    nodes = await runql_page(env, token, WITH_HEAVY)
    if not all(isinstance(n["spec"], dict) and isinstance(n["summary"], dict) for n in nodes):
        raise RuntimeError("heavy fields did not come back as JSON objects")
    for label, query, key in (
        ("without spec/summary", RUNS_PAGE, "heavy.off"),
        ("with spec/summary", WITH_HEAVY, "heavy.on"),
    ):
        timing = await measure(
            lambda query=query: runql_page(env, token, query),  # type: ignore[misc]
            repeats=config.repeats,
            warmup=config.warmup,
        )
        extra = f"{timing.bytes_read / 1024:.0f} KiB read from the database"
        report.timing(env.backend, SCENARIO, label, timing, key=key, extra=extra)
        report.figure(env.backend, f"{key}.bytes_read", timing.bytes_read, "bytes")
