"""Which database a session talks to, asked one way in the db layer.

A few statements are built per backend where the planners differ (SQLite plans without
statistics and takes no row locks; PostgreSQL takes arrays). Code holding a session asks
here; code that has no session yet (a resolver choosing whether to take the write lock)
asks its ``Database`` (``is_sqlite``, from the URL it was built with).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

SQLITE = "sqlite"


def dialect_of(session: AsyncSession) -> str:
    """The SQLAlchemy dialect name of ``session``'s database (``"sqlite"``, ``"postgresql"``)."""
    return session.get_bind().dialect.name


def is_sqlite(session: AsyncSession) -> bool:
    return dialect_of(session) == SQLITE
