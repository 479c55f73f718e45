"""``/metrics`` after a scripted session shows exactly what happened in it.

A runs page, a claim of two jobs, one completion batch with an applied item, its
duplicate, a stale token and an unknown job, a renewal batch (one renewed, one of a
finished job), an idle claim, a document that does not parse, a body that is not JSON,
and one expired lease taken back by the sweeper. The app is fresh, so every counter
starts at zero and the exposition (read with prometheus_client's own parser) must hold
exactly these counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest_asyncio
from prometheus_client import generate_latest
from starlette.applications import Starlette

from runql.db.engine import Database, record_statements
from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from runql.observe.metrics import Metrics
from runql.settings import Settings
from runql.web.app import create_app
from tests.factories import Factory, GraphQLClient
from tests.observability.helpers import labels, parse, values
from tests.runner.helpers import claim, complete, completion, renew

RUNS_PAGE = """
query RunsPage {
  runs(first: 10) { edges { node { id name status jobs(submissionsLimit: 1) { id status } } } }
}
"""


@pytest_asyncio.fixture
async def app(db: Database, settings: Settings) -> Starlette:
    """A fresh app with metrics on (so every series starts at zero)."""
    return create_app(dataclasses.replace(settings, metrics="open"), db=db)


@pytest_asyncio.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as client:
        yield client


async def test_metrics_count_exactly_what_a_session_did(
    app: Starlette, http: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    gql = GraphQLClient(http)
    alice = await factory.user("alice")
    project = await factory.project("ml", [(alice, MemberRole.USER)])
    await factory.run(project, alice, jobs=[JobDefinition("a"), JobDefinition("b")])

    with record_statements() as page_sql:
        await gql(RUNS_PAGE, token=alice.token)
    a, b = sorted(await claim(gql, alice.token, limit=2), key=lambda c: c["job"]["name"])
    results = await complete(
        gql,
        alice.token,
        [
            completion(a),
            completion(a),  # a duplicate: answered again, not applied twice
            {**completion(b), "claimToken": "rqc_not-the-claims-token"},  # stale
            {"jobId": "999999", "claimToken": "rqc_x", "status": "DONE"},  # no such job
        ],
    )
    assert [r["error"] and r["error"]["code"] for r in results] == [
        None,
        None,
        "STALE_CLAIM",
        "NOT_FOUND",
    ]
    renewed = await renew(gql, alice.token, [b, a])
    assert [r["error"] and r["error"]["code"] for r in renewed] == [None, "INVALID_STATE"]
    assert await claim(gql, alice.token) == []  # an idle runner's poll
    await gql("query {", token=alice.token, expect_errors=True)  # does not parse
    refused = await http.post("/graphql", content=b"x", headers={"content-type": "text/plain"})
    assert refused.status_code == 415
    sweeper = app.state.lease_sweeper
    sweeper.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert await sweeper.sweep_once() == 1  # b's lease
    await app.state.db.wakeups.drain()  # the NOTIFY after the last commit borrows a connection

    scrape = await http.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    samples = parse(scrape.text)

    assert values(samples, "runql_requests_total") == {
        labels(operation="RunsPage", type="query", outcome="ok"): 1,
        labels(operation="Claim", type="mutation", outcome="ok"): 2,
        labels(operation="Complete", type="mutation", outcome="ok"): 1,
        labels(operation="Renew", type="mutation", outcome="ok"): 1,
        labels(operation="(none)", type="none", outcome="error"): 2,
    }
    assert values(samples, "runql_request_duration_seconds_count") == {
        labels(operation="RunsPage", type="query"): 1,
        labels(operation="Claim", type="mutation"): 2,
        labels(operation="Complete", type="mutation"): 1,
        labels(operation="Renew", type="mutation"): 1,
        labels(operation="(none)", type="none"): 2,
    }
    assert values(samples, "runql_graphql_errors_total") == {
        labels(code="GRAPHQL_PARSE_FAILED"): 1,
        labels(code="UNSUPPORTED_MEDIA_TYPE"): 1,
    }
    statements = values(samples, "runql_request_sql_statements_sum")
    assert statements[labels(type="query")] == page_sql.count > 0
    assert values(samples, "runql_request_sql_statements_count")[labels(type="query")] == 1

    assert values(samples, "runql_jobs_claimed_total") == {labels(): 2}
    assert values(samples, "runql_claim_calls_total") == {
        labels(outcome="claimed"): 1,
        labels(outcome="empty"): 1,
    }
    assert values(samples, "runql_completions_total") == {
        labels(outcome="applied", code=""): 1,
        labels(outcome="duplicate", code=""): 1,
        labels(outcome="stale", code="STALE_CLAIM"): 1,
        labels(outcome="refused", code="NOT_FOUND"): 1,
    }
    assert values(samples, "runql_renewals_total") == {
        labels(outcome="applied", code=""): 1,
        labels(outcome="refused", code="INVALID_STATE"): 1,
    }
    assert values(samples, "runql_leases_expired_total") == {labels(): 1}
    assert values(samples, "runql_lease_sweeps_total") == {labels(outcome="ok"): 1}
    last_sweep = samples[("runql_lease_sweep_last_success_timestamp_seconds", labels())]
    assert abs(last_sweep - dt.datetime.now(dt.UTC).timestamp()) < 60

    pool = db.engine.pool
    assert samples[("runql_db_pool_size", labels())] == pool.size() > 0  # type: ignore[attr-defined]
    assert samples[("runql_db_pool_checked_out", labels())] == 0  # every session returned
    # Declared for live updates, zero until the listener reports.
    assert samples[("runql_subscriptions_open", labels())] == 0
    assert samples[("runql_events_delivered_total", labels())] == 0


async def test_a_failed_sweep_is_counted_and_keeps_the_last_success(
    app: Starlette, http: httpx.AsyncClient, tmp_path: object
) -> None:
    """A sweep that fails on the database counts as failed; no success time is set."""
    sweeper = app.state.lease_sweeper
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    sweeper.db = broken
    try:
        try:
            await sweeper.sweep_once()
        except Exception:
            pass
        else:
            raise AssertionError("a sweep on an unreachable database succeeded")
    finally:
        await broken.dispose()
    samples = parse((await http.get("/metrics")).text)

    assert values(samples, "runql_lease_sweeps_total") == {labels(outcome="failed"): 1}
    assert samples[("runql_lease_sweep_last_success_timestamp_seconds", labels())] == 0


def test_a_request_that_made_no_answer_counts_as_an_error() -> None:
    """Status 0 on the log line: an exception escaped the view before any answer."""
    metrics = Metrics()
    for status in (0, 200, 413):
        facts = SimpleNamespace(
            operation_name="Q", operation_type="query", status=status, error_codes=[]
        )
        metrics.observe_request(facts, 0.01, 1)
    samples = parse(generate_latest(metrics.registry).decode())

    assert values(samples, "runql_requests_total") == {
        labels(operation="Q", type="query", outcome="error"): 2,
        labels(operation="Q", type="query", outcome="ok"): 1,
    }
