"""What a client sees of an error.

* Expected failures pass unchanged: ``runql.resolvers.errors.ClientError`` (bad input, not
  found, forbidden, over a limit) and the errors GraphQL itself produces about the request
  (syntax, validation, variable coercion), which get a stable ``extensions.code`` when
  they have none.
* A statement cancelled by PostgreSQL's ``statement_timeout`` becomes ``STATEMENT_TIMEOUT``
  naming the setting, logged as a warning.
* Anything else is a bug or an outage: the client gets ``Internal server error`` with
  ``extensions: {code: INTERNAL_SERVER_ERROR, requestId}``; the traceback is logged with
  the same request id. No stack trace, SQL or file path reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError

from runql.error_codes import ErrorCode
from runql.observe.logs import current_request_id
from runql.resolvers.errors import ClientError, is_statement_timeout

logger = logging.getLogger("runql.errors")

INTERNAL_MESSAGE = "Internal server error"
_TOKEN_LIMIT_MARKER = "tokens. Parsing aborted"


def _code(error: GraphQLError) -> str | None:
    return (error.extensions or {}).get("code")


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if _code(error) is None:
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def _located(template: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=template.nodes,
        source=template.source,
        positions=template.positions,
        path=template.path,
        extensions=extensions,
    )


#: strawberry's refusals of the request itself (an operation type this transport does not
#: run, no operation to pick): client mistakes, told as they are.
_REQUEST_REFUSALS = (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError)


def _is_expected(error: GraphQLError) -> bool:
    if isinstance(error, ClientError) or isinstance(error.original_error, ClientError):
        return True
    if isinstance(error.original_error, _REQUEST_REFUSALS):
        return True
    if error.original_error is None:
        return True  # produced by GraphQL about the document, or already masked
    # Variable coercion: located in the document, before any resolver ran.
    return error.path is None and bool(error.nodes)


def public_error(
    error: GraphQLError,
    request_id: str | None,
    *,
    pre_execution: bool = False,
    logged: set[int] | None = None,
) -> GraphQLError:
    """The error as a client may see it (logs the unexpected ones).

    ``logged``: ids of the exceptions already logged for this result. A failed loader
    batch hands one exception to every key of the batch; it is logged once, not once per
    field that awaited it (a 40,000-key batch would write 40,000 tracebacks)."""
    original = error.original_error
    seen = logged if logged is not None else set()
    first = id(original or error) not in seen
    seen.add(id(original or error))
    if is_statement_timeout(original):
        if first:
            logger.warning(
                "statement timeout", extra={"request_id": request_id, "path": error.path}
            )
        return _located(
            error,
            "the database statement took longer than the statement timeout "
            "(RUNQL_STATEMENT_TIMEOUT_MS); ask for less (a smaller page, fewer fields)",
            {"code": ErrorCode.STATEMENT_TIMEOUT, "setting": "RUNQL_STATEMENT_TIMEOUT_MS"},
        )
    if not _is_expected(error):
        exc = original or error
        if first:
            logger.error(
                "unexpected error: %s",
                type(exc).__name__,
                exc_info=(type(exc), exc, exc.__traceback__),
                extra={"request_id": request_id, "path": error.path},
            )
        extensions: dict[str, object] = {"code": ErrorCode.INTERNAL_SERVER_ERROR}
        if request_id:
            extensions["requestId"] = request_id
        return _located(error, INTERNAL_MESSAGE, extensions)
    if isinstance(error, GraphQLSyntaxError):
        limit = _TOKEN_LIMIT_MARKER in error.message
        return _with_code(
            error, ErrorCode.LIMIT_EXCEEDED if limit else ErrorCode.GRAPHQL_PARSE_FAILED
        )
    if pre_execution:
        return _with_code(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)
    if error.path is None:  # variable coercion: a request error of the execution phase
        return _with_code(error, ErrorCode.BAD_USER_INPUT)
    return error


def public_errors(
    errors: Sequence[GraphQLError], request_id: str | None, *, pre_execution: bool = False
) -> list[GraphQLError]:
    logged: set[int] = set()
    return [public_error(e, request_id, pre_execution=pre_execution, logged=logged) for e in errors]


class ErrorMasking(SchemaExtension):
    """Applies :func:`public_error` to every result, HTTP and WebSocket alike, and to
    each result a subscription streams (``on_operation`` sees only the last one, after
    the stream ended)."""

    def on_stream_result(self, result: Any) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            context = self.execution_context.context
            request_id = getattr(context, "request_id", None) or current_request_id()
            result.errors = public_errors(
                errors, request_id, pre_execution=isinstance(result, PreExecutionError)
            )
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None) or current_request_id()
        result.errors = public_errors(
            errors, request_id, pre_execution=isinstance(result, PreExecutionError)
        )


__all__ = [
    "INTERNAL_MESSAGE",
    "ErrorMasking",
    "public_error",
    "public_errors",
]
