"""Scenario 10: real ``runql runner`` processes run a 3,001-job pipeline of real processes.

``runql serve`` on a fresh database; 4 ``runql runner`` processes x 8 slots (its
subprocesses, each with its own journal); the run is ``setup -> a-0..a-1499 ->
b-0..b-1499`` (each ``b-i`` waits for ``a-i``) and every job's ``spec.cmd`` is
``["true"]``: a real fork and exec, a log file pair and a journal entry per job. What is
measured is the whole path a job takes with runql: claim, start, exit, journal,
completion, unblocking downstream, the next claim.

Reported (from the server's own clock, read back over GraphQL after the run):

* jobs/s: jobs over the time from ``submittedAt`` to the run's ``finishedAt``;
* requests per job: every request the runners sent (claims, cycles, renewals, idle
  claims) over the jobs (each runner logs its count when it stops);
* the gap between an upstream job's completion and its downstream job's start:
  ``startedAt(a-i) - finishedAt(setup)`` and ``startedAt(b-i) - finishedAt(a-i)``,
  p50 and p99. Claims take the oldest ready jobs first, so a ``b-i`` made ready early
  waits behind the ``a-j`` still queued: this gap includes that queueing, and shrinks
  only as throughput grows;
* the spawn floor: the same number of ``true`` jobs spawned by RUNNERS plain Python
  processes with SLOTS children each and a log file pair per job, no runql, no server
  (:data:`FLOOR_SCRIPT`, run after the pipeline): what this machine's two cores allow
  for process creation alone, so ``jobs/s`` reads as a share of it;
* the refill gap, which isolates the runner's reaction: from each job's completion to
  the next job start on the same runner (p50 and p99). The runner reports a completion
  and claims for the freed slot in one request, so this is about one completion's
  transaction, not a polling interval.

Idle runners wait on a ``jobsReady`` subscription (polling with back-off, 50 ms to 2 s,
only while it is down). ``BENCH_QUICK=1`` uses a 301-job run.
Call: ``await runner_e2e.measure_runner_e2e(backend, config, report)``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.env import Config, database_url
from bench.pipeline import pipeline_jobs, server
from bench.report import Report
from bench.seed import create_bench_user
from runql.db.accounts import create_project
from runql.db.engine import Database
from runql.db.enums import MemberRole

SCENARIO = "10 runner e2e"
RUNNERS = 4
SLOTS = 8
PROJECT = "e2e"

SUBMIT = "mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"
STATUS = "query($id: ID!) { run(id: $id) { status } }"
TIMES = """
query($id: ID!) {
  run(id: $id) {
    status submittedAt finishedAt
    jobs { name status runnerName startedAt finishedAt }
  }
}
"""


async def _seed(url: str) -> str:
    db = Database(url)
    try:
        user = await create_bench_user(db, "bench-e2e")
        async with db.write() as session:
            await create_project(session, PROJECT, [(user.name, MemberRole.USER)])
    finally:
        await db.dispose()
    return user.token


def _start_runners(base_url: str, token: str, directory: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "RUNQL_URL": base_url, "RUNQL_TOKEN": token}
    processes = []
    for i in range(RUNNERS):
        log = (directory / f"runner-{i}.log").open("wb")
        command = [sys.executable, "-m", "runql.cli", "runner", "--name", f"e2e-{i}",
                   "--slots", str(SLOTS), "--project", PROJECT,
                   "--state-dir", str(directory / f"state-{i}")]  # fmt: skip
        processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return processes


def _events(directory: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(directory.glob("runner-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == event:
                    found.append(entry)
    return found


async def _gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
    if body.get("errors"):
        raise RuntimeError(f"request failed: {body['errors']}")
    return body["data"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(stamp: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(stamp)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def gaps_ms(jobs: list[dict[str, Any]]) -> list[float]:
    """Per downstream job: its start minus its upstream job's finish, in ms."""
    finished = {j["name"]: _time(j["finishedAt"]) for j in jobs}
    out = []
    for job in jobs:
        name = job["name"]
        upstream = (
            "setup" if name.startswith("a-") else f"a-{name[2:]}" if name.startswith("b-") else None
        )
        if upstream is not None:
            out.append((_time(job["startedAt"]) - finished[upstream]).total_seconds() * 1000)
    return out


def refill_gaps_ms(jobs: list[dict[str, Any]]) -> list[float]:
    """Per completion: the next job start on the same runner minus the completion, in ms
    (completions after the runner's last start are left out)."""
    by_runner: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by_runner.setdefault(job["runnerName"], []).append(job)
    out = []
    for runner_jobs in by_runner.values():
        starts = sorted(_time(j["startedAt"]) for j in runner_jobs)
        for job in runner_jobs:
            finished = _time(job["finishedAt"])
            index = bisect.bisect_left(starts, finished)
            if index < len(starts):
                out.append((starts[index] - finished).total_seconds() * 1000)
    return out


