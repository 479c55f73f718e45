"""Fixtures of the client tests: ``runql serve`` subprocesses on fresh databases."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.clients.helpers import Server, add_project, prepare_database, serving
from tests.conftest import BACKENDS, _create_postgres_database, _drop_postgres_database

_names = itertools.count()


@contextlib.asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'clients.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest_asyncio.fixture(scope="module", params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """``runql serve`` on a fresh database per backend, shared by a module's tests (each
    test works in a project of its own: see ``project``)."""
    directory = tmp_path_factory.mktemp(f"serve-{request.param}")
    async with fresh_database(request.param, directory) as url:
        token = await prepare_database(url)
        async with serving(url, token, directory / "serve.log") as running:
            yield running


@pytest_asyncio.fixture(scope="module")
async def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    directory = tmp_path_factory.mktemp("serve-sqlite")
    async with fresh_database("sqlite", directory) as url:
        token = await prepare_database(url)
        async with serving(url, token, directory / "serve.log") as running:
            yield running


@pytest.fixture
def new_project():  # type: ignore[no-untyped-def]
    """``await new_project(server)``: a project of the test's own (so runners of other
    tests on the same server never see its jobs)."""

    async def make(server: Server) -> str:
        name = f"p{next(_names)}"
        await add_project(server.database_url, name)
        return name

    return make
