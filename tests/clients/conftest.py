"""Fixtures of the client tests: ``runql serve`` processes on fresh databases."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.clients.helpers import SERVER_SETTINGS
from tests.conftest import BACKENDS
from tests.processes import Server, add_project, serving

_names = itertools.count()


@pytest_asyncio.fixture(scope="module", params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """``runql serve`` on a fresh database per backend, shared by a module's tests (each
    test works in a project of its own: see ``new_project``)."""
    directory = tmp_path_factory.mktemp(f"serve-{request.param}")
    async with serving(request.param, directory, settings=SERVER_SETTINGS) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The same on SQLite only, for the tests of the runner's own behaviour."""
    directory = tmp_path_factory.mktemp("serve-sqlite")
    async with serving("sqlite", directory, settings=SERVER_SETTINGS) as running:
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
