"""OpenTelemetry traces (the optional extra ``runql[otel]``), configured only by the
standard ``OTEL_*`` environment variables.

A traced request is one trace: the HTTP request's span (OpenTelemetry's ASGI middleware),
the GraphQL operation's span inside it (``runql.schema.extensions.tracing.OperationSpan``, named
``"<type> <name>"``), and one span per SQL statement inside that (the SQLAlchemy
instrumentation on the engine runql uses). Fields get no spans: a runs page resolves
thousands of them, and their time is the operation's.

Tracing is on when the extra is installed and the environment asks for traces
(:func:`requested`): ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or
an OTLP endpoint is set, and ``OTEL_SDK_DISABLED`` is not ``true``. Otherwise nothing of
OpenTelemetry is imported and nothing is added to the request path: the HTTP view's
only check is one module-level flag (:func:`trace_id`).

When tracing is on, the request id of the JSON log line and of ``X-Request-Id`` is the
trace id, so a log line finds its trace and back.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)

#: Set once a tracer provider is installed in this process; :func:`trace_id` reads it.
_installed = False
#: Engines already traced (apps built again on one database must not trace twice).
_traced_engines: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_provider: Any = None  # the provider built from the environment (one per process)


def requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def available() -> bool:
    """Whether the ``runql[otel]`` packages are installed."""
    try:
        import opentelemetry.instrumentation.asgi
        import opentelemetry.instrumentation.sqlalchemy
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def provider_from_env() -> Any | None:
    """The process's tracer provider built from ``OTEL_*`` (None: tracing off). Logs one
    warning when traces are asked for but the extra is missing."""
    global _provider
    if not requested():
        return None
    if _provider is not None:
        return _provider
    if not available():
        log.warning(
            "OTEL_* variables ask for traces but runql[otel] is not installed: "
            "tracing is off (pip install 'runql[otel]')"
        )
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = "runql"
    # The sampler (OTEL_TRACES_SAMPLER/_ARG), the batch processor (OTEL_BSP_*) and the
    # exporters (OTEL_EXPORTER_OTLP_*) read their own variables.
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def _exporters() -> Iterator[Any]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), through the
    ``opentelemetry_traces_exporter`` entry points the exporter packages declare.
    ``otlp`` follows ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` (``http/protobuf`` by
    default, the one ``runql[otel]`` installs; ``grpc`` needs its exporter package)."""
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp") or "otlp"
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            name = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
        if name not in found:
            raise RuntimeError(
                f"OTEL_TRACES_EXPORTER: no exporter {name!r} is installed "
                f"(installed: {', '.join(sorted(found)) or 'none'})"
            )
        yield found[name].load()()


def trace_id() -> str | None:
    """The current trace's id (32 hex digits) when tracing is on and a span is active."""
    if not _installed:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class Tracing:
    """What an app adds when tracing is on: the ASGI middleware's arguments, the tracer of
    the operation spans (``runql.schema.extensions.tracing``), and the SQL spans of its
    database's engine."""

    def __init__(self, provider: Any) -> None:
        global _installed
        from opentelemetry import trace

        self.provider = provider
        self.tracer = trace.get_tracer("runql", tracer_provider=provider)
        _installed = True

    def middleware(self) -> Any:
        """A Starlette ``Middleware`` for one span per HTTP request."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from starlette.middleware import Middleware

        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],  # one span per request, not per message
        )

    def trace_engine(self, engine: Any) -> None:
        """Child spans for every statement of ``engine`` (an ``AsyncEngine``: its sync
        engine is where SQLAlchemy's cursor events fire). Once per engine."""
        sync_engine = engine.sync_engine
        if sync_engine in _traced_engines:
            return
        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        # The instrumentor's public entry point also patches ``create_engine`` for the
        # whole process and instruments once per process; runql traces its own engine,
        # with the instrumentation's engine tracer. Its connection-usage metric goes to a
        # no-op meter: /metrics reports the pool.
        usage = NoOpMeterProvider().get_meter("runql").create_up_down_counter("unused")
        tracer = trace.get_tracer(
            "opentelemetry.instrumentation.sqlalchemy", tracer_provider=self.provider
        )
        _traced_engines[sync_engine] = EngineTracer(tracer, sync_engine, usage)


def setup(provider: Any | None = None) -> Tracing | None:
    """Tracing for an app: with ``provider`` (tests), or the one ``OTEL_*`` configures;
    None when tracing is off."""
    provider = provider if provider is not None else provider_from_env()
    return None if provider is None else Tracing(provider)


__all__ = ["Tracing", "available", "requested", "setup", "trace_id"]
