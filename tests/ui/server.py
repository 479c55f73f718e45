"""runql as a real ``runql serve`` process for the UI's browser tests: a fresh database
per backend with the demo data, a fixed port, and a restart (kill, start again on the same
port and database) for the reconnect test.

The browser tests are plain sync tests (playwright's sync API cannot run inside an
asyncio loop), so the one async step, creating a PostgreSQL database, runs on a loop of
its own in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.processes import free_port

T = TypeVar("T")
SERVE = [sys.executable, "-m", "runql.cli", "serve", "--workers", "1"]
STARTUP_SECONDS = 30.0
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` outside CI; fail under CI=true, where the test must run."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires the UI browser tests)", pytrace=False)
    pytest.skip(reason)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "no system Chromium: `apt-get install chromium` to run this test")
    assert path is not None
    return path


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` on a fresh loop in another thread (this thread's loop is pytest's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def fresh_database_url(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / 'runql.db'}"
    return run_async(_create_postgres_database())


def drop_database(backend: str, url: str) -> None:
    if backend == "postgresql":
        run_async(_drop_postgres_database(url))


class Server:
    """``runql serve --workers 1`` on one port and one database, restartable."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "RUNQL_DATABASE_URL": database_url,
            "RUNQL_SECRET_KEY": "ui-browser-test",  # cursors outlive a restart
            "RUNQL_LOG_LEVEL": "WARNING",
            "RUNQL_LEASE_SWEEP_SECONDS": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def runql(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "runql.cli", *args],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"runql {' '.join(args)}: {done.stderr.decode()}"
        return done.stdout.decode()

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*SERVE, "--port", str(self.port)],
                env=self.env,
                stdout=sink,
                stderr=sink,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"runql serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"runql serve not ready: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """The hard way: no graceful shutdown, sockets drop as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def graphql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data
