"""Puts each operation's name and type on its request's log line (and so its metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from runql.observe.logs import current_request


class OperationNameLogger(SchemaExtension):
    """Puts the executed operation's name (given, or the document's only one) and type on
    the request's log line (and so on its metrics)."""

    def on_operation(self) -> Iterator[None]:
        yield
        log = current_request()
        if log is not None and log.operation_name is None:
            log.operation_name = self.execution_context.operation_name
        if log is not None and log.operation_type is None:
            log.operation_type = operation_type(self.execution_context)


def operation_type(context: Any) -> str | None:
    """``query``/``mutation``/``subscription`` of a strawberry execution context, or None
    when the document did not parse or names no operation it has."""
    try:
        return str(context.operation_type.value)
    except Exception:  # no document, or an unknown operation name: nothing ran
        return None
