"""``runql`` as real processes, for the tests whose feature is a process: a fresh database
per backend, ``runql <command>`` run to completion (``runql``) or in the background
(``start``: a runner, ``ps --watch``), and ``runql serve`` on a free port (``Server``),
ready once it answers ``/readyz`` with its event listener up and every worker started,
stopped with SIGTERM. In this event loop instead (the app's objects within reach):
tests/inloop.py.

Every subprocess imports the same ``runql`` as the tests (``PYTHONPATH`` is passed
through). Every wait polls for a condition until ``tests.waiting.DEADLINE``; nothing
assumes a process is quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runql.db.accounts import create_project, create_user
from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.migrate import upgrade
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.waiting import DEADLINE, until

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


@contextlib.asynccontextmanager
async def fresh_database(backend: str, directory: Path, name: str = "runql") -> AsyncIterator[str]:
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


async def prepare_database(
    url: str, *projects: str, user: str = "robot", admin: bool = True
) -> str:
    """Migrate, create ``user`` and ``projects`` (``user`` their admin); the user's token."""
    db = Database(url, pool_size=1)
    try:
        await upgrade(db)
        async with db.write() as session:
            _, token = await create_user(session, user, admin=admin)
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


def runql(env: dict[str, str], *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``runql <args>`` to completion, its output captured as text. ``check``: fail the
    test (with its stderr) on a non-zero exit. Blocks: from a coroutine that must keep its
    loop turning, run it with ``asyncio.to_thread``."""
    done = subprocess.run(
        [sys.executable, "-m", "runql.cli", *args],
        env=env, capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert not check or done.returncode == 0, f"runql {' '.join(args)}: {done.stderr}"
    return done


@dataclass
class Process:
    """A process in the background, its output (stdout and stderr) in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """Its exit status, ``None`` while it runs."""
        return self.process.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Its JSON log lines of event ``name`` (a line still being written is left out)."""
        found = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == name:
                    found.append(event)
        return found

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def exit_code(self) -> int:
        """Its exit status, once it has exited (fails after ``DEADLINE``)."""
        code: int = await until(self.process.poll, f"{self.process.args!r} to exit")
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it is still there after ``DEADLINE``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                await self.exit_code()
        self.kill()


def start(
    env: dict[str, str],
    *args: str,
    log: Path,
    stderr: Path | None = None,
    cwd: Path | None = None,
    sigint_ignored: bool = False,
) -> Process:
    """``runql <args>`` in the background; its output appended to ``log`` (stderr to
    ``stderr`` when given). ``sigint_ignored``: started the way a script starts ``cmd &``
    (a background job inherits SIGINT ignored)."""
    command = [sys.executable, "-m", "runql.cli", *args]
    return launch(env, command, log, stderr=stderr, cwd=cwd, sigint_ignored=sigint_ignored)


def launch(
    env: dict[str, str],
    command: list[str],
    log: Path,
    *,
    stderr: Path | None = None,
    cwd: Path | None = None,
    sigint_ignored: bool = False,
) -> Process:
    with log.open("ab") as sink, (stderr or log).open("ab") as errors:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=errors,
            cwd=cwd,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
    return Process(process, log)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of ``runql serve --workers N``: the children multiprocessing
    spawned (Linux: read from /proc)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    pids = []
    for pid in map(int, children):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
    return sorted(pids)


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> Any:
    """POST a GraphQL document; its ``data`` (fails the test on an error)."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


@dataclass
class Server:
    """``runql serve`` on ``database_url`` (migrated: see ``prepare_database``), on a port
    of its own that it keeps across a stop and a new start. ``settings``: ``RUNQL_*``
    variables on top of the defaults below."""

    database_url: str
    token: str
    log: Path
    settings: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    #: False: uvicorn with ``--ws none`` instead of ``runql serve``: the API over HTTP, and
    #: no WebSocket upgrade (as behind a proxy that does not pass upgrades).
    websockets: bool = True
    #: Where its stderr goes when not to ``log`` (a test that reads the JSON log alone).
    stderr: Path | None = None
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def pid(self) -> int:
        """The process ``runql serve`` runs in (with workers: their supervisor)."""
        assert self.process is not None, "not started"
        return self.process.pid

    def env(self) -> dict[str, str]:
        return {
            **base_env(),
            "RUNQL_DATABASE_URL": self.database_url,
            "RUNQL_SECRET_KEY": "processes-test",
            "RUNQL_LOG_LEVEL": "WARNING",
            **self.settings,
            "RUNQL_WORKERS": str(self.workers),
        }

    async def start(self) -> None:
        """Start it and wait until it is ready (fails with its log if it exits first, or
        is not ready within ``DEADLINE``). A first start whose port another process took
        meanwhile (``free_port`` only finds one free a moment ago) moves to another."""
        for _attempt in range(3):
            command = [sys.executable, "-m", "runql.cli", "serve", "--workers", str(self.workers)]
            if not self.websockets:
                command = [sys.executable, "-m", "uvicorn", "--factory",
                           "runql.web.app:create_worker_app", "--ws", "none",
                           "--workers", str(self.workers), "--log-level", "warning"]  # fmt: skip
            logged = self.log.stat().st_size if self.log.exists() else 0
            first = self.process is None
            self.process = launch(
                self.env(), [*command, "--port", str(self.port)], self.log, stderr=self.stderr
            )
            try:
                async with httpx.AsyncClient(base_url=self.url, timeout=DEADLINE) as client:
                    await until(lambda: self._ready(client), f"runql serve on port {self.port}")
                return
            except AssertionError:
                taken = "address already in use" in self.log_text()[logged:].lower()
                if not (first and taken and self.process.returncode is not None):
                    raise
                self.process = None
                self.port = free_port()
        raise AssertionError(f"no free port for runql serve:\n{self.log_text()}")

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        """``/readyz`` answers 200, the event listener (if any) has read the log once, and
        every worker process has started."""
        assert self.process is not None
        assert self.process.returncode is None, f"runql serve exited:\n{self.log_text()}"
        try:
            response = await client.get("/readyz")
        except httpx.TransportError:
            return False
        listener = response.json().get("eventListener") if response.status_code == 200 else None
        if response.status_code != 200 or (listener and listener["state"] != "ok"):
            return False
        return self.workers == 1 or len(worker_pids(self.pid)) == self.workers

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """An HTTP client with ``token`` (default: the server's user's)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=DEADLINE)

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        async with self.client() as client:
            return await gql(client, query, variables)

    async def submit(
        self, project: str, jobs: list[dict[str, Any]], name: str | None = None
    ) -> str:
        data = await self.gql(SUBMIT, {"input": {"project": project, "jobs": jobs, "name": name}})
        run_id: str = data["submitRun"]["run"]["id"]
        return run_id

    async def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = (await self.gql(RUN, {"id": run_id}))["run"]
        return run

    async def metrics(self, token: str | None = None) -> str:
        """``GET /metrics``: the exposition text."""
        async with self.client(token) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text


@contextlib.asynccontextmanager
async def serving(
    backend: str,
    directory: Path,
    *projects: str,
    user: str = "robot",
    admin: bool = True,
    settings: dict[str, str] | None = None,
    workers: int = 1,
) -> AsyncIterator[Server]:
    """``runql serve`` on a fresh database of ``backend`` (files in ``directory``) with
    ``user`` and ``projects`` (see ``prepare_database``), ready; stopped at the end."""
    async with fresh_database(backend, directory) as url:
        token = await prepare_database(url, *projects, user=user, admin=admin)
        server = Server(url, token, directory / "serve.log", settings or {}, workers=workers)
        async with running(server):
            yield server


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    """``server`` started and ready, stopped at the end."""
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
