"""Recognise database failures the service answers on purpose (without GraphQL terms)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

#: PostgreSQL's ``query_canceled``: raised when ``statement_timeout`` fires.
QUERY_CANCELED = "57014"


def is_statement_timeout(exc: BaseException | None) -> bool:
    """True for a statement cancelled by PostgreSQL's ``statement_timeout``."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


__all__ = ["QUERY_CANCELED", "is_statement_timeout"]
