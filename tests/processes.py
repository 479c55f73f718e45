"""``runql`` as real processes, for the tests whose feature is a process: a fresh database
per backend, ``runql <command>`` runs, and ``runql serve`` started on a free port and
stopped with SIGTERM (tests/test_workers.py, tests/live/test_replicas.py,
tests/observability/test_workers_metrics.py). How each caller decides the server is
ready stays with it: they wait for different things."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import _create_postgres_database, _drop_postgres_database

#: How long a stopped ``runql serve`` may take to exit before it is killed.
STOP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def fresh_database(backend: str, directory: Path, name: str) -> AsyncIterator[str]:
    """The URL of an empty database: a SQLite file in ``directory``, or a PostgreSQL
    database created for the test and dropped after it."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{name}.db'}"
        return
    database_url = await _create_postgres_database()
    try:
        yield database_url
    finally:
        await _drop_postgres_database(database_url)


async def runql(env: dict[str, str], *args: str) -> str:
    """``runql <args>`` to completion; its stdout (fails the test on a non-zero exit)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "runql.cli", *args),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"runql {' '.join(args)}: {err.decode()}"
    return out.decode()


@contextlib.asynccontextmanager
async def serving_process(
    env: dict[str, str], log: Path, *, workers: int, stderr: Path | None = None
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``runql serve --workers N`` on a free port, its output in ``log`` (its stderr in
    ``stderr`` when given); yields its base URL and the process (not yet ready). Stopped
    with SIGTERM, killed if it lingers."""
    port = free_port()
    with log.open("wb") as sink, contextlib.ExitStack() as files:
        errors = files.enter_context(stderr.open("wb")) if stderr is not None else sink
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "runql.cli", "serve", "--workers", str(workers), "--port", str(port)),
            env=env,
            stdout=sink,
            stderr=errors,
        )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
