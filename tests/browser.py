"""What the browser tests share: Debian's Chromium (never a downloaded one), and a real
``runql serve`` with the demo data driven from a sync test.

Playwright's sync API cannot run inside an asyncio loop, so browser tests are plain sync
tests; the async helpers of ``tests.processes`` (a fresh database, ``runql`` commands, the
one ``Server``) run on a loop of their own in a thread, for as long as the server lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from runql.cli.demo import DEMO_USERS
from tests.processes import Server, base_env, fresh_database, runql
from tests.waiting import DEADLINE

T = TypeVar("T")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: Playwright's default wait for anything on a page (ms): as generous as every wait.
TIMEOUT_MS = int(DEADLINE * 1000)
ADMIN_TOKEN = DEMO_USERS["admin"][0]


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` outside CI; fail under CI=true, where the test must run."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires the browser tests)", pytrace=False)
    pytest.skip(reason)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "no system Chromium: `apt-get install chromium` to run this test")
    assert path is not None
    return path


@contextlib.contextmanager
def _loop_thread() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """A loop in a thread of its own; yields ``run(coroutine) -> its result``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="browser-test-loop", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    try:
        yield run
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE)
        loop.close()


class DemoServer:
    """``runql serve`` with the demo data, for a sync test: start, kill (a crash: sockets
    drop), start again on the same port and database, and GraphQL over HTTP."""

    def __init__(self, server: Server, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self.server = server
        self._run = run

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self._run(self.server.start())

    def kill(self) -> None:
        assert self.server.process is not None
        self.server.process.kill()

    def graphql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        """POST ``query`` as ``token``'s user; its ``data`` (fails on errors)."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=DEADLINE,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@contextlib.contextmanager
def demo_server(backend: str, directory: Path, **settings: str) -> Iterator[DemoServer]:
    """``runql serve`` (``RUNQL_*`` ``settings`` besides the defaults) on a fresh database
    of ``backend`` that ``runql migrate`` and ``runql demo`` prepared; stopped at the end."""
    with _loop_thread() as run:
        database = fresh_database(backend, directory)
        url = run(database.__aenter__())
        try:
            env = {**base_env(), "RUNQL_DATABASE_URL": url}
            runql(env, "migrate", check=True)
            runql(env, "demo", check=True)
            server = Server(url, ADMIN_TOKEN, directory / "serve.log", settings)
            run(server.start())
            try:
                yield DemoServer(server, run)
            finally:
                run(server.stop())
        finally:
            run(database.__aexit__(None, None, None))
