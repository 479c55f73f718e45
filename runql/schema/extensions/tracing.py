"""One OpenTelemetry span per GraphQL operation (runql.observe.tracing sets tracing up)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from runql.schema.extensions.operation_log import operation_type


class OperationSpan(SchemaExtension):
    """One span per GraphQL operation, current while it runs (so its SQL statements are
    its children), named ``"<type> <name>"`` with the ``graphql.operation.*`` attributes
    of OpenTelemetry's semantic conventions. No spans per field."""

    tracer: Any = None

    def on_operation(self) -> Iterator[None]:
        from opentelemetry import context, trace

        span = self.tracer.start_span("graphql", kind=trace.SpanKind.INTERNAL)
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            execution = self.execution_context
            kind = operation_type(execution)
            name = execution.operation_name
            span.update_name(" ".join(part for part in (kind, name) if part) or "graphql")
            if kind:
                span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
            context.detach(token)
            span.end()


def operation_span(tracer: Any) -> type[SchemaExtension]:
    """The :class:`OperationSpan` extension bound to ``tracer`` (one class per app)."""

    class _OperationSpan(OperationSpan):
        pass

    _OperationSpan.tracer = tracer
    return _OperationSpan
