"""What scenarios 5 (stopRuns) and 13 (restartRuns) measure alike: one bulk call for
``runs`` runs against one call per run (``CONCURRENCY`` in flight), on fresh runs each
round, with the SQL statements each way and the speed-up."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from bench.report import Report
from bench.timing import Timing
from runql.db.engine import record_statements

#: Calls in flight in the one-per-run case: a UI firing a request per selected row.
CONCURRENCY = 8


async def one_per_run(call: Callable[[list[int]], Awaitable[None]], ids: list[int]) -> None:
    """``call([id])`` for every id, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(run_id: int) -> None:
        async with gate:
            await call([run_id])

    await asyncio.gather(*(one(run_id) for run_id in ids))


async def measure_bulk_vs_single(
    report: Report,
    *,
    backend: str,
    scenario: str,
    mutation: str,
    key: str,
    runs: int,
    rounds: int,
    seed: Callable[[int, int], Awaitable[list[int]]],
    call: Callable[[list[int]], Awaitable[None]],
) -> None:
    """Each round: ``seed(round, 2 * runs)`` fresh runs, then ``call`` with half of them at
    once and with the other half one by one. Reports both timings and the speed-up."""
    bulk_ms: list[float] = []
    single_ms: list[float] = []
    bulk_statements = single_statements = 0
    for round_num in range(rounds):
        ids = await seed(round_num, 2 * runs)
        with record_statements() as recorder:
            started = time.perf_counter()
            await call(ids[:runs])
            bulk_ms.append((time.perf_counter() - started) * 1000)
        bulk_statements = recorder.count
        with record_statements() as recorder:
            started = time.perf_counter()
            await one_per_run(call, ids[runs:])
            single_ms.append((time.perf_counter() - started) * 1000)
        single_statements = recorder.count
    report.timing(
        backend, scenario, f"1 {mutation} x {runs} runs", Timing(bulk_ms, bulk_statements),
        key=f"{key}.bulk", extra="1 request",
    )  # fmt: skip
    report.timing(
        backend, scenario, f"{runs} {mutation} x 1 run", Timing(single_ms, single_statements),
        key=f"{key}.single", extra=f"{runs} requests, {CONCURRENCY} in flight",
    )  # fmt: skip
    speedup = statistics.median(single_ms) / statistics.median(bulk_ms)
    report.figure(backend, f"{key}.speedup", speedup, "x")
