"""GraphiQL in a real browser: the page works with no request leaving the server's host.

Drives the system's Chromium (Debian's ``chromium``; never a downloaded build) with
playwright against runql served by uvicorn on a loopback port, backed by a migrated SQLite
file with the demo data. Outside CI the test skips, with the reason shown, when there is
no browser or the GraphiQL assets are not installed; under ``CI=true`` both are required.

A plain sync test on purpose: playwright's sync API cannot run inside an asyncio loop, so
the server gets its own loop in a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from runql.cli.demo import DEMO_USERS, load_demo
from runql.db.engine import Database
from runql.db.migrate import upgrade
from runql.settings import Settings
from runql.web import graphiql
from runql.web.app import create_app
from tests.waiting import DEADLINE

pytestmark = pytest.mark.slow  # a real browser: see DEVELOPERS.md, Tests

HOST = "127.0.0.1"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = int(DEADLINE * 1000)


def _require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` outside CI; fail under CI=true, where the test must run."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires the GraphiQL browser test)", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    _require(path is not None, "no system Chromium: `apt-get install chromium` to run this test")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """runql on a loopback port with demo data; yields its base URL."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'runql.db'}", secret_key="browser-test"
    )
    config = uvicorn.Config(
        create_app(settings), host=HOST, port=_free_port(), log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def serve() -> None:
        db = Database(settings.database_url)
        try:
            await upgrade(db)
            await load_demo(db)
        finally:
            await db.dispose()
        await uv.serve()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="runql-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not uv.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"runql did not start: {failure}")
        time.sleep(0.05)
    try:
        yield f"http://{HOST}:{config.port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=DEADLINE)


def _editor_text(page: Any, selector: str) -> str:
    """Text of a GraphiQL (CodeMirror 5) editor, read through the editor's own API."""
    text: str = page.eval_on_selector(f"{selector} .CodeMirror", "el => el.CodeMirror.getValue()")
    return text


def test_graphiql_runs_the_example_query_offline(server: str, tmp_path: Path) -> None:
    browser = _chromium()
    _require(
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
