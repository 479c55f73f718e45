"""Run every scenario on SQLite and PostgreSQL, print the table, write bench/RESULTS.md.

Environment: ``BENCH_QUICK=1`` (fewer depths and repeats, under two minutes),
``BENCH_BACKENDS=sqlite`` (or ``postgresql``) to run one backend,
``RUNQL_BENCH_POSTGRES_URL`` for the PostgreSQL server. A quick run prints its figures
but leaves ``bench/RESULTS.md`` alone (it holds the full run's figures).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text

from bench import (
    all_projects,
    bulk_restart,
    bulk_stop,
    dstack_floors,
    dstack_shape,
    entities,
    event_latency,
    events_cost,
    graphql_floor,
    heavy_fields,
    pipeline,
    raw_floor,
    runner_e2e,
    runs_page,
    tracing_cost,
)
from bench.env import Config, Unavailable, bench_env
from bench.report import Report, machine_description
from bench.seed import deepen, seed_runs
from bench.timing import watch_bytes
from runql.schema import build_schema

RESULTS = Path(__file__).with_name("RESULTS.md")


async def read_path(backend: str, config: Config, report: Report) -> str | None:
    """Scenarios 1-4 on one seeded database; returns the server version."""
    async with bench_env(backend) as env:
        watch_bytes(env.db.engine)
        raw_floor.watch_statements(env)
        async with env.db.read() as session:
            version = str(
                await session.scalar(
                    text(
                        "SELECT sqlite_version()" if backend == "sqlite" else "SHOW server_version"
                    )
                )
            )
        started = time.perf_counter()
        seeded = await seed_runs(env.db)
        await env.analyze()
        print(
            f"  {backend}: seeded 1,000 runs in {time.perf_counter() - started:.1f} s", flush=True
        )
        for depth in config.depths:
            started = time.perf_counter()
            added = await deepen(env.db, seeded, depth)
            await env.analyze()
            if added:
                print(f"  {backend}: D={depth}: +{added:,} submissions in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            if depth == 1:  # first: they also warm the process up for scenario 1
                await heavy_fields.measure_heavy(env, seeded, config, report)
                await all_projects.measure_all_projects(env, seeded, config, report)
                await tracing_cost.measure_tracing_cost(env, seeded, config, report)
            await runs_page.measure_depth(env, seeded, config, report)
            await raw_floor.measure_floor(env, seeded, config, report)
            await graphql_floor.measure_graphql_floor(env, seeded, config, report)
        runs_page.summarise(report, backend, config.depths)
        if has_field("Mutation", "stopRuns"):
            await bulk_stop.measure_bulk_stop(env, seeded, config, report)
        else:
            report.skip(backend, bulk_stop.SCENARIO, "the schema has no stopRuns mutation")
        if has_field("Mutation", "restartRuns"):
            await bulk_restart.measure_bulk_restart(
                env, seeded.member, seeded.project_ids[0], config, report
            )
        else:
            report.skip(backend, bulk_restart.SCENARIO, "the schema has no restartRuns mutation")
        if has_field("Query", "_entities"):
            await entities.measure_entities(env, seeded, config, report)
        else:
            report.skip(backend, entities.SCENARIO, "the schema has no _entities field")
        return version


def has_field(type_name: str, field: str) -> bool:
    """Whether runql's schema has ``type_name.field`` (scenarios wait for their API)."""
    graphql_type = build_schema()._schema.get_type(type_name)
    return field in getattr(graphql_type, "fields", {})


async def run_backend(backend: str, config: Config, report: Report) -> str | None:
    print(f"\n== {backend} ==", flush=True)
    try:
        version = await read_path(backend, config, report)
        await dstack_shape.measure_dstack_shape(backend, config, report)
        await dstack_floors.measure_dstack_floors(backend, config, report)
        if has_field("Mutation", "claimJobs") and has_field("Mutation", "completeJobs"):
            await pipeline.measure_pipeline(backend, config, report)
            await events_cost.measure_events_cost(backend, config, report)
        else:
            report.skip(backend, pipeline.SCENARIO, "the schema has no claimJobs/completeJobs")
        await runner_e2e.measure_runner_e2e(backend, config, report)
        await event_latency.measure_event_latency(backend, config, report)
        return version
    except Unavailable as exc:
        print(f"  {backend}: skipped: {exc}", flush=True)
        report.skipped.append(f"{backend}: skipped: {exc}")
        return None


async def main_async() -> int:
    config = Config.from_env()
    report = Report(quick=config.quick)
    mode = "quick" if config.quick else "full"
    print(f"runql bench ({mode}): depths {config.depths}, {config.repeats} repeats", flush=True)
    started = time.perf_counter()
    postgres_version = None
    for backend in config.backends:
        version = await run_backend(backend, config, report)
        if backend == "postgresql":
            postgres_version = version
    report.print_summary()
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s")
    if config.quick:
        print(f"quick run: {RESULTS.name} left unchanged (run `make bench` to refresh it)")
    else:
        report.write_markdown(RESULTS, machine_description(postgres_version))
        print(f"wrote {RESULTS}")
    return 0


def main() -> int:
    return asyncio.run(main_async())
