"""Scenario 6: a 3,001-job three-stage pipeline driven by runners over real HTTP.

runql serves from its own process (``runql serve``, uvicorn on loopback) on a fresh
database, as in production; the bench process plays 8 runners sharing one event loop.
The run is ``setup -> a-0..a-1499 -> b-0..b-1499`` (each ``b-i`` waits for ``a-i``).
Jobs do no work, so what is measured is the orchestrator: claiming, completing,
unblocking downstream jobs and rolling up the run's status.

* batched: each runner claims up to 50 ready jobs per ``claimJobs`` and reports them all
  with one ``completeJobs``;
* cycle: the same batches, but a runner reports its finished jobs and claims the next ones
  in one document (``completeJobs`` then ``claimJobs``, the loop of docs/runner.md): one
  request per batch instead of two;
* one per request: each runner claims one job and completes it with its own request.

A runner that finds nothing ready polls again after 5 ms (in a real fleet it would wait
longer, which only lowers throughput). The clock runs from the moment ``submitRun`` has
answered until every job is DONE (the run's final status is checked): it measures the
runner hot path, claims and completions; the submission of the 3,001-job run is timed on
its own (``pipeline.*_submit_ms``). The one-per-request mode is slow enough that it runs
only until its first few hundred jobs are done; its rate is measured the same way.
``BENCH_QUICK=1`` uses a 301-job run. Reported per mode: jobs per second, requests sent
and requests per job; and the ratio of the batched and one-per-request throughput.

The runners speak HTTP/1.1 over one keep-alive connection each with a few lines of asyncio
(``bench.http_client.Client``) rather than httpx: the bench shares this machine's cores
with the server, and httpx cost several ms of CPU per request, about as much as the
server's own work on a 50-job request. The requests are the same (real HTTP over
loopback to ``runql serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from bench.env import Config, database_url
from bench.http_client import Client
from bench.report import Report
from bench.seed import create_bench_user
from runql.db.accounts import create_project
from runql.db.engine import Database
from runql.db.enums import MemberRole

SCENARIO = "6 pipeline"
RUNNERS = 8
BATCH = 50
POLL_SECONDS = 0.005

SUBMIT = """
mutation Submit($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }
"""
CLAIM = """
mutation Claim($runner: String!, $limit: Int!) {
  claimJobs(input: { runnerName: $runner, limit: $limit, project: "pipeline" }) {
    claims { claimToken job { id } }
  }
}
"""
COMPLETE = """
mutation Complete($completions: [CompletionInput!]!) {
  completeJobs(input: { completions: $completions }) { results { jobId error { code message } } }
}
"""
CYCLE = """
mutation Cycle($done: [CompletionInput!]!, $runner: String!, $limit: Int!) {
  completeJobs(input: { completions: $done }) { results { jobId error { code message } } }
  claimJobs(input: { runnerName: $runner, limit: $limit, project: "pipeline" }) {
    claims { claimToken job { id } }
  }
}
"""
RUN_STATUS = "query Status($id: ID!) { run(id: $id) { status jobCounts { done total } } }"


def pipeline_jobs(width: int) -> list[dict[str, Any]]:
    """``setup``, then ``width`` jobs after it, then one job after each of those."""
    jobs: list[dict[str, Any]] = [{"name": "setup"}]
    jobs += [{"name": f"a-{i}", "dependsOn": ["setup"]} for i in range(width)]
    jobs += [{"name": f"b-{i}", "dependsOn": [f"a-{i}"]} for i in range(width)]
    return jobs


@dataclass
class Outcome:
    jobs: int
    seconds: float
    requests: int
    submit_seconds: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds

    @property
    def requests_per_job(self) -> float:
        return self.requests / self.jobs


def _completions(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"jobId": c["job"]["id"], "claimToken": c["claimToken"], "status": "DONE"} for c in claims
    ]


def _check(results: list[dict[str, Any]]) -> None:
    errors = [r for r in results if r["error"] is not None]
    if errors:
        raise RuntimeError(f"completions refused: {errors[:3]}")


async def _runner(client: Client, name: str, limit: int, state: dict[str, int]) -> None:
    """Claim, then complete what was claimed: two requests per batch."""
    while state["done"] < state["target"]:
        data = await client.gql(CLAIM, {"runner": name, "limit": limit})
        claims = data["claimJobs"]["claims"]
        if not claims:
            await asyncio.sleep(POLL_SECONDS)
            continue
        completions = _completions(claims)
        data = await client.gql(COMPLETE, {"completions": completions})
        _check(data["completeJobs"]["results"])
        state["done"] += len(completions)


async def _cycling_runner(client: Client, name: str, limit: int, state: dict[str, int]) -> None:
    """Report the last batch and claim the next in one document: one request per batch."""
    done: list[dict[str, Any]] = []
    while state["done"] < state["target"] or done:
        if done:
            data = await client.gql(CYCLE, {"done": done, "runner": name, "limit": limit})
            _check(data["completeJobs"]["results"])
            state["done"] += len(done)
        else:
            data = await client.gql(CLAIM, {"runner": name, "limit": limit})
        done = _completions(data["claimJobs"]["claims"])
        if not done and state["done"] < state["target"]:
            await asyncio.sleep(POLL_SECONDS)


async def drive(
    base_url: str,
    token: str,
    width: int,
    limit: int,
    stop_after: int | None = None,
    *,
    cycle: bool = False,
    name: str | None = None,
) -> Outcome:
    """Submit the pipeline and run it with ``RUNNERS`` runners, to completion or until
    ``stop_after`` jobs are done (the run is then left unfinished). ``cycle``: runners
    send each completion and the next claim in one document. ``name``: the run's (unique
    in the project)."""
    jobs = pipeline_jobs(width)
    clients = [Client(base_url, token) for _ in range(RUNNERS)]
    try:
        target = len(jobs) if stop_after is None else min(stop_after, len(jobs))
        state = {"done": 0, "target": target}
        submitted = time.perf_counter()
        name = name or f"pipeline-{limit}{'-cycle' if cycle else ''}"
        data = await clients[0].gql(
            SUBMIT, {"input": {"project": "pipeline", "jobs": jobs, "name": name}}
        )
        run_id = data["submitRun"]["run"]["id"]
        started = time.perf_counter()
        runner = _cycling_runner if cycle else _runner
        await asyncio.gather(
            *(runner(c, f"runner-{i}", limit, state) for i, c in enumerate(clients))
        )
        seconds = time.perf_counter() - started
        final = (await clients[0].gql(RUN_STATUS, {"id": run_id}))["run"]
        finished = target == len(jobs)
        if final["jobCounts"]["done"] != state["done"] or (finished and final["status"] != "DONE"):
            raise RuntimeError(f"pipeline run at {final}, expected {state['done']} jobs DONE")
        requests = sum(c.requests for c in clients) - 2  # not the submission, not the check
        return Outcome(state["done"], seconds, requests, started - submitted)
    finally:
        for client in clients:
            await client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server(url: str, environ: dict[str, str] | None = None) -> AsyncIterator[str]:
    """``runql serve`` in a subprocess on a free loopback port; yields its base URL.
    ``environ``: more ``RUNQL_*`` settings for the server."""
    async with serving_process(url, environ) as (base_url, _):
        yield base_url


@contextlib.asynccontextmanager
async def serving_process(
    url: str, environ: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`server`, also yielding the ``runql serve`` process (to read its CPU time)."""
    port = _free_port()
    env = {**os.environ, "RUNQL_DATABASE_URL": url, "RUNQL_LOG_LEVEL": "WARNING", **(environ or {})}
    command = [sys.executable, "-m", "runql.cli", "serve", "--port", str(port)]
    profile = os.environ.get("BENCH_SERVER_PROFILE")
    if profile:  # cProfile the server: python -m pstats <file>
        command[1:1] = ["-m", "cProfile", "-o", profile]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url) as http:
            for _ in range(600):  # a loaded machine imports slowly
                if process.poll() is not None:
                    raise RuntimeError(f"runql serve exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("runql serve did not answer /healthz within 30 s")
        yield base_url, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _seed(url: str) -> str:
    db = Database(url)
    try:
        user = await create_bench_user(db, "bench-runner")
        async with db.write() as session:
            await create_project(session, "pipeline", [(user.name, MemberRole.USER)])
    finally:
        await db.dispose()
    return user.token


async def measure_pipeline(backend: str, config: Config, report: Report) -> None:
    """Batched over the whole run; one-per-request until ``single_jobs`` are done (it is
    slow enough that running all 3,001 jobs would dominate the bench's time)."""
    width = 150 if config.quick else 1500
    single_jobs = 50 if config.quick else 400
    async with database_url(backend) as url:
        token = await _seed(url)
        async with server(url) as base_url:
            for mode, limit, stop_after, cycle, key in (
                ("batched (claim 50, complete batch)", BATCH, None, False, "pipeline.batched"),
                ("cycle (complete + claim 50, one doc)", BATCH, None, True, "pipeline.cycle"),
                (
                    f"one job per request (first {single_jobs})",
                    1,
                    single_jobs,
                    False,
                    "pipeline.single",
                ),
            ):
                outcome = await drive(base_url, token, width, limit, stop_after, cycle=cycle)
                extra = (
                    f"{outcome.jobs:,} of {2 * width + 1:,} jobs in {outcome.seconds:.2f} s "
                    f"after a {outcome.submit_seconds * 1000:,.0f} ms submitRun, "
                    f"{outcome.requests:,} requests ({outcome.requests_per_job:.3f} per job), "
                    f"{RUNNERS} runners"
                )
                report.row(backend, SCENARIO, mode, f"{outcome.jobs_per_s:,.0f} jobs/s; {extra}")
                report.figure(backend, f"{key}_jobs_per_s", outcome.jobs_per_s, "jobs/s")
                report.figure(backend, f"{key}_requests", outcome.requests, "requests")
                report.figure(
                    backend, f"{key}_requests_per_job", outcome.requests_per_job, "requests/job"
                )
                report.figure(backend, f"{key}_submit_ms", outcome.submit_seconds * 1000, "ms")
    batched = report.value(f"{backend}.pipeline.batched_jobs_per_s")
    single = report.value(f"{backend}.pipeline.single_jobs_per_s")
    if batched and single:
        report.figure(backend, "pipeline.speedup", batched / single, "x")
