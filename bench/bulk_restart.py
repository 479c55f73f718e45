"""Scenario 13: restart 500 failed runs with one ``restartRuns`` call vs 500 single-run
calls.

Each round seeds 1,000 fresh FAILED runs of 4 jobs (step-0 -> step-1, step-2, step-3:
step-0 failed for good, the others aborted): 500 are restarted by one request, the other
500 by one request per run (``BENCH_QUICK=1``: 100 and 100), sent 8 at a time as a
browser would. Every answer is checked (each run restarted: ``SUBMITTED``, attempt 1, no
item error). Reported: wall time of each mode (median over rounds), statements, and the
ratio.

Runnable alone: ``python -m bench.bulk_restart`` (``BENCH_BACKENDS``, ``BENCH_QUICK`` as
for ``make bench``); ``make bench`` runs it after scenario 5 on the same database.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.bulk_vs_single import measure_bulk_vs_single
from bench.env import BenchEnv, Config, Unavailable, bench_env
from bench.report import Report
from bench.seed import (
    BenchUser,
    create_bench_user,
    create_projects,
    insert_rows,
    insert_year_old_runs,
    job_row,
)
from runql.db.engine import Database
from runql.db.enums import JobStatus, RunStatus, TerminationReason
from runql.db.models import Job, JobDependency

SCENARIO = "13 bulk restart"
RUNS = 500
JOBS_PER_RUN = 4

RESTART = """
mutation Restart($ids: [ID!]!) {
  restartRuns(input: { runIds: $ids }) {
    results { runId run { id status attempt } error { code message } }
  }
}
"""


async def seed_failed_runs(
    db: Database, *, project_id: int, user_id: int, prefix: str, count: int
) -> list[int]:
    """``count`` FAILED runs (light spec): step-0 failed for good, the three jobs waiting
    for it aborted, submitted a year ago so they never reach the first runs page.
    Returns their ids in creation order."""
    run_ids, start = await insert_year_old_runs(
        db,
        project_id=project_id,
        user_id=user_id,
        prefix=prefix,
        count=count,
        jobs_per_run=JOBS_PER_RUN,
        status=RunStatus.FAILED,
        termination_reason=TerminationReason.JOB_FAILED,
    )
    jobs = []
    for run_id in run_ids:
        jobs.append(job_row(run_id, 0, 0, JobStatus.FAILED, start))
        for j in range(1, JOBS_PER_RUN):
            aborted = job_row(run_id, j, 0, JobStatus.SUBMITTED, start)
            aborted.update(
                status=JobStatus.ABORTED,
                termination_reason=TerminationReason.UPSTREAM_FAILED.value,
                runner_name=None,
                finished_at=start,
            )
            jobs.append(aborted)
    await insert_rows(db, Job, jobs)
    await insert_rows(
        db,
        JobDependency,
        [
            {"run_id": run_id, "job_num": j, "depends_on_job_num": 0}
            for run_id in run_ids
            for j in range(1, JOBS_PER_RUN)
        ],
    )
    return run_ids


def _check(results: list[dict[str, Any]], expected: int) -> None:
    if len(results) != expected:
        raise RuntimeError(f"restartRuns answered {len(results)} items for {expected} runs")
    for item in results:
        run = item["run"]
        if (
            item["error"] is not None
            or run is None
            or (run["status"], run["attempt"])
            != (
                "SUBMITTED",
                1,
            )
        ):
            raise RuntimeError(f"restartRuns item not restarted: {item}")


async def _restart(env: BenchEnv, token: str, ids: list[int]) -> None:
    data = await env.gql(RESTART, {"ids": [str(i) for i in ids]}, token=token)
    _check(data["restartRuns"]["results"], len(ids))


async def measure_bulk_restart(
    env: BenchEnv, member: BenchUser, project_id: int, config: Config, report: Report
) -> None:
    async def seed(round_num: int, count: int) -> list[int]:
        return await seed_failed_runs(
            env.db,
            project_id=project_id,
            user_id=member.id,
            prefix=f"restart-{round_num}",
            count=count,
        )

    await measure_bulk_vs_single(
        report,
        backend=env.backend,
        scenario=SCENARIO,
        mutation="restartRuns",
        key="bulk_restart",
        runs=100 if config.quick else RUNS,
        rounds=1 if config.quick else 3,
        seed=seed,
        call=lambda ids: _restart(env, member.token, ids),
    )


async def _alone(config: Config, report: Report) -> None:
    for backend in config.backends:
        print(f"\n== {backend} ==", flush=True)
        try:
            async with bench_env(backend) as env:
                member = await create_bench_user(env.db, "restarter")
                (project_id,) = await create_projects(env.db, "restart", 1, [member])
                await measure_bulk_restart(env, member, project_id, config, report)
        except Unavailable as exc:
            print(f"  {backend}: skipped: {exc}", flush=True)
            report.skipped.append(f"{backend}: skipped: {exc}")


def main() -> int:
    config = Config.from_env()
    report = Report(quick=config.quick)
    asyncio.run(_alone(config, report))
    print("\n" + report.table())  # this scenario's rows and figures, not every target
    for line in report.skipped:
        print(f"  {line}")
    for figure in report.figures:
        print(figure.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