async def drive(base_url: str, token: str, width: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="runql-e2e-") as tmp:
        directory = Path(tmp)
        runners = _start_runners(base_url, token, directory)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http:
                deadline = time.monotonic() + 60
                while len(_events(directory, "runner.started")) < RUNNERS:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in runners):
                        raise RuntimeError("runql runner did not start")
                    await asyncio.sleep(0.05)
                jobs = [{**job, "spec": {"cmd": ["true"]}} for job in pipeline_jobs(width)]
                data = await _gql(http, SUBMIT, {"input": {"project": PROJECT, "jobs": jobs}})
                run_id = data["submitRun"]["run"]["id"]
                deadline = time.monotonic() + 600
                while (await _gql(http, STATUS, {"id": run_id}))["run"]["status"] != "DONE":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the e2e pipeline did not finish within 600 s")
                    await asyncio.sleep(0.05)
                run = (await _gql(http, TIMES, {"id": run_id}))["run"]
            for process in runners:
                process.send_signal(signal.SIGTERM)
            for process in runners:
                process.wait(timeout=60)
        finally:
            for process in runners:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        stopped = _events(directory, "runner.stopped")
    if len(stopped) != RUNNERS or any(s["exit"] != 0 for s in stopped):
        raise RuntimeError(f"runners did not stop cleanly: {stopped}")
    jobs = run["jobs"]
    if len(jobs) != 2 * width + 1 or any(j["status"] != "DONE" for j in jobs):
        raise RuntimeError("the e2e pipeline did not end with every job DONE")
    seconds = (_time(run["finishedAt"]) - _time(run["submittedAt"])).total_seconds()
    gaps = gaps_ms(jobs)
    refills = refill_gaps_ms(jobs)
    requests = sum(int(s["requests"]) for s in stopped)
    return {
        "jobs": len(jobs),
        "seconds": seconds,
        "jobs_per_s": len(jobs) / seconds,
        "requests_per_job": requests / len(jobs),
        "gap_p50_ms": _percentile(gaps, 0.5),
        "gap_p99_ms": _percentile(gaps, 0.99),
        "refill_p50_ms": _percentile(refills, 0.5),
        "refill_p99_ms": _percentile(refills, 0.99),
    }


#: The floor: what RUNNERS plain Python processes get through the same jobs with SLOTS
#: children each, with no runql at all: spawn ``true`` with stdout and stderr to a file
#: per job, reap, spawn the next. ``argv[1]``: jobs; ``argv[2]``: slots; ``argv[3]``: dir.
FLOOR_SCRIPT = """
import os, subprocess, sys
jobs, slots, directory = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
running, started = {}, 0
while started < jobs or running:
    while started < jobs and len(running) < slots:
        path = os.path.join(directory, f"{os.getpid()}-{started}")
        with open(path + ".out", "wb") as out, open(path + ".err", "wb") as err:
            child = subprocess.Popen(["true"], stdout=out, stderr=err)
        running[child.pid] = child
        started += 1
    pid, _ = os.wait()
    running.pop(pid, None)
"""


def spawn_floor(jobs: int) -> float:
    """Jobs per second of :data:`FLOOR_SCRIPT` in RUNNERS processes (``jobs`` in all)."""
    with tempfile.TemporaryDirectory(prefix="runql-floor-") as tmp:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", FLOOR_SCRIPT, str(jobs // RUNNERS), str(SLOTS), tmp]
            )
            for _ in range(RUNNERS)
        ]
        for process in processes:
            if process.wait() != 0:
                raise RuntimeError("the spawn floor failed")
        return RUNNERS * (jobs // RUNNERS) / (time.perf_counter() - started)


async def measure_runner_e2e(backend: str, config: Config, report: Report) -> None:
    width = 150 if config.quick else 1500
    async with database_url(backend) as url:
        token = await _seed(url)
        async with server(url) as base_url:
            outcome = await drive(base_url, token, width)
    floor = spawn_floor(2 * width + 1)
    report.row(
        backend,
        SCENARIO,
        f"{RUNNERS} runners x {SLOTS} slots, `true` jobs",
        f"{outcome['jobs_per_s']:,.0f} jobs/s; {outcome['jobs']:,.0f} jobs in "
        f"{outcome['seconds']:.1f} s, {outcome['requests_per_job']:.2f} requests/job, "
        f"upstream done -> downstream started p50 {outcome['gap_p50_ms']:.0f} ms, "
        f"p99 {outcome['gap_p99_ms']:.0f} ms; completion -> next start on the runner "
        f"p50 {outcome['refill_p50_ms']:.1f} ms, p99 {outcome['refill_p99_ms']:.1f} ms; "
        f"spawn floor (no runql: {RUNNERS} processes x {SLOTS} children spawning `true`) "
        f"{floor:,.0f} jobs/s, runql at {outcome['jobs_per_s'] / floor:.0%} of it",
    )
    report.figure(backend, "runner_e2e.spawn_floor_jobs_per_s", floor, "jobs/s")
    report.figure(backend, "runner_e2e.share_of_spawn_floor", outcome["jobs_per_s"] / floor, "x")
    report.figure(backend, "runner_e2e.jobs_per_s", outcome["jobs_per_s"], "jobs/s")
    report.figure(backend, "runner_e2e.requests_per_job", outcome["requests_per_job"], "req/job")
    report.figure(backend, "runner_e2e.gap_p50_ms", outcome["gap_p50_ms"], "ms")
    report.figure(backend, "runner_e2e.gap_p99_ms", outcome["gap_p99_ms"], "ms")
    report.figure(backend, "runner_e2e.refill_p50_ms", outcome["refill_p50_ms"], "ms")
    report.figure(backend, "runner_e2e.refill_p99_ms", outcome["refill_p99_ms"], "ms")
