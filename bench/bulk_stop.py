"""Scenario 5: stop 500 runs with one ``stopRuns`` call vs 500 single-run calls.

Each round seeds 1,000 fresh running runs (4 running jobs each): 500 are stopped by one
request, the other 500 by one request per run (``BENCH_QUICK=1``: 100 and 100), sent
8 at a time as a browser would. Every answer is checked (each run stopping or stopped,
no item error). Reported: wall time of each mode (median over rounds), statements, and
the ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.seed import Seeded, seed_active_runs
from bench.timing import Timing
from runql.db.engine import record_statements

SCENARIO = "5 bulk stop"
RUNS = 500
CONCURRENCY = 8

STOP = """
mutation Stop($ids: [ID!]!) {
  stopRuns(input: { runIds: $ids }) {
    results { runId run { id status } error { code message } }
  }
}
"""


def _check(results: list[dict[str, Any]], expected: int) -> None:
    if len(results) != expected:
        raise RuntimeError(f"stopRuns answered {len(results)} items for {expected} runs")
    for item in results:
        run = item["run"]
        if (
            item["error"] is not None
            or run is None
            or run["status"] not in ("TERMINATING", "TERMINATED")
        ):
            raise RuntimeError(f"stopRuns item not stopped: {item}")


async def _stop(env: BenchEnv, token: str, ids: list[int]) -> None:
    data = await env.gql(STOP, {"ids": [str(i) for i in ids]}, token=token)
    _check(data["stopRuns"]["results"], len(ids))


async def _one_per_run(env: BenchEnv, token: str, ids: list[int]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(run_id: int) -> None:
        async with gate:
            await _stop(env, token, [run_id])

    await asyncio.gather(*(one(run_id) for run_id in ids))


async def measure_bulk_stop(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    rounds = 1 if config.quick else 3
    runs = 100 if config.quick else RUNS
    token = seeded.member.token
    bulk_ms: list[float] = []
    single_ms: list[float] = []
    bulk_statements = single_statements = 0
    for round_num in range(rounds):
        ids = await seed_active_runs(
            env.db,
            project_id=seeded.project_ids[0],
            user_id=seeded.member.id,
            prefix=f"stop-{round_num}",
            count=2 * runs,
        )
        with record_statements() as recorder:
            started = time.perf_counter()
            await _stop(env, token, ids[:runs])
            bulk_ms.append((time.perf_counter() - started) * 1000)
        bulk_statements = recorder.count
        with record_statements() as recorder:
            started = time.perf_counter()
            await _one_per_run(env, token, ids[runs:])
            single_ms.append((time.perf_counter() - started) * 1000)
        single_statements = recorder.count
    report.timing(
        env.backend, SCENARIO, f"1 stopRuns x {runs} runs", Timing(bulk_ms, bulk_statements),
        key="bulk_stop.bulk", extra="1 request",
    )  # fmt: skip
    report.timing(
        env.backend, SCENARIO, f"{runs} stopRuns x 1 run", Timing(single_ms, single_statements),
        key="bulk_stop.single", extra=f"{runs} requests, {CONCURRENCY} in flight",
    )  # fmt: skip
    speedup = statistics.median(single_ms) / statistics.median(bulk_ms)
    report.figure(env.backend, "bulk_stop.speedup", speedup, "x")
