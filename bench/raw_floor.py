"""Scenario 2: the raw SQL floor of the runs page.

The statements runql issues for one page (token lookup included) are captured with
their bound parameters as the driver received them, then replayed on a raw driver
connection (asyncpg / aiosqlite, no SQLAlchemy, no GraphQL) and the rows serialised to
JSON. That is the least any service could do to answer the same request with the same
SQL; runql's latency is reported as a ratio of it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.runs_page import RUNS_PAGE, runql_page
from bench.seed import Seeded
from bench.timing import measure

SCENARIO = "2 raw SQL floor"

Statement = tuple[str, tuple[Any, ...]]
_captures: contextvars.ContextVar[list[Statement] | None] = contextvars.ContextVar(
    "bench_captures", default=None
)


def _before_execute(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
    captured = _captures.get()
    if captured is not None and statement not in ("BEGIN", "BEGIN IMMEDIATE"):
        captured.append((statement, tuple(parameters or ())))


def watch_statements(env: BenchEnv) -> None:
    event.listen(env.db.engine.sync_engine, "before_cursor_execute", _before_execute)


@contextlib.contextmanager
def capture() -> Iterator[list[Statement]]:
    captured: list[Statement] = []
    token = _captures.set(captured)
    try:
        yield captured
    finally:
        _captures.reset(token)


@contextlib.asynccontextmanager
async def raw_connection(env: BenchEnv) -> AsyncIterator[Any]:
    url = make_url(env.url)
    if env.backend == "sqlite":
        conn = await aiosqlite.connect(str(url.database))
        try:
            yield conn
        finally:
            await conn.close()
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pg = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        yield pg
    finally:
        await pg.close()


async def replay(env: BenchEnv, conn: Any, statements: list[Statement]) -> str:
    results: list[list[Any]] = []
    if env.backend == "sqlite":
        for sql, params in statements:
            async with conn.execute(sql, params) as cursor:
                results.append(list(await cursor.fetchall()))
    else:
        for sql, params in statements:
            results.append([tuple(record) for record in await conn.fetch(sql, *params)])
    return json.dumps(results, default=str)


async def measure_floor(env: BenchEnv, seeded: Seeded, config: Config, report: Report) -> None:
    depth = seeded.depth
    with capture() as statements:
        await runql_page(env, seeded.member.token, RUNS_PAGE)
    async with raw_connection(env) as conn:
        timing = await measure(
            lambda: replay(env, conn, statements), repeats=config.repeats, warmup=config.warmup
        )
    timing.statements = len(statements)
    report.timing(env.backend, SCENARIO, f"floor D={depth}", timing, key=f"raw_floor.d{depth}")
    ratio = report.ratio(env.backend, f"runs_page.d{depth}", f"raw_floor.d{depth}")
    report.figure(env.backend, f"raw_floor.runql_over_floor_d{depth}", ratio, "x")
