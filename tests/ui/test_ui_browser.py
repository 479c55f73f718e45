"""The web UI in a real browser (Debian's Chromium, driven by playwright; nothing is
downloaded), against ``runql serve`` on each backend with the demo data.

What a user of the runs page relies on: a refused token says so; the first load reads the
runs list with one GraphQL request and none per run; stopping a run from its page changes
its status without a reload; a run submitted by another client appears within 2 s (list,
then watch); and when the server restarts the page says "reconnecting" and comes back live
without losing what happened meanwhile.

``RUNQL_UI_SCREENSHOT=docs/ui-runs.png`` also saves the runs page there, and a run's page
next to it (``docs/ui-runs-run.png``): the pictures in docs/ui.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from runql.cli.demo import DEMO_USERS
from tests.browser import LAUNCH_ARGS, TIMEOUT_MS, DemoServer, chromium, demo_server
from tests.conftest import BACKENDS

ALICE = DEMO_USERS["alice"][0]
ROWS = "table.grid tbody tr[data-run-id]"
SUBMIT = """mutation($input: SubmitRunInput!) { submitRun(input: $input) { run { id name } } }"""
RETRIED = """{ runs(filter: {nameContains: "bert-01"}) {
  edges { node { id jobs { submissionNum } } } } }"""
RUNS = """query($filter: RunFilter) { runs(first: 20, filter: $filter) {
  edges { node { id name viewerCanStop } } } }"""


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DemoServer]:
    """``runql serve`` with the demo data on a fresh database of each backend."""
    chromium()  # skip before building a database when there is no browser
    with demo_server(request.param, tmp_path, RUNQL_LEASE_SWEEP_SECONDS="0") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (each gets a context of its own)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium(), headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(server: DemoServer, browser: Any) -> Iterator[Any]:
    """A fresh page, in a fresh context (no storage shared with other tests), that may
    talk to runql's host only."""
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", lambda route: _only_runql(route, server, errors))
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("console", lambda m: _console_error(m, errors))
        page.errors = errors
        yield page
    finally:
        context.close()
    assert errors == [], errors


def _only_runql(route: Any, server: DemoServer, errors: list[str]) -> None:
    """Let requests to runql through; abort (and report) any other host's."""
    if urlsplit(route.request.url).netloc == urlsplit(server.url).netloc:
        route.continue_()
    else:
        errors.append(f"request that left runql: {route.request.url}")
        route.abort()


def _with_unknown_run(route: Any) -> None:
    """StopRuns as the page sent it, plus a run id that does not exist."""
    body = route.request.post_data_json or {}
    if body.get("operationName") != "StopRuns":
        route.fallback()
        return
    body["variables"]["ids"].append("999999")
    route.fallback(post_data=json.dumps(body))


def _wait_for_rows(page: Any, condition: str) -> None:
    """Wait until ``condition`` holds of ``rows``, the list's rows (their data-* say what
    they show)."""
    page.wait_for_function(
        f"() => {{ const rows = [...document.querySelectorAll('{ROWS}')]"
        f".map(r => r.dataset); return {condition}; }}"
    )


def _console_error(message: Any, errors: list[str]) -> None:
    """Console errors, except the browser's own line for the refused token's 401."""
    if message.type == "error" and "status of 401" not in message.text:
        errors.append(message.text)


def graphql_posts(page: Any) -> list[str]:
    """Every GraphQL request the page sends from now on (operation names, in order)."""
    sent: list[str] = []

    def record(request: Any) -> None:
        if urlsplit(request.url).path == "/graphql" and request.method == "POST":
            sent.append((request.post_data_json or {}).get("operationName", "?"))

    page.on("request", record)
    return sent


def sign_in(page: Any, server: DemoServer, token: str) -> None:
    page.goto(f"{server.url}/ui")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")


def submit_run(server: DemoServer, name: str) -> None:
    job = {"name": "main", "spec": {"cmd": "true"}}
    server.graphql(ALICE, SUBMIT, input={"project": "vision", "name": name, "jobs": [job]})


