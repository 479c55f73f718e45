"""Scenario 8: dstack's runs list shape, over HTTP against ``runql serve``.

dstack's ``/api/runs/list`` (``job_submissions_limit=1``) answers a page of 50 runs, each
with its user's name, its status message and the latest submission of each job. The same
data here: 200 runs x 1 logical job x 100 submissions (the older 99 failed and retried),
the page of the 50 newest asked for with the document below, served by a real
``runql serve`` subprocess on a free loopback port (the helper scenario 6 uses) over
keep-alive connections of ``bench.http_client`` (httpx would spend several ms of the
machine's CPU per request on the client side).

Reported: the p50 latency of one client sending one request after another (one worker
process, as the issue measured it), and the throughput of 8 concurrent clients (each its
own connection) sending a fixed number of requests each, served by one worker and then
by one worker per core (``RUNQL_WORKERS``). The clients run in the bench process, so on
a small machine they share the CPU with the server: the throughput figures include that
contention.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from bench.env import Config, database_url
from bench.http_client import Client
from bench.pipeline import server
from bench.report import Report
from bench.runs_page import check_page
from bench.seed import PAGE, Seeded, deepen, seed_runs
from runql.db.engine import Database

SCENARIO = "8 dstack shape"
RUNS = 200
DEPTH = 100
CLIENTS = 8

DSTACK_PAGE = """
query DstackRuns {
  runs(first: 50) {
    edges { node {
      id name status statusMessage submittedAt
      user { name }
      jobs(submissionsLimit: 1) {
        id status submissionNum terminationReason exitStatus submittedAt
      }
    } }
  }
}
"""


async def _request(http: Client, body: dict[str, Any]) -> dict[str, Any]:
    return await http.gql(body["query"], body["variables"])


async def measure_dstack_shape(backend: str, config: Config, report: Report) -> None:
    """Seed the shape on a fresh database, serve it, time one client and then eight."""
    requests_each = 25 if config.quick else 100
    body = {"query": DSTACK_PAGE, "variables": {}}
    async with database_url(backend) as url:
        seeded = await seed_shape(backend, url)
        token = seeded.member.token
        async with server(url, {"RUNQL_WORKERS": "1"}) as base_url:
            await _one_client(backend, base_url, body, token, seeded, config, report)
            throughput = await _clients(base_url, body, token, requests_each)
        report.row(
            backend,
            SCENARIO,
            f"{CLIENTS} clients, 1 worker",
            f"{throughput:,.1f} req/s ({CLIENTS} x {requests_each} requests)",
        )
        report.figure(backend, "dstack.req_per_s_8_clients", throughput, "req/s")
        cores = os.cpu_count() or 1
        async with server(url, {"RUNQL_WORKERS": str(cores)}) as base_url:
            await _clients(base_url, body, token, config.warmup * 5)  # warm every worker up
            per_core = await _clients(base_url, body, token, requests_each)
        report.row(
            backend,
            SCENARIO,
            f"{CLIENTS} clients, {cores} workers (one per core)",
            f"{per_core:,.1f} req/s ({CLIENTS} x {requests_each} requests); "
            f"{per_core / throughput:.2f}x one worker",
        )
        report.figure(backend, "dstack.req_per_s_8_clients_per_core", per_core, "req/s")
        report.figure(backend, "dstack.workers_speedup", per_core / throughput, "x")


async def seed_shape(backend: str, url: str) -> Seeded:
    """The shape on the fresh database at ``url``: every run gets the deep history."""
    db = Database(url)
    try:
        seeded = await seed_runs(db, runs=RUNS, projects=10, jobs_per_run=1)
        page = seeded.page_run_ids
        seeded.page_run_ids = seeded.run_ids
        await deepen(db, seeded, DEPTH)
        seeded.page_run_ids = page[:PAGE]
        if backend == "postgresql":
            engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        await db.dispose()
    return seeded


async def _one_client(
    backend: str,
    base_url: str,
    body: dict[str, Any],
    token: str,
    seeded: Seeded,
    config: Config,
    report: Report,
) -> None:
    """p50/p90 of one client sending request after request (checks the page first)."""
    requests_one = 100 if config.quick else 500
    http = Client(base_url, token)
    try:
        data = await _request(http, body)
        nodes = [edge["node"] for edge in data["runs"]["edges"]]
        check_page(nodes, seeded)
        for _ in range(config.warmup * 10):
            await _request(http, body)
        samples = []
        for _ in range(requests_one):
            start = time.perf_counter()
            await _request(http, body)
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        await http.close()
    p50 = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    report.row(
        backend,
        SCENARIO,
        "1 client, 1 worker",
        f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, n={requests_one}",
    )
    report.figure(backend, "dstack.p50_ms", p50, "ms")


async def _clients(base_url: str, body: dict[str, Any], token: str, requests_each: int) -> float:
    """Requests per second of ``CLIENTS`` concurrent keep-alive clients."""
    clients = [Client(base_url, token) for _ in range(CLIENTS)]
    try:
        for http in clients:  # open every connection before the clock starts
            await _request(http, body)

        async def loop(http: Client) -> None:
            for _ in range(requests_each):
                await _request(http, body)

        start = time.perf_counter()
        await asyncio.gather(*(loop(http) for http in clients))
        elapsed = time.perf_counter() - start
    finally:
        for http in clients:
            await http.close()
    return CLIENTS * requests_each / elapsed
