"""One suite, run against a real SQLite file and a real PostgreSQL server.

Every test that takes ``db`` (or anything built on it) runs once per backend; test ids say
which (``[sqlite]`` / ``[postgresql]``). The PostgreSQL server comes from
``RUNQL_TEST_POSTGRES_URL`` (default: the local trust-auth server); the suite creates its
own database there and drops it at the end. Under ``CI=true`` an unreachable server fails
the run; elsewhere the PostgreSQL half is skipped with a visible reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from runql.db.engine import Database, StatementRecorder, record_statements
from runql.db.migrate import upgrade
from runql.db.models import Base
from runql.settings import Settings
from runql.web.app import create_app
from tests.factories import Factory, GraphQLClient

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


def _postgres_admin_url() -> str:
    url = make_url(os.environ.get("RUNQL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def _create_postgres_database() -> str:
    admin_url = _postgres_admin_url()
    name = f"runql_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            # A test database need not outlive a crash of the server: commits return
            # without waiting for the WAL flush (the server's other databases keep theirs).
            await conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except (OSError, ConnectionError) as exc:
        message = f"PostgreSQL at {make_url(admin_url).render_as_string()} unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true requires the PostgreSQL suite)", pytrace=False)
        pytest.skip(f"{message}; set RUNQL_TEST_POSTGRES_URL to run the PostgreSQL suite")
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    engine = create_async_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist (a dev dependency)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``make test`` (pytest-xdist): see tests/scheduling.py."""
    from tests.scheduling import make_scheduler

    return make_scheduler(config, log)


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database per backend, shared by the session's tests."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "runql-test.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await _create_postgres_database()
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    yield url
    if request.param == "postgresql":
        await _drop_postgres_database(url)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's database; every table is emptied after the test.

    On PostgreSQL by ``DELETE`` and a reset of every sequence, which is what ``TRUNCATE ...
    RESTART IDENTITY`` did at a thirtieth of its cost (a truncation swaps each table's
    files, ~50 ms a test; the tables of one test hold few rows)."""
    database = Database(database_url, statement_timeout_ms=60_000)
    yield database
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with database.engine.begin() as conn:
        for table in tables:
            await conn.execute(text(f"DELETE FROM {table}"))
        if not database.is_sqlite:
            await conn.execute(text("SELECT setval(seqrelid, seqstart, false) FROM pg_sequence"))
    await database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key="test-secret")


@pytest.fixture
def app(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db)


@pytest_asyncio.fixture
async def http(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    """POST GraphQL documents to the app: ``await gql(query, variables, token=...)``."""
    return GraphQLClient(http)


@pytest.fixture
def client_with(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    """``async with client_with(max_aliases=3) as client``: an HTTP client of an app built
    with some settings changed (same database)."""

    @contextlib.asynccontextmanager
    async def make(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(dataclasses.replace(settings, **overrides), db=db)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as c:
            yield c

    return make


@pytest.fixture
def factory(db: Database) -> Factory:
    return Factory(db)


@pytest.fixture
def statements() -> Iterator[StatementRecorder]:
    """Every SQL statement issued during the test (after this fixture starts)."""
    with record_statements() as recorder:
        yield recorder
