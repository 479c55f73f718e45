"""Real processes for the client tests: ``runql serve`` on a fresh database, ``runql
runner`` / ``ps`` / ``stop`` subprocesses, and GraphQL over HTTP to look at the result.

Every subprocess imports the same ``runql`` as the tests (``PYTHONPATH`` is passed
through). Waits poll for a condition with a deadline; nothing asserts on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from runql.db.accounts import create_project, create_user
from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.migrate import upgrade

T = TypeVar("T")
STARTUP_SECONDS = 30.0
LEASE_SECONDS = 3  # renewals every second
GRACE_SECONDS = 1.0

SUBMIT = "mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id } } }"
RUN = """
query($id: ID!) {
  run(id: $id) {
    id name status statusMessage terminationReason
    jobs(submissionsLimit: 10) {
      id name replicaNum submissionNum status terminationReason terminationMessage
      exitStatus runnerName result
    }
  }
}
"""
STOP = """mutation($ids: [ID!]!) { stopRuns(input: { runIds: $ids }) {
  results { error { code } run { status } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env() -> dict[str, str]:
    """What every subprocess gets: PATH, and PYTHONPATH so it imports this ``runql``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


async def prepare_database(url: str, *projects: str, user: str = "robot") -> str:
    """Migrate, create an admin ``user`` and ``projects``; returns the user's token."""
    db = Database(url, pool_size=1)
    try:
        await upgrade(db)
        async with db.write() as session:
            _, token = await create_user(session, user, admin=True)
            for name in projects:
                await create_project(session, name, [(user, MemberRole.ADMIN)])
    finally:
        await db.dispose()
    return token


async def add_project(url: str, name: str, user: str = "robot") -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.write() as session:
            await create_project(session, name, [(user, MemberRole.ADMIN)])
    finally:
        await db.dispose()


@dataclass
class Server:
    database_url: str
    token: str
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: False: uvicorn with ``--ws none`` instead of ``runql serve``: the API over HTTP, and
    #: no WebSocket upgrade (as behind a proxy that does not pass upgrades).
    websockets: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **base_env(),
            "RUNQL_DATABASE_URL": self.database_url,
            "RUNQL_SECRET_KEY": "clients-test",
            "RUNQL_LOG_LEVEL": "WARNING",
            "RUNQL_LEASE_SWEEP_SECONDS": "0.5",
            "RUNQL_MIN_LEASE_SECONDS": "1",
            "RUNQL_METRICS": "open",
        }

    async def start(self) -> None:
        with self.log.open("ab") as sink:
            command = [sys.executable, "-m", "runql.cli", "serve", "--workers", "1"]
            if not self.websockets:
                command = [sys.executable, "-m", "uvicorn", "--factory",
                           "runql.web.app:create_worker_app", "--ws", "none", "--workers", "1",
                           "--log-level", "warning"]  # fmt: skip
            self.process = subprocess.Popen(  # noqa: ASYNC220
                [*command, "--port", str(self.port)],
                env={**self.env(), "RUNQL_WORKERS": "1"}, stdout=sink, stderr=sink,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log.read_text(errors="replace")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"runql serve did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        async with self.client() as client:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables or {}}
            )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def submit(
        self, project: str, jobs: list[dict[str, Any]], name: str | None = None
    ) -> str:
        data = await self.gql(SUBMIT, {"input": {"project": project, "jobs": jobs, "name": name}})
        run_id: str = data["submitRun"]["run"]["id"]
        return run_id

    async def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = (await self.gql(RUN, {"id": run_id}))["run"]
        return run

    async def metrics(self) -> str:
        """``GET /metrics`` (``RUNQL_METRICS=open``): the exposition text."""
        async with self.client() as client:
            response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text


@contextlib.asynccontextmanager
async def serving(database_url: str, token: str, log: Path) -> AsyncIterator[Server]:
    server = Server(database_url, token, log)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RunnerProcess:
    process: subprocess.Popen[bytes]
    state_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The runner's JSON log lines of event ``name`` (a line still being written is
        left out)."""
        found = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == name:
                    found.append(event)
        return found

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def exit_code(self, within: float = 30.0) -> int:
        code = await until(lambda: self.process.poll(), within, "the runner to exit")
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_runner(
    server: Server,
    tmp_path: Path,
    *,
    name: str,
    project: str,
    slots: int = 4,
    lease_seconds: int = LEASE_SECONDS,
    extra: tuple[str, ...] = (),
    state_dir: Path | None = None,
) -> RunnerProcess:
    state_dir = state_dir or tmp_path / f"state-{name}"
    log = tmp_path / f"runner-{name}.log"
    env = {**base_env(), "RUNQL_URL": server.url, "RUNQL_TOKEN": server.token}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "runql.cli", "runner", "--name", name, "--slots", str(slots),
             "--project", project, "--lease-seconds", str(lease_seconds),
             "--state-dir", str(state_dir), "--grace-seconds", str(GRACE_SECONDS), *extra],
            env=env, stdout=sink, stderr=sink, cwd=tmp_path,
        )  # fmt: skip
    return RunnerProcess(process, state_dir, log)


async def until(
    check: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    within: float,
    what: str,
) -> T:
    """Poll ``check`` (sync or async) every 50 ms until it returns something other than
    ``None`` or ``False``; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last is not None and last is not False:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within} s waiting for {what} (last: {last!r})")


def statuses(run: dict[str, Any]) -> dict[tuple[str, int, int], str]:
    """(job name, replica, submission) -> status, for every submission of a run."""
    return {(j["name"], j["replicaNum"], j["submissionNum"]): j["status"] for j in run["jobs"]}


async def finished(server: Server, run_id: str) -> dict[str, Any] | None:
    run = await server.run(run_id)
    return run if run["status"] in ("DONE", "FAILED", "TERMINATED") else None
