"""Scenario 8b: dstack's runs-list shape against its floors, in one table.

The shape of scenario 8 (200 runs x 1 job x 100 submissions, page of 50, latest
submission), one ``runql serve`` worker, one keep-alive client (``bench.http_client``).
Measured in interleaved rounds (each round takes a few requests of every case in turn,
so a noisy neighbour on the shared machine hits every case alike):

* ``{ __typename }`` over HTTP: the floor of a request (HTTP, the token lookup, the view,
  strawberry's pipeline with cached parse and validation), with no field work;
* the page's GraphQL floor: the same document executed in this process from memory
  (scenario 2b's method: real schema, context and loaders; every query function answers
  what a real execution returned), no HTTP and no SQL;
* the page over HTTP with its text in every request (APQ off: what a client without
  persisted queries sends);
* the page over HTTP by hash alone (APQ on: ``extensions.persistedQuery``, registered
  once before the clock starts).

The p50 by hash alone is the figure of the "dstack shape p50 <= 8 ms" target of this
scenario (``dstack.apq_p50_ms``). ``BENCH_PYSPY=path``: also record the server with
py-spy (``pip install py-spy``) under the hash-only load and print the summary
(``bench/profile_summary.py``).

``python -m bench.dstack_floors`` runs this scenario alone (``BENCH_BACKENDS``,
``BENCH_QUICK`` as for the whole bench) and prints its rows; it never writes RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.dstack_shape import DSTACK_PAGE, seed_shape
from bench.env import Config, database_url
from bench.graphql_floor import MemoryDatabase, from_memory, recording
from bench.http_client import Client
from bench.pipeline import serving_process
from bench.report import Report
from bench.runs_page import WrongAnswer, check_page
from bench.seed import Seeded
from runql.db.engine import Database
from runql.resolvers.auth import authenticate
from runql.resolvers.context import Context
from runql.schema import build_schema
from runql.settings import Settings
from runql.web.persisted import sha256_hex

SCENARIO = "8b dstack floors"
TYPENAME = "{ __typename }"


def _hashed(query: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}}


async def measure_dstack_floors(backend: str, config: Config, report: Report) -> None:
    rounds, per_round = (10, 10) if config.quick else (20, 25)
    async with database_url(backend) as url:
        seeded = await seed_shape(backend, url)
        floor = await _graphql_floor(url, seeded)
        async with serving_process(url, {"RUNQL_WORKERS": "1"}) as (base_url, process):
            http = Client(base_url, seeded.member.token)
            try:
                cases = await _cases(http, floor, seeded)
                for _ in range(config.warmup * 10):
                    for call in cases.values():
                        await call()
                samples: dict[str, list[float]] = {name: [] for name in cases}
                for _ in range(rounds):
                    for name, call in cases.items():
                        for _ in range(per_round):
                            start = time.perf_counter()
                            await call()
                            samples[name].append((time.perf_counter() - start) * 1000)
                profile_path = os.environ.get("BENCH_PYSPY")
                if profile_path:
                    await _profile(process.pid, profile_path, cases["page, APQ hash only"])
            finally:
                await http.close()
    for name, values in samples.items():
        p50 = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        report.row(backend, SCENARIO, name, f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, n={len(values)}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report.figure(backend, "dstack.typename_p50_ms", medians["{ __typename } over HTTP"], "ms")
    report.figure(backend, "dstack.graphql_floor_ms", medians["page, GraphQL floor"], "ms")
    report.figure(backend, "dstack.text_p50_ms", medians["page, APQ off (text)"], "ms")
    report.figure(backend, "dstack.apq_p50_ms", medians["page, APQ hash only"], "ms")


async def _cases(
    http: Client, floor: Callable[[], Awaitable[Any]], seeded: Seeded
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The measured calls, each checked once; the page's hash registered."""
    text = {"query": DSTACK_PAGE, "variables": {}}
    hashed = _hashed(DSTACK_PAGE)
    typename = {"query": TYPENAME}
    await http.post({**text, **hashed})  # registers the page's text under its hash
    for body in (text, hashed):
        data = await http.post(body)
        check_page([edge["node"] for edge in data["runs"]["edges"]], seeded)
    assert await http.post(typename) == {"__typename": "Query"}
    await floor()
    return {
        "{ __typename } over HTTP": lambda: http.post(typename),
        "page, GraphQL floor": floor,
        "page, APQ off (text)": lambda: http.post(text),
        "page, APQ hash only": lambda: http.post(hashed),
    }


async def _graphql_floor(url: str, seeded: Seeded) -> Callable[[], Awaitable[Any]]:
    """Scenario 2b's in-memory execution of the page (returns the call to time)."""
    settings = Settings(database_url=url)
    schema = build_schema(settings)
    db = Database(url)
    try:
        viewer = await authenticate(db, f"Bearer {seeded.member.token}")
        assert viewer is not None
        recorded: dict[Any, Any] = {}
        with recording(recorded):
            context = Context(db=db, settings=settings, viewer_or_none=viewer, request_id="b")
            result = await schema.execute(DSTACK_PAGE, context_value=context)
        if result.errors:
            raise WrongAnswer(f"dstack floor: recording failed: {result.errors}")
    finally:
        await db.dispose()
    memory: Any = MemoryDatabase()

    async def execute() -> str:
        with from_memory(recorded):
            context = Context(db=memory, settings=settings, viewer_or_none=viewer, request_id="b")
            result = await schema.execute(DSTACK_PAGE, context_value=context)
        if result.errors:
            raise WrongAnswer(f"dstack floor: {result.errors}")
        return json.dumps({"data": result.data})

    return execute


async def _profile(pid: int, path: str, call: Callable[[], Awaitable[Any]]) -> None:
    """py-spy records the server for 20 s under ``call`` in a loop; prints the summary."""
    from bench.profile_summary import summarise

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--duration", "20", "--rate", "250", "--gil"]
    command += ["--format", "raw", "--output", path, "--nonblocking"]
    recorder = await asyncio.create_subprocess_exec(*command)
    deadline = time.perf_counter() + 21
    while recorder.returncode is None and time.perf_counter() < deadline:
        await call()
    await recorder.wait()
    print(summarise(path), flush=True)


async def _main() -> int:
    config = Config.from_env()
    report = Report(quick=config.quick)
    for backend in config.backends:
        await measure_dstack_floors(backend, config, report)
    print("\n" + report.table())
    for figure in report.figures:
        print(figure.line())
    for target, figure_text, verdict in report.target_lines(report.backends()):
        if "apq_p50" in figure_text:
            print(f"{verdict}: {target} ({figure_text})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
