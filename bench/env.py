"""Where a benchmark runs: a fresh migrated database per backend and the ASGI app on it.

SQLite is a file in a temporary directory; PostgreSQL is a dedicated database
``runql_bench_<random>`` created on the server named by ``RUNQL_BENCH_POSTGRES_URL``
(default: the local trust-auth server) and dropped afterwards. An unreachable server
skips the PostgreSQL half with a printed line instead of failing the run.
GraphQL requests go through the real app in-process (``httpx.ASGITransport``): the same
parsing, validation, context, loaders and serialisation as over the network, minus the
socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.asgi_client import AsgiClient
from runql.db.engine import Database
from runql.db.migrate import upgrade
from runql.settings import Settings
from runql.web.app import create_app

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


class Unavailable(Exception):
    """The backend cannot be used on this machine (e.g. no PostgreSQL server)."""


@dataclass(frozen=True)
class Config:
    """How much to measure. ``BENCH_QUICK=1``: fewer depths and repeats, same scenarios."""

    quick: bool
    depths: tuple[int, ...]
    repeats: int
    warmup: int
    backends: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")
        wanted = os.environ.get("BENCH_BACKENDS", ",".join(BACKENDS))
        backends = tuple(b.strip() for b in wanted.split(",") if b.strip() in BACKENDS)
        return cls(
            quick=quick,
            depths=(1, 1000) if quick else (1, 10, 100, 1000),
            repeats=5 if quick else 15,
            warmup=1 if quick else 3,
            backends=backends,
        )


def postgres_admin_url() -> str:
    url = make_url(os.environ.get("RUNQL_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def database_url(backend: str) -> AsyncIterator[str]:
    """A fresh, migrated database; removed when the block ends."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="runql-bench-")
        try:
            url = f"sqlite+aiosqlite:///{directory}/bench.db"
            await _migrate(url)
            yield url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    admin_url = postgres_admin_url()
    name = f"runql_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, ConnectionError) as exc:
        shown = make_url(admin_url).render_as_string()
        raise Unavailable(f"PostgreSQL at {shown} unreachable ({exc})") from None
    finally:
        await admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await _migrate(url)
        yield url
    finally:
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


class GraphQLError(RuntimeError):
    """A benchmark request came back with errors: the figure would be meaningless."""


@dataclass
class BenchEnv:
    backend: str
    url: str
    db: Database
    settings: Settings
    client: AsgiClient

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        status, payload = await self.client.post_json(
            "/graphql",
            {"query": query, "variables": variables or {}},
            {"authorization": f"Bearer {token}"},
        )
        if payload.get("errors") or status != 200:
            raise GraphQLError(f"{status}: {payload.get('errors')}")
        data: dict[str, Any] = payload["data"]
        return data

    async def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics after bulk seeding, as autovacuum
        would shortly after; SQLite is left as users get it (runql runs no ANALYZE)."""
        if self.backend == "postgresql":
            engine = self.db.engine.execution_options(isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.execute(text("VACUUM ANALYZE"))


@contextlib.asynccontextmanager
async def bench_env(backend: str) -> AsyncIterator[BenchEnv]:
    async with database_url(backend) as url:
        settings = Settings(
            database_url=url, secret_key="bench-secret", statement_timeout_ms=0, log_level="WARNING"
        )
        db = Database(url, statement_timeout_ms=0)
        app = create_app(settings, db=db)
        try:
            yield BenchEnv(backend, url, db, settings, AsgiClient(app))
        finally:
            await db.dispose()
