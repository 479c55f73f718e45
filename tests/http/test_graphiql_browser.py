"""GraphiQL in a real browser: the page works with no request leaving the server's host.

Drives the system's Chromium (Debian's ``chromium``; never a downloaded build) with
playwright against ``runql serve`` on a loopback port, backed by a migrated SQLite file
with the demo data (``tests.browser``). Outside CI the test skips, with the reason shown,
when there is no browser or the GraphiQL assets are not installed; under ``CI=true`` both
are required.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from runql.cli.demo import DEMO_USERS
from runql.web import graphiql
from tests.browser import LAUNCH_ARGS, TIMEOUT_MS, chromium, demo_server, require

pytestmark = pytest.mark.slow  # a real browser: see DEVELOPERS.md, Tests

HOST = "127.0.0.1"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``runql serve`` with the demo data; yields its base URL."""
    chromium()  # skip before building a database when there is no browser
    with demo_server("sqlite", tmp_path) as served:
        yield served.url


def _editor_text(page: Any, selector: str) -> str:
    """Text of a GraphiQL (CodeMirror 5) editor, read through the editor's own API."""
    text: str = page.eval_on_selector(f"{selector} .CodeMirror", "el => el.CodeMirror.getValue()")
    return text


def test_graphiql_runs_the_example_query_offline(server: str, tmp_path: Path) -> None:
    browser = chromium()
    require(
        not graphiql.missing_assets(graphiql.load_manifest(), graphiql.ASSETS_DIR),
        "GraphiQL assets not installed: run `make install` (needs npm) to run this test",
    )
    sync_api = pytest.importorskip("playwright.sync_api")
    token = DEMO_USERS["alice"][0]
    requests: list[str] = []
    blocked: list[str] = []
    page_errors: list[str] = []

    def route(r: Any) -> None:
        url = urlsplit(r.request.url)
        if url.scheme in {"data", "blob"} or url.hostname == HOST:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "profile"),
            executable_path=browser,
            headless=True,
            args=LAUNCH_ARGS,
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", route)
            page = context.new_page()
            page.on("request", lambda req: requests.append(req.url))
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            page.goto(f"{server}/graphql")

            # The IDE rendered, opened on the runs page query with the header hint.
            page.wait_for_selector(".graphiql-execute-button")
            page.wait_for_selector('button[aria-label="Show GraphiQL Explorer"]')
            assert "query RunsPage" in _editor_text(page, ".graphiql-query-editor")
            assert '"Authorization": "Bearer <token>"' in _editor_text(page, HEADERS_EDITOR)

            # The docs pane loaded the schema (introspection needs no token).
            page.click('button[aria-label="Show Documentation Explorer"]')
            page.click('.graphiql-doc-explorer-type-name >> text="Query"')
            page.wait_for_selector(".graphiql-doc-explorer >> text=Runs the viewer can see")

            # Paste a token the way a user does, run, and read the result pane.
            page.eval_on_selector(
                f"{HEADERS_EDITOR} .CodeMirror",
                "(el, h) => el.CodeMirror.setValue(h)",
                json.dumps({"Authorization": f"Bearer {token}"}),
            )
            page.click(".graphiql-execute-button")
            page.wait_for_function(
                "() => document.querySelector('.graphiql-response .CodeMirror')"
                ".CodeMirror.getValue().includes('edges')"
            )
            shown = json.loads(_editor_text(page, ".graphiql-response"))
            if os.environ.get("RUNQL_SCREENSHOT"):
                page.screenshot(path=os.environ["RUNQL_SCREENSHOT"])
        finally:
            context.close()

    assert blocked == [], f"requests that left {HOST}: {blocked}"
    assert requests and all(urlsplit(u).hostname == HOST for u in requests), requests
    assert page_errors == []
    local_assets = {
        f"{graphiql.ASSETS_PATH}/{asset.relative_path}" for asset in graphiql.load_manifest().assets
    }
    assert local_assets <= {urlsplit(u).path for u in requests}

    # The browser shows exactly what the API answers for the same query and token.
    direct = httpx.post(
        f"{server}/graphql",
        json={"query": graphiql.DEFAULT_QUERY},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert "errors" not in shown, shown
    edges = shown["data"]["runs"]["edges"]
    assert len(edges) == 10
    assert all(edge["node"]["statusMessage"] and edge["node"]["jobs"] for edge in edges)
    assert shown == direct
