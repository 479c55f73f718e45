"""Keyset pages: the one-row look-ahead every paged list query shares.

A page query asks for ``limit + 1`` rows: the extra row, never returned, is how the
caller learns whether more rows follow in the direction of travel (``hasNextPage``, or
``hasPreviousPage`` when paging backwards) without a second, counting statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession


async def page_rows(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], limit: int
) -> tuple[list[Row[*tuple[Any, ...]]], bool]:
    """The first ``limit`` rows of the ordered ``stmt``, and whether more follow."""
    rows = list((await session.execute(stmt.limit(limit + 1))).all())
    return rows[:limit], len(rows) > limit
