"""The Starlette application: ``/graphql`` (GraphiQL, HTTP, websockets), the web UI at
``/ui`` (``runql.web.ui``), health checks,
Prometheus metrics (``/metrics``, ``runql.observe.metrics``) and OpenTelemetry traces
(``runql.observe.tracing``)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from runql.db.engine import Database
from runql.db.migrate import is_current
from runql.observe import metrics, tracing
from runql.observe.logs import configure_logging
from runql.schema import build_schema
from runql.schema.extensions.tracing import operation_span
from runql.settings import Settings
from runql.tasks.event_listener import EventListener
from runql.tasks.event_pruner import EventPruner
from runql.tasks.lease_sweeper import LeaseSweeper
from runql.web import graphiql
from runql.web.graphql_view import RunqlGraphQL
from runql.web.ui import ui_routes


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    tracer_provider: Any = None,
) -> Starlette:
    """Build the ASGI app. Pass ``db`` to share an existing database (tests, benchmarks),
    ``tracer_provider`` to trace with it (tests; otherwise ``OTEL_*`` decide)."""
    settings = settings or Settings.from_env()
    database = db or Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
        event_log=settings.live_updates,
    )
    configure_logging(settings)
    app_metrics = metrics.Metrics() if settings.metrics_enabled else None
    if app_metrics is not None:
        app_metrics.watch_pool(database.engine)
    traced = tracing.setup(tracer_provider)
    if traced is not None:
        traced.trace_engine(database.engine)
    listener = EventListener(
        database, poll_seconds=settings.event_poll_seconds, metrics=app_metrics
    )
    pruner = EventPruner(
        database,
        interval_seconds=settings.event_prune_seconds,
        retention=dt.timedelta(hours=settings.event_retention_hours),
    )
    schema = build_schema(settings, outermost=[operation_span(traced.tracer)] if traced else [])
    graphql = RunqlGraphQL(
        schema, db=database, settings=settings, metrics=app_metrics, events=listener
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            current = await is_current(database)
        except (OSError, SQLAlchemyError) as exc:  # server unreachable, database missing
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        if not current:
            return JSONResponse({"status": "migrations pending"}, 503)
        # A listener that is degraded (database trouble it retries through) leaves the
        # server ready for queries; only one that stopped (a bug) takes it out.
        if not lifespan_started:  # embedded without a lifespan: no listener to report
            return JSONResponse({"status": "ready"})
        if not settings.live_updates:
            return JSONResponse({"status": "ready", "liveUpdates": "off"})
        if listener.state == "stopped":
            return JSONResponse(
                {"status": "event listener stopped", "eventListener": listener.health()}, 503
            )
        return JSONResponse({"status": "ready", "eventListener": listener.health()})

    sweeper = LeaseSweeper(
        database, interval_seconds=settings.lease_sweep_seconds, metrics=app_metrics
    )

    lifespan_started = False

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal lifespan_started
        if settings.lease_sweep_seconds > 0:  # 0 turns the lease sweeper off
            sweeper.start()
        if settings.live_updates:
            listener.start()
            if settings.event_prune_seconds > 0:
                pruner.start()
        lifespan_started = True
        yield
        await pruner.stop()
        await listener.stop()
        await sweeper.stop()
        if db is None:
            await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *_graphiql_routes(settings),
            *ui_routes(settings, schema._schema),
            *_metrics_routes(settings, app_metrics),
        ],
        lifespan=lifespan,
        middleware=[*([traced.middleware()] if traced else []), *_cors(settings)],
    )
    app.state.db = database
    app.state.metrics = app_metrics
    app.state.settings = settings
    app.state.lease_sweeper = sweeper
    app.state.event_listener = listener
    app.state.event_pruner = pruner
    return app


def create_worker_app() -> Starlette:
    """The app of one ``runql serve`` worker process.

    uvicorn starts each worker by importing this name ("runql.web.app:create_worker_app",
    ``factory=True``), so a worker reads its settings from the environment (``runql serve``
    puts the worker count there too). ``RUNQL_DB_POOL_SIZE`` is the server's total: each of
    the N workers keeps its share, rounded up, so N processes stay within the connections
    PostgreSQL was sized for instead of opening N times as many.
    """
    settings = Settings.from_env()
    share = -(-settings.db_pool_size // settings.worker_count())
    return create_app(dataclasses.replace(settings, db_pool_size=share))


def _cors(settings: Settings) -> list[Middleware]:
    """CORS headers for the configured browser origins (none configured: none sent)."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-Id"],
            expose_headers=["X-Request-Id"],
            max_age=600,
        )
    ]


def _metrics_routes(settings: Settings, app_metrics: metrics.Metrics | None) -> list[BaseRoute]:
    """``GET /metrics`` in Prometheus' text format: absent (404) when ``RUNQL_METRICS`` is
    off, behind ``Authorization: Bearer <token>`` when it is a token (401 otherwise)."""
    if app_metrics is None:
        return []
    token = settings.metrics_token

    async def scrape(request: Request) -> Response:
        if token is not None and not _bearer_matches(request, token):
            return PlainTextResponse(
                "send Authorization: Bearer <RUNQL_METRICS>\n",
                401,
                headers={"WWW-Authenticate": 'Bearer realm="runql-metrics"'},
            )
        if metrics.multiprocess_mode():  # reads every worker's files
            body = await run_in_threadpool(app_metrics.render)
        else:
            body = app_metrics.render()
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )


def _graphiql_routes(settings: Settings) -> list[BaseRoute]:
    """GraphiQL's own assets (runql/web/graphiql), so the page needs no other host."""
    if not settings.graphiql:
        return []
    graphiql.graphiql_page()  # at startup: logs the one line if the assets are missing
    return [Mount(graphiql.ASSETS_PATH, app=graphiql.asset_files(), name="graphiql-assets")]
