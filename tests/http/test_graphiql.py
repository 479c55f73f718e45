"""runql's GraphiQL page over HTTP: served by runql, assets local, CDN only as a fallback.

The page tests point ``runql.web.graphiql.page.ASSETS_DIR`` at a folder they fill themselves, so
they do not depend on ``make install`` having run; the installed files are checked
against the manifest in their own test. What a browser does with the page is
tests/http/test_graphiql_browser.py's job.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from graphql import parse, validate

from runql.cli.demo import DEMO_USERS, load_demo
from runql.db.engine import Database
from runql.schema import build_schema
from runql.settings import Settings
from runql.web import graphiql
from runql.web.app import create_app
from tests.factories import GraphQLClient

HTML = {"Accept": "text/html"}
MANIFEST = graphiql.load_manifest()


class _Tags(HTMLParser):
    """(tag, attributes) of every <script src> and <link href> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if (tag == "script" and "src" in attributes) or tag == "link":
            self.assets.append((tag, attributes))


def _assets_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return [(tag, a) for tag, a in parser.assets if a.get("rel") != "icon"]


def _url(attributes: dict[str, str | None]) -> str:
    return attributes.get("src") or attributes.get("href") or ""


@pytest.fixture
def fake_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An assets folder holding every manifest file (placeholder bytes naming the file)."""
    folder = tmp_path / "assets"
    for asset in MANIFEST.assets:
        path = folder / asset.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {asset.relative_path} */\n")
    monkeypatch.setattr("runql.web.graphiql.page.ASSETS_DIR", folder)
    return folder


@pytest.fixture
def no_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "not-installed"
    monkeypatch.setattr("runql.web.graphiql.page.ASSETS_DIR", folder)
    return folder


def _client(tmp_path: Path, **settings: object) -> httpx.AsyncClient:
    """A client of an app whose database is never touched by these requests."""
    app = create_app(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", **settings)  # type: ignore[arg-type]
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://runql.test")


async def test_page_lists_local_assets_in_manifest_order_with_integrity(
    fake_assets: Path, tmp_path: Path
) -> None:
    async with _client(tmp_path) as http:
        response = await http.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assets = _assets_of(response.text)
    assert [(_url(a), a.get("integrity")) for _, a in assets] == [
        (f".{graphiql.ASSETS_PATH}/{asset.relative_path}", asset.integrity)
        for asset in MANIFEST.assets
    ]
    assert [tag for tag, _ in assets] == [
        "link" if asset.is_style else "script" for asset in MANIFEST.assets
    ]


async def test_page_names_no_other_host_when_assets_are_installed(
    fake_assets: Path, tmp_path: Path
) -> None:
    async with _client(tmp_path) as http:
        html = (await http.get("/graphql", headers=HTML)).text
    assert "://" not in html.replace("http://www.w3.org", "")
    assert MANIFEST.cdn not in html


async def test_asset_routes_serve_the_installed_files(fake_assets: Path, tmp_path: Path) -> None:
    async with _client(tmp_path) as http:
        for asset in MANIFEST.assets:
            response = await http.get(f"{graphiql.ASSETS_PATH}/{asset.relative_path}")
            assert response.status_code == 200, asset.relative_path
            assert response.content == (fake_assets / asset.relative_path).read_bytes()
            kind = "text/css" if asset.is_style else "text/javascript"
            assert response.headers["content-type"].startswith(kind)
        assert (await http.get(f"{graphiql.ASSETS_PATH}/../assets.json")).status_code == 404
        assert (await http.get(f"{graphiql.ASSETS_PATH}/nope.js")).status_code == 404


async def test_missing_assets_fall_back_to_the_cdn_and_log_one_line(
    no_assets: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runql.web.graphiql"):
        async with _client(tmp_path) as first, _client(tmp_path) as second:
            pages = [(await c.get("/graphql", headers=HTML)).text for c in (first, second, first)]
    lines = [r.getMessage() for r in caplog.records if r.name == "runql.web.graphiql"]
    assert len(lines) == 1, lines
    assert "make install" in lines[0]
    assert str(no_assets) in lines[0]
    assets = _assets_of(pages[0])
    assert [(_url(a), a.get("integrity"), a.get("crossorigin")) for _, a in assets] == [
        (f"{MANIFEST.cdn}/{asset.relative_path}", asset.integrity, "anonymous")
        for asset in MANIFEST.assets
    ]


async def test_page_opens_on_the_runs_query_with_the_header_hint(
    fake_assets: Path, tmp_path: Path
) -> None:
    async with _client(tmp_path) as http:
        html = (await http.get("/graphql", headers=HTML)).text
    # The config travels as JSON with <, > and & escaped, so it cannot close its <script>.
    assert "query RunsPage" in html
    assert '\\"Authorization\\": \\"Bearer \\u003ctoken\\u003e\\"' in html
    assert "explorerPlugin()" in html
    assert "</script" not in html.split('id="runql-config"')[1].split("</script>")[0]


async def test_graphiql_off_serves_neither_page_nor_assets(
    fake_assets: Path, tmp_path: Path
) -> None:
    async with _client(tmp_path, graphiql=False) as http:
        page = await http.get("/graphql", headers=HTML)
        asset = await http.get(f"{graphiql.ASSETS_PATH}/{MANIFEST.assets[0].relative_path}")
    assert "runql-config" not in page.text
    assert asset.status_code == 404


def test_installed_assets_match_the_pinned_hashes() -> None:
    """What ``make install`` put in runql/web/graphiql/assets/ is what the page pins."""
    missing = graphiql.missing_assets(MANIFEST, graphiql.ASSETS_DIR)
    if missing:
        reason = f"GraphiQL assets not installed ({len(missing)} missing): run `make install`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true requires them)", pytrace=False)
        pytest.skip(reason)
    for asset in MANIFEST.assets:
        algorithm, _, expected = asset.integrity.partition("-")
        data = (graphiql.ASSETS_DIR / asset.relative_path).read_bytes()
        actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
        assert actual == expected, asset.relative_path


def test_example_query_is_valid_against_the_schema() -> None:
    schema = build_schema()._schema
    assert validate(schema, parse(graphiql.DEFAULT_QUERY)) == []


async def test_example_query_answers_the_runs_page(db: Database, gql: GraphQLClient) -> None:
    await load_demo(db)
    payload = await gql(graphiql.DEFAULT_QUERY, token=DEMO_USERS["admin"][0])
    edges = payload["data"]["runs"]["edges"]
    assert len(edges) == 10
    assert all(e["node"]["name"] and e["node"]["statusMessage"] for e in edges)
    assert all(e["node"]["jobs"] for e in edges)


async def test_docs_pane_describes_every_type_and_field(gql: GraphQLClient) -> None:
    """What GraphiQL's docs pane shows (introspection needs no token) has descriptions.

    Enum values are explained by their enum's description; names starting with ``_`` or
    namespaced like ``link__Import`` are GraphQL's and federation's own.
    """
    payload = await gql(
        """{ __schema { types { name description
                fields { name description args { name description } }
                inputFields { name description } } } }"""
    )
    undocumented = []
    for t in payload["data"]["__schema"]["types"]:
        if t["name"].startswith("_") or "__" in t["name"] or t["name"] in _BUILTIN_SCALARS:
            continue
        if not t["description"]:
            undocumented.append(t["name"])
        for member in (t["fields"] or []) + (t["inputFields"] or []):
            if member["name"].startswith("_"):
                continue
            if not member["description"]:
                undocumented.append(f"{t['name']}.{member['name']}")
            for arg in member.get("args") or []:
                if not arg["description"]:
                    undocumented.append(f"{t['name']}.{member['name']}({arg['name']})")
    assert undocumented == [], undocumented


_BUILTIN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}
