"""``runql serve --workers 2`` with metrics: a scrape of either worker counts both.

The server is the real command in a subprocess. Each worker answers one request while the
other is paused (``SIGSTOP``, as in tests/test_workers.py: only the running worker can
accept a new connection), then the scrape is answered by one worker alone and must count
the other's request too. A worker killed outright is replaced; its counts stay (counters
never go back) but its live gauges go (the pool it held is gone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from runql.db.engine import Database
from tests.conftest import BACKENDS
from tests.observability.helpers import Labels, labels, parse, values
from tests.processes import Server, serving, worker_pids
from tests.waiting import until

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="finds the worker processes in /proc"
    ),
    pytest.mark.slow,  # real runql serve processes (see DEVELOPERS.md, Tests)
]

TOKEN = "workers-scrape-token-0123"
POOL_SIZE = 6  # the server's total: 3 per worker on PostgreSQL
ME = "query Me { me { name } }"


@pytest_asyncio.fixture(params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Server, int]]:
    """The server, and the pool size each of its workers reports."""
    settings = {
        "RUNQL_METRICS": TOKEN,
        "RUNQL_DB_POOL_SIZE": str(POOL_SIZE),
        # Background tasks would check pooled connections out at moments of their own
        # (the SQLite event listener polls every 0.1 s): keep them idle, so the
        # checked-out gauge counts the requests' connections only.
        "RUNQL_EVENT_POLL_SECONDS": "3600",
        "RUNQL_EVENT_PRUNE_SECONDS": "0",
        "RUNQL_LEASE_SWEEP_SECONDS": "0",
    }
    async with serving(
        request.param, tmp_path, user="alice", admin=False, settings=settings, workers=2
    ) as running:
        probe = Database(running.database_url, pool_size=-(-POOL_SIZE // 2))
        per_worker = probe.engine.pool.size()  # type: ignore[attr-defined]
        await probe.dispose()
        yield running, per_worker


@contextlib.contextmanager
def _paused(pid: int):  # type: ignore[no-untyped-def]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def _me(server: Server) -> None:
    assert await server.gql(ME) == {"me": {"name": "alice"}}  # over a new connection


async def _scrape(server: Server) -> dict[tuple[str, Labels], float]:
    return parse(await server.metrics(TOKEN))


def _metrics_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (entry,) = [e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(entry.split(b"=", 1)[1].decode())


async def test_a_scrape_of_one_worker_counts_every_worker(server: tuple[Server, int]) -> None:
    serve, per_worker = server
    first, second = worker_pids(serve.pid)
    shared = _metrics_dir(first)
    assert shared == _metrics_dir(second) and shared.is_dir()

    with _paused(first):
        await _me(serve)  # answered by the second worker
    with _paused(second):
        await _me(serve)  # answered by the first
        samples = await _scrape(serve)  # the first alone answers

    me = labels(operation="Me", type="query", outcome="ok")
    assert values(samples, "runql_requests_total") == {me: 2}
    assert samples[("runql_db_pool_size", labels())] == 2 * per_worker
    assert samples[("runql_db_pool_checked_out", labels())] == 0

    # A worker killed outright is replaced: its counts stay, its live gauges go.
    os.kill(first, signal.SIGKILL)

    async def replaced() -> dict[tuple[str, Labels], float] | None:
        """A scrape once a new worker took the killed one's place and reports its pool."""
        pids = worker_pids(serve.pid)
        if len(pids) == 2 and first not in pids:
            with contextlib.suppress(httpx.TransportError, AssertionError):
                samples = await _scrape(serve)
                if samples[("runql_db_pool_size", labels())] == 2 * per_worker:
                    return samples
        return None

    samples = await until(replaced, "a new worker in the killed one's place", every=0.2)
    assert values(samples, "runql_requests_total") == {me: 2}

    # The temporary directory goes with the server.
    await serve.stop()
    assert not shared.exists()
