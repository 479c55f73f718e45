"""Heavy JSON columns (a run's spec, summary and system metrics; a job's spec and result),
read by id only when a query asks for the field: list reads never select them
(``HEAVY_RUN_COLUMNS``, ``HEAVY_JOB_COLUMNS`` in ``runql.db.models``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.dialect import dialect_of
from runql.db.key_lists import in_list
from runql.db.models import HEAVY_JOB_COLUMNS, HEAVY_RUN_COLUMNS, Job, Run

_HEAVY: dict[type, tuple[str, ...]] = {Run: HEAVY_RUN_COLUMNS, Job: HEAVY_JOB_COLUMNS}


async def heavy_columns(
    session: AsyncSession, model: type[Run] | type[Job], ids: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """Heavy ``columns`` of the ``model`` rows of ``ids`` (already known to be visible), in
    one statement: by id, each row's values by column name."""
    unknown = set(columns) - set(_HEAVY[model])
    if unknown:
        kind = model.__tablename__.removesuffix("s")
        raise ValueError(f"not a heavy {kind} column: {sorted(unknown)}")
    cols = [getattr(model, name) for name in columns]
    where = in_list(model.id, dialect_of(session), values=ids)
    rows = await session.execute(select(model.id, *cols).where(where))
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}
