"""Scenario 11: event latency from commit to delivery, with 100 WebSocket subscribers.

A fresh database, one user who is a member of project ``events``, and a real
``runql serve`` subprocess (``bench.pipeline.server``). 100 subscribers, each its own
WebSocket speaking ``graphql-transport-ws`` (``connection_init`` with the token in its
payload, then ``runEvents(project: "events")``), are opened and confirmed registered
before the clock starts: warm-up runs are submitted until every subscriber has received
one (events come in log order, so a subscriber that saw one sees every later one).

Then one client submits 1-job runs over HTTP (``bench.http_client.Client``). For each
``submitRun`` the time its HTTP answer arrived is recorded (the commit has happened by
then) and, per subscriber, the time its ``next`` message with that run's
``RUN_SUBMITTED`` arrived (matched by run id). Latency = arrival - answer. It can be
slightly negative when delivery beats the HTTP answer to the bench process: the sign is
kept. Two ways of sending:

* paced: the next run is submitted once every subscriber has its event, so each latency
  is one event's trip with nothing queued ahead of it (``events.latency_p50_ms``,
  ``events.latency_p99_ms``);
* burst: the runs are submitted back to back and the events pile up; reported are the
  deliveries per second, all subscribers together, from the first submission to the last
  delivery (``events.delivered_per_s``), and the latency under that backlog (row only).

Every subscriber must receive every measured event exactly once, in submission order,
and no error; otherwise the scenario raises (a wrong answer never produces a figure).

Served by one worker (``RUNQL_WORKERS=1``), then by one worker per core (subscribers are
spread over the workers by the kernel; figures suffixed ``_per_core``). On SQLite there
are no notifications: each process checks the log every ``RUNQL_EVENT_POLL_SECONDS``
(0.1 s), which dominates its latency; PostgreSQL wakes listeners with ``NOTIFY``.

The 100 connections live in the bench process and share the machine's cores with the
server: reading 100 sockets and timestamping each message costs the bench some CPU, so
the figures include that contention (and the bench's own event-loop lag inflates both
the answer and the arrival times). Clients are kept light: one reader task per socket
that stamps the time before parsing, and the lightweight HTTP client for mutations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.env import Config, database_url
from bench.http_client import Client
from bench.pipeline import server
from bench.report import Report
from bench.seed import create_bench_user
from runql.db.accounts import create_project
from runql.db.engine import Database
from runql.db.enums import MemberRole

SCENARIO = "11 event latency"
SUBSCRIBERS = 100
PROJECT = "events"
PROTOCOL = "graphql-transport-ws"
#: Longest wait for one event (or a burst) to reach every subscriber before failing.
WAIT_SECONDS = 120.0

WATCH = """
subscription Watch($project: String) {
  runEvents(project: $project) { cursor kind at run { id status } }
}
"""
SUBMIT = """
mutation Submit($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }
"""


@dataclass(eq=False)
class Subscriber:
    """One WebSocket with one ``runEvents`` subscription; its reader stamps each message
    on arrival (before parsing) and files ``RUN_SUBMITTED`` arrivals by run id."""

    ws: ClientConnection
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None


class Delivery:
    """What every subscriber has received, and waits on it."""

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self.subscribers = subscribers
        self.counts: dict[int, int] = {}
        self.total = 0
        self.changed = asyncio.Event()

    def record(self, sub: Subscriber, raw: str | bytes, at: float) -> None:
        message = json.loads(raw)
        payload = message.get("payload") or {}
        if message.get("type") != "next" or payload.get("errors"):
            sub.problems.append(str(message)[:300])
            self.changed.set()
            return
        event = payload["data"]["runEvents"]
        if event["kind"] != "RUN_SUBMITTED":
            sub.problems.append(f"unexpected event {event['kind']}")
            return
        run_id = int(event["run"]["id"])
        sub.arrivals.setdefault(run_id, []).append(at)
        sub.order.append(run_id)
        self.counts[run_id] = self.counts.get(run_id, 0) + 1
        self.total += 1
        self.changed.set()

    async def until(self, done: Any, what: str) -> None:
        """Until ``done()``; fails on a subscriber's error or after ``WAIT_SECONDS``."""
        deadline = time.perf_counter() + WAIT_SECONDS
        while not done():
            problems = [p for s in self.subscribers for p in s.problems]
            if problems:
                raise RuntimeError(f"subscriber failed waiting for {what}: {problems[:3]}")
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"{what}: not delivered to every subscriber in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


async def _read(sub: Subscriber, delivery: Delivery) -> None:
    clock = time.perf_counter
    with contextlib.suppress(Exception):
        async for raw in sub.ws:
            delivery.record(sub, raw, clock())
    sub.problems.append("socket closed")
    delivery.changed.set()


async def _open(ws_url: str, token: str) -> Subscriber:
    ws = await connect(ws_url, subprotocols=[PROTOCOL], max_queue=None)  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
    if ack != {"type": "connection_ack"}:
        raise RuntimeError(f"connection_init refused: {ack}")
    payload = {"query": WATCH, "variables": {"project": PROJECT}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return Subscriber(ws)


@contextlib.asynccontextmanager
async def subscribed(base_url: str, token: str, http: Client) -> AsyncIterator[Delivery]:
    """``SUBSCRIBERS`` open subscriptions, each confirmed registered with its server's
    event listener (it received a warm-up run's event)."""
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    subscribers: list[Subscriber] = []
    try:
        while len(subscribers) < SUBSCRIBERS:  # 20 handshakes at a time
            batch = min(20, SUBSCRIBERS - len(subscribers))
            subscribers += await asyncio.gather(*(_open(ws_url, token) for _ in range(batch)))
        delivery = Delivery(subscribers)
        for sub in subscribers:
            sub.reader = asyncio.create_task(_read(sub, delivery))
        for _ in range(50):
            run_id = await _submit(http)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    delivery.until(
                        lambda r=run_id: delivery.counts.get(r) == SUBSCRIBERS, "a warm-up"
                    ),
                    2.0,
                )
                break
        else:
            raise RuntimeError("subscribers never all registered")
        yield delivery
    finally:
        for sub in subscribers:
            with contextlib.suppress(Exception):
                await sub.ws.close()
            if sub.reader is not None:
                sub.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sub.reader


