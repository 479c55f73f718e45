"""``/ui`` over HTTP: the page, its files and its headers; ``RUNQL_UI=false`` turns it off.
What a browser does with the page is test_ui_browser.py's job."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from runql.settings import Settings
from runql.web.app import create_app
from runql.web.ui import all_operations
from runql.web.ui.routes import STATIC_DIR


async def _client(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", **settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as client:
        yield client
    await app.state.db.dispose()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client():
        yield c


async def test_page_embeds_the_operations_and_loads_only_its_own_files(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/ui")

    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    embedded = re.search(r'id="runql-operations">(.*?)</script>', page, re.S)
    assert embedded is not None
    operations = json.loads(embedded.group(1))
    assert operations == all_operations()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(s.startswith(("/ui/static/", "#", "/graphql", "data:")) for s in sources), sources


async def test_static_files_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    for path in sorted(STATIC_DIR.glob("*.js")):
        response = await client.get(f"/ui/static/{path.name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"], path.name
    css = await client.get("/ui/static/ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (await client.get("/ui/static/missing.js")).status_code == 404
    assert (await client.get("/ui/", follow_redirects=False)).headers["location"] == "/ui"


def test_javascript_stays_small_and_local() -> None:
    """No bundler, no CDN: a few plain modules that import only each other."""
    sources = {p.name: p.read_text() for p in STATIC_DIR.glob("*.js")}
    assert sum(s.count("\n") for s in sources.values()) < 800
    imports = {m for s in sources.values() for m in re.findall(r'from "([^"]+)"', s)}
    assert imports and all(m.startswith("./") and m[2:] in sources for m in imports), imports
    assert not any("http://" in s or "https://" in s for s in sources.values())


async def test_switched_off_serves_nothing() -> None:
    async for client in _client(ui=False):
        assert (await client.get("/ui")).status_code == 404
        assert (await client.get("/ui/static/app.js")).status_code == 404


def test_files_are_package_data() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"web/ui/static/*"' in pyproject and '"web/ui/operations/*.graphql"' in pyproject
