"""OpenTelemetry traces, with an in-memory exporter: one runs-page request is one trace
(the HTTP request, its GraphQL operation, the operation's SQL statements), with no span
per field; its log line's request id is the trace id. With no ``OTEL_*`` configuration
nothing of OpenTelemetry is even imported."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from runql.db.engine import Database, record_statements
from runql.db.enums import MemberRole
from runql.db.lifecycle import JobDefinition
from runql.observe import tracing
from runql.settings import Settings
from runql.web.app import create_app
from tests.factories import Factory

ROOT = Path(__file__).resolve().parents[2]

RUNS_PAGE = """
query RunsPage {
  runs(first: 10) {
    edges { node { id name status statusMessage user { name }
      jobs(submissionsLimit: 1) { id name status } } }
  }
}
"""


async def test_a_runs_page_request_is_one_trace_request_operation_statements(
    db: Database, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(settings, db=db, tracer_provider=provider)
    alice = await factory.user("alice")
    project = await factory.project("ml", [(alice, MemberRole.USER)])
    for _ in range(3):
        await factory.run(project, alice, jobs=[JobDefinition("a"), JobDefinition("b")])
    await db.wakeups.drain()  # the NOTIFY after the factory's commits: a trace of its own
    exporter.clear()  # (the factory's statements went through the same engine)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as http:
        with record_statements() as sql, caplog.at_level(logging.INFO, logger="runql.request"):
            response = await http.post(
                "/graphql",
                json={"query": RUNS_PAGE},
                headers={"Authorization": f"Bearer {alice.token}", "X-Request-Id": "mine"},
            )
    assert response.status_code == 200 and "errors" not in response.json()
    assert len(response.json()["data"]["runs"]["edges"]) == 3
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()

    assert len({span.context.trace_id for span in spans}) == 1  # type: ignore[union-attr]
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert request.parent is None
    (operation,) = [s for s in spans if s.name == "query RunsPage"]
    assert operation.parent is not None
    assert operation.parent.span_id == request.context.span_id  # type: ignore[union-attr]
    assert dict(operation.attributes or {}) == {
        "graphql.operation.name": "RunsPage",
        "graphql.operation.type": "query",
    }
    statements = [s for s in spans if s.kind == SpanKind.CLIENT]
    # No other spans: none per field (the page resolves dozens), none per ASGI message.
    assert len(spans) == 2 + len(statements)
    assert len(statements) == sql.count  # one span per SQL statement
    parents = [s.parent.span_id for s in statements]  # type: ignore[union-attr]
    under_operation = parents.count(operation.context.span_id)  # type: ignore[union-attr]
    # The API-token lookup runs before the operation (building its context), as the
    # request's child; the page's own reads are the operation's children.
    assert parents.count(request.context.span_id) == 1  # type: ignore[union-attr]
    assert under_operation == sql.count - 1 >= 2

    # Logs and traces agree: the request id is the trace id (the client's is not used).
    trace_id = format(request.context.trace_id, "032x")  # type: ignore[union-attr]
    assert response.headers["x-request-id"] == trace_id
    (line,) = [r for r in caplog.records if r.name == "runql.request"]
    assert line.request_id == trace_id  # type: ignore[attr-defined]


async def test_an_app_built_again_on_one_database_traces_each_statement_once(
    db: Database, settings: Settings, factory: Factory
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    create_app(settings, db=db, tracer_provider=provider)
    exporter.clear()
    await factory.user("bob")
    once = len(exporter.get_finished_spans())
    create_app(dataclasses.replace(settings, max_aliases=3), db=db, tracer_provider=provider)
    exporter.clear()

    await factory.user("carol")

    assert len(exporter.get_finished_spans()) == once > 0


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_SERVICE_NAME": "runql"}, False),  # naming a service asks for nothing
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_otel_variables_ask_for_it(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing.requested(environ) is wanted


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


APP_MODULES = """
import json, sys
from runql.web.app import create_app
from runql.settings import Settings
app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
print(json.dumps({
    "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "middleware": [m.cls.__name__ for m in app.user_middleware],
}))
"""


def test_without_otel_configuration_nothing_of_opentelemetry_is_loaded() -> None:
    """No cost when off: not one OpenTelemetry module imported, no middleware added."""
    loaded = json.loads(_python(APP_MODULES))

    assert loaded == {"otel": [], "middleware": []}


def test_with_otel_configuration_the_request_is_traced() -> None:
    loaded = json.loads(_python(APP_MODULES, OTEL_TRACES_EXPORTER="console"))

    assert loaded["middleware"] == ["OpenTelemetryMiddleware"]
    assert "opentelemetry.instrumentation.sqlalchemy.engine" in loaded["otel"]


def test_otel_configuration_without_the_extra_logs_one_warning_and_serves() -> None:
    """``runql[otel]`` missing (its packages hidden from import): a warning, no tracing."""
    code = (
        "import sys\n"
        "for name in ('opentelemetry', 'opentelemetry.sdk', 'opentelemetry.sdk.trace',"
        " 'opentelemetry.instrumentation', 'opentelemetry.instrumentation.asgi',"
        " 'opentelemetry.instrumentation.sqlalchemy'):\n"
        "    sys.modules[name] = None\n" + APP_MODULES
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT), "OTEL_TRACES_EXPORTER": "console"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["middleware"] == []
    assert "runql[otel] is not installed: tracing is off" in done.stderr
