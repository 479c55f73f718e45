"""Scenario 8: dstack's runs list shape, over HTTP against ``runql serve``.

dstack's ``/api/runs/list`` (``job_submissions_limit=1``) answers a page of 50 runs, each
with its user's name, its status message and the latest submission of each job. The same
data here: 200 runs x 1 logical job x 100 submissions (the older 99 failed and retried),
the page of the 50 newest asked for with the document below, served by a real
``runql serve`` subprocess on a free loopback port (the helper scenario 6 uses) over
keep-alive connections.

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
import socket
import statistics
import time
from typing import Any

import httpx

from bench.env import Config, database_url
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


def _client(base_url: str) -> httpx.AsyncClient:
    """A keep-alive client with ``TCP_NODELAY`` (httpcore leaves Nagle's algorithm on), so
    the client's own writes never wait for a delayed ACK."""
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(base_url=base_url, timeout=60, transport=transport)


async def _request(http: httpx.AsyncClient, body: dict[str, Any], token: str) -> httpx.Response:
    response = await http.post("/graphql", json=body, headers={"authorization": f"Bearer {token}"})
    if response.status_code != 200 or b'"errors"' in response.content:
        raise RuntimeError(f"dstack shape: {response.status_code} {response.text[:300]}")
    return response


async def measure_dstack_shape(backend: str, config: Config, report: Report) -> None:
    """Seed the shape on a fresh database, serve it, time one client and then eight."""
    requests_each = 25 if config.quick else 100
    body = {"query": DSTACK_PAGE, "variables": {}}
    async with database_url(backend) as url:
        db = Database(url)
        try:
            seeded = await seed_runs(db, runs=RUNS, projects=10, jobs_per_run=1)
            page = seeded.page_run_ids
            seeded.page_run_ids = seeded.run_ids  # every run gets the deep history
            await deepen(db, seeded, DEPTH)
            seeded.page_run_ids = page[:PAGE]
            if backend == "postgresql":
                engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("VACUUM ANALYZE")
        finally:
            await db.dispose()
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
    async with _client(base_url) as http:
        response = await _request(http, body, token)
        nodes = [edge["node"] for edge in response.json()["data"]["runs"]["edges"]]
        check_page(nodes, seeded)
        for _ in range(config.warmup * 10):
            await _request(http, body, token)
        samples = []
        for _ in range(requests_one):
            start = time.perf_counter()
            await _request(http, body, token)
            samples.append((time.perf_counter() - start) * 1000)
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
    clients = [_client(base_url) for _ in range(CLIENTS)]
    try:
        for http in clients:  # open every connection before the clock starts
            await _request(http, body, token)

        async def loop(http: httpx.AsyncClient) -> None:
            for _ in range(requests_each):
                await _request(http, body, token)

        start = time.perf_counter()
        await asyncio.gather(*(loop(http) for http in clients))
        elapsed = time.perf_counter() - start
    finally:
        for http in clients:
            await http.aclose()
    return CLIENTS * requests_each / elapsed
