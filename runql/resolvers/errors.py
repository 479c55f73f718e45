"""Errors a client is meant to see: a stable ``extensions.code`` and a clear message.

Anything else raised while resolving is unexpected and gets masked by the schema's error
handling (see ``runql.schema.extensions.errors``), except a database statement timeout, which that
handling recognises with ``is_statement_timeout`` (re-exported here from ``runql.db``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from runql.db.errors import is_statement_timeout as is_statement_timeout
from runql.error_codes import ErrorCode


class ClientError(GraphQLError):
    """An expected failure: bad input, not found, forbidden, over a limit."""

    code: ErrorCode = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, *, code: ErrorCode | None = None, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code or self.code, **extensions})


class BadInput(ClientError):
    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, field: str, message: str, **extensions: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **extensions)


class LimitExceeded(ClientError):
    code = ErrorCode.LIMIT_EXCEEDED

    def __init__(self, field: str, limit: int, actual: int | None = None) -> None:
        got = "" if actual is None else f" (got {actual})"
        super().__init__(f"{field} must be at most {limit}{got}", field=field, limit=limit)


class SettingExceeded(ClientError):
    """Over a server-side limit that no argument names: ``extensions.setting`` does."""

    code = ErrorCode.LIMIT_EXCEEDED

    def __init__(self, message: str, setting: str, limit: int) -> None:
        super().__init__(f"{message} ({setting})", setting=setting, limit=limit)


class Unauthenticated(ClientError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, message: str = "missing or invalid API token") -> None:
        super().__init__(
            message + ": send the header 'Authorization: Bearer <token>' (over a WebSocket,"
            " or put it under 'Authorization' in the connection_init payload)"
        )


class Forbidden(ClientError):
    code = ErrorCode.FORBIDDEN


class NotFound(ClientError):
    code = ErrorCode.NOT_FOUND


@dataclass(frozen=True)
class ItemError:
    """Why one item of a bulk call (stopRuns, completeJobs, ...) was not applied: data in
    the payload, not a top-level error, so the other items still answer."""

    code: str
    message: str

    @classmethod
    def of(cls, exc: ClientError) -> ItemError:
        """The item's answer for a client error raised while checking it."""
        return cls(code=str((exc.extensions or {}).get("code", exc.code)), message=exc.message)