def test_runs_page_lists_stops_and_follows_live(server: DemoServer, page: Any) -> None:
    sent = graphql_posts(page)

    # A refused token says so, and sends no further request.
    sign_in(page, server, "rql_not_a_token")
    alert = page.wait_for_selector("form.signin [role=alert]")
    assert "refused this token" in alert.inner_text()
    assert sent == ["Runs"]
    sent.clear()

    # The first load: one GraphQL request reads the list, the viewer and the projects.
    page.fill("#token", ALICE)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector(ROWS)
    page.wait_for_selector("#live[data-state=live]")
    shown = page.eval_on_selector_all(f"{ROWS} td.name a", "links => links.map(a => a.textContent)")
    expected = [e["node"]["name"] for e in server.graphql(ALICE, RUNS)["runs"]["edges"]]
    assert shown == expected and len(shown) == 20
    assert page.inner_text("#who") == "alice"
    assert sent == ["Runs"], "the first load must be one request, none per run"
    assert page.evaluate("sessionStorage.getItem('runql.token')") == ALICE
    if os.environ.get("RUNQL_UI_SCREENSHOT"):
        page.mouse.move(0, 0)  # no row under the pointer
        page.screenshot(path=os.environ["RUNQL_UI_SCREENSHOT"])

    # Open a running run the viewer may stop; the spec is read only when opened.
    running = server.graphql(ALICE, RUNS, filter={"statuses": ["RUNNING"]})["runs"]["edges"]
    run = next(e["node"] for e in running if e["node"]["viewerCanStop"])
    page.evaluate("window.notReloaded = true")
    sent.clear()
    page.click(f"{ROWS}[data-run-id='{run['id']}'] td.name a")
    page.wait_for_selector(f".run-head h1:has-text('{run['name']}') .s-running")
    page.wait_for_selector("table.grid tbody tr[data-job-id]")
    assert sent == ["Run"]
    page.click(".spec-box summary")
    page.wait_for_selector(".spec-box pre:has-text('description')")
    assert sent == ["Run", "RunSpec"]

    # Stop it from the UI: the status changes in place, with the per-run results shown. The
    # request also names a run that does not exist (added on its way to the server), so
    # the server's per-run refusal shows too.
    page.route("**/graphql", _with_unknown_run)
    page.click("button.act-stop")
    page.wait_for_selector(".notices :text('Stop: 1 of 2 applied.')")
    assert "run 999999 NOT_FOUND" in page.inner_text(".notices li")
    page.unroute("**/graphql", _with_unknown_run)
    page.wait_for_selector(".run-head h1 :is(.s-terminating, .s-terminated)")
    assert page.evaluate("window.notReloaded") is True
    assert sent == ["Run", "RunSpec", "StopRuns"]

    # A job's retry history is read on demand, one request for that job.
    retried = server.graphql(ALICE, RETRIED)["runs"]["edges"][0]["node"]
    tries = retried["jobs"][0]["submissionNum"] + 1  # 0 for the first try
    assert tries > 1
    page.evaluate(f"location.hash = '#/runs/{retried['id']}'")  # off the first page now
    page.click(f"button.link:text('{tries} tries')")
    page.wait_for_selector("tr.history[data-submission]")
    assert page.locator("tr.history[data-submission]").count() == tries
    if os.environ.get("RUNQL_UI_SCREENSHOT"):
        page.screenshot(path=os.environ["RUNQL_UI_SCREENSHOT"].replace(".png", "-run.png"))
    assert sent == ["Run", "RunSpec", "StopRuns", "Run", "JobHistory"]

    # A DAG run's page lists its jobs in dependency order, each with what it waits for.
    dag = server.graphql(ALICE, RETRIED.replace("bert-01", "resnet-00"))["runs"]["edges"][0]
    page.evaluate(f"location.hash = '#/runs/{dag['node']['id']}'")
    page.wait_for_selector(".order li >> nth=2")
    steps = page.eval_on_selector_all(
        ".order li",
        """items => items.map(li => [li.querySelector('b').textContent,
            li.querySelector('.muted')?.textContent.trim() ?? '',
            li.querySelectorAll('.status').length])""",
    )
    assert steps == [
        ["prepare", "", 1],
        ["train", "after prepare", 2],
        ["evaluate", "after train", 1],
    ]

    # Back on the list (kept live underneath), the stopped run shows its new status, and a
    # run submitted by another client appears within 2 s, with no request from the page.
    page.click("a.back")
    row = f"{ROWS}[data-run-id='{run['id']}']"
    assert page.get_attribute(row, "data-status") in {"TERMINATING", "TERMINATED"}
    submit_run(server, "from-another-client")
    page.wait_for_selector(
        f"{ROWS}:first-child td.name a:text('from-another-client')", timeout=2000
    )
    assert sent == ["Run", "RunSpec", "StopRuns", "Run", "JobHistory", "Run"]


def test_page_recovers_when_the_server_restarts(server: DemoServer, page: Any) -> None:
    sign_in(page, server, ALICE)
    page.wait_for_selector(ROWS)
    page.wait_for_selector("#live[data-state=live]")
    page.evaluate("window.notReloaded = true")

    server.kill()
    page.wait_for_selector("#live[data-state=reconnecting]:text('reconnecting')")
    server.start()
    # Submitted before the page is back: it arrives from the log when the page resumes
    # from its last cursor, then the stream is live again.
    submit_run(server, "while-reconnecting")
    page.wait_for_selector("#live[data-state=live]")
    page.wait_for_selector(f"{ROWS} td.name a:text('while-reconnecting')")
    submit_run(server, "after-reconnect")  # no polling: only the stream can show it
    page.wait_for_selector(f"{ROWS}:first-child td.name a:text('after-reconnect')")
    assert page.evaluate("window.notReloaded") is True
    # The browser logs each refused connection while the server was down: expected here.
    page.errors[:] = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e]


def test_filters_search_and_paging_each_read_one_page(server: DemoServer, page: Any) -> None:
    sign_in(page, server, DEMO_USERS["admin"][0])  # sees all 30 demo runs: two pages
    page.wait_for_selector(ROWS)
    sent = graphql_posts(page)
    names = lambda: page.eval_on_selector_all(  # noqa: E731
        f"{ROWS} td.name a", "links => links.map(a => a.textContent)"
    )
    first = names()
    assert len(first) == 20

    page.click(".pager button:text('Older')")
    page.wait_for_function("() => !document.querySelector('.pager button').disabled")
    older = names()
    assert len(older) == 10 and not set(older) & set(first)
    page.click(".pager button:text('Newer')")
    page.wait_for_function("() => document.querySelector('.pager button').disabled")
    assert names() == first

    page.select_option("select[aria-label=Project]", "infra")
    _wait_for_rows(page, "rows.length === 10 && rows.every(r => r.project === 'infra')")
    page.select_option("select[aria-label=Status]", "DONE")
    _wait_for_rows(page, "rows.length > 0 && rows.every(r => r.status === 'DONE')")
    page.select_option("select[aria-label=Status]", "")
    page.fill("input[type=search]", "etl")
    _wait_for_rows(page, "rows.length === 2 && rows.every(r => r.name.startsWith('etl'))")
    assert sent == ["Runs"] * 6