async def _submit(http: Client) -> int:
    """A 1-job run (a generated name: the cases share one project); its id."""
    data = await http.gql(SUBMIT, {"input": {"project": PROJECT, "jobs": [{"name": "a"}]}})
    return int(data["submitRun"]["run"]["id"])


@dataclass
class Outcome:
    latencies_ms: list[float]
    delivered_per_s: float
    answer_ms: float  # p50 of the submitRun round trips

    def quantile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


def _check(delivery: Delivery, answered: dict[int, float]) -> list[float]:
    """Every subscriber got every run exactly once, in submission order: the latencies."""
    wanted = list(answered)
    latencies = []
    for n, sub in enumerate(delivery.subscribers):
        if sub.problems:
            raise RuntimeError(f"subscriber {n}: {sub.problems[:3]}")
        seen = [r for r in sub.order if r in answered]
        if seen != wanted:
            missing = set(wanted) - set(seen)
            raise RuntimeError(
                f"subscriber {n}: {len(seen)} deliveries for {len(wanted)} events "
                f"({len(missing)} missing, out of order or doubled)"
            )
        latencies += [(sub.arrivals[r][0] - answered[r]) * 1000 for r in wanted]
    return latencies


async def _paced(delivery: Delivery, http: Client, changes: int) -> Outcome:
    answered: dict[int, float] = {}
    round_trips = []
    start = time.perf_counter()
    for _ in range(changes):
        sent = time.perf_counter()
        run_id = await _submit(http)
        answered[run_id] = time.perf_counter()
        round_trips.append((answered[run_id] - sent) * 1000)
        await delivery.until(lambda r=run_id: delivery.counts.get(r) == SUBSCRIBERS, "an event")
    elapsed = time.perf_counter() - start
    latencies = _check(delivery, answered)
    return Outcome(latencies, len(latencies) / elapsed, statistics.median(round_trips))


async def _burst(delivery: Delivery, http: Client, changes: int) -> Outcome:
    answered: dict[int, float] = {}
    round_trips = []
    target = delivery.total + changes * SUBSCRIBERS
    start = time.perf_counter()
    for _ in range(changes):
        sent = time.perf_counter()
        run_id = await _submit(http)
        answered[run_id] = time.perf_counter()
        round_trips.append((answered[run_id] - sent) * 1000)
    await delivery.until(lambda: delivery.total >= target, "a burst")
    latencies = _check(delivery, answered)
    last = max(s.arrivals[r][0] for s in delivery.subscribers for r in answered)
    return Outcome(latencies, len(latencies) / (last - start), statistics.median(round_trips))


async def _seed(url: str) -> str:
    db = Database(url)
    try:
        user = await create_bench_user(db, "bench-watcher")
        async with db.write() as session:
            await create_project(session, PROJECT, [(user.name, MemberRole.USER)])
    finally:
        await db.dispose()
    return user.token


async def measure_event_latency(backend: str, config: Config, report: Report) -> None:
    """Paced then burst changes, one worker and then one worker per core."""
    changes = 30 if config.quick else 100  # x 100 subscribers, paced then burst, x 2 cases
    cores = os.cpu_count() or 1
    async with database_url(backend) as url:
        token = await _seed(url)
        for workers, suffix in ((1, ""), (cores, "_per_core")):
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            async with server(url, {"RUNQL_WORKERS": str(workers)}) as base_url:
                http = Client(base_url, token)
                try:
                    async with subscribed(base_url, token, http) as delivery:
                        paced = await _paced(delivery, http, changes)
                        burst = await _burst(delivery, http, changes)
                finally:
                    await http.close()
            _report(backend, report, label, suffix, changes, paced, burst)


def _report(
    backend: str,
    report: Report,
    label: str,
    suffix: str,
    changes: int,
    paced: Outcome,
    burst: Outcome,
) -> None:
    pairs = f"{changes} events x {SUBSCRIBERS} subscribers"
    report.row(
        backend,
        SCENARIO,
        f"paced, {label}",
        f"p50 {paced.quantile(50):.1f} ms, p99 {paced.quantile(99):.1f} ms from the "
        f"submitRun answer to delivery ({pairs}, exactly once each; "
        f"submitRun p50 {paced.answer_ms:.1f} ms)",
    )
    report.row(
        backend,
        SCENARIO,
        f"burst, {label}",
        f"{burst.delivered_per_s:,.0f} events/s delivered ({pairs}); latency under the "
        f"backlog p50 {burst.quantile(50):.0f} ms, p99 {burst.quantile(99):.0f} ms",
    )
    report.figure(backend, f"events.latency_p50_ms{suffix}", paced.quantile(50), "ms")
    report.figure(backend, f"events.latency_p99_ms{suffix}", paced.quantile(99), "ms")
    report.figure(backend, f"events.delivered_per_s{suffix}", burst.delivered_per_s, "events/s")
