"""Scenario 5: stop 500 runs with one ``stopRuns`` call vs 500 single-run calls.

Each round seeds 1,000 fresh running runs (4 running jobs each): 500 are stopped by one
request, the other 500 by one request per run (``BENCH_QUICK=1``: 100 and 100), sent
8 at a time as a browser would. Every answer is checked (each run stopping or stopped,
no item error). Reported: wall time of each mode (median over rounds), statements, and
the ratio.
"""

from __future__ import annotations

from typing import Any

from bench.bulk_vs_single import measure_bulk_vs_single
from bench.env import BenchEnv, Config
from bench.report import Report
from bench.seed import Seeded, seed_active_runs

SCENARIO = "5 bulk stop"
RUNS = 500

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


async def measure_bulk_stop(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    token = seeded.member.token

    async def seed(round_num: int, count: int) -> list[int]:
        return await seed_active_runs(
            env.db,
            project_id=seeded.project_ids[0],
            user_id=seeded.member.id,
            prefix=f"stop-{round_num}",
            count=count,
        )

    await measure_bulk_vs_single(
        report,
        backend=env.backend,
        scenario=SCENARIO,
        mutation="stopRuns",
        key="bulk_stop",
        runs=100 if config.quick else RUNS,
        rounds=1 if config.quick else 3,
        seed=seed,
        call=lambda ids: _stop(env, token, ids),
    )
