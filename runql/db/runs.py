"""Named read queries over runs: the keyset-paged runs list and lookups by id.

Id lists come from loaders and can be long: they are one list parameter
(``runql.db.key_lists``), never one parameter per id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.dialect import dialect_of
from runql.db.enums import ACTIVE_RUN_STATUSES, RunStatus
from runql.db.heavy_columns import heavy_columns
from runql.db.key_lists import in_list
from runql.db.models import Project, Run, User
from runql.db.paging import page_rows
from runql.db.visibility import Viewer, visible_projects

#: A position in the runs list: ``(submitted_at, id)``, newest first.
RunKey = tuple[dt.datetime, int]


@dataclass(frozen=True)
class RunFilter:
    statuses: tuple[RunStatus, ...] = ()
    only_active: bool = False
    user_name: str | None = None
    submitted_after: dt.datetime | None = None
    submitted_before: dt.datetime | None = None
    name_contains: str | None = None


@dataclass(frozen=True)
class RunsPage:
    """A page of runs with their users and projects (joined in the same statement:
    almost every runs list shows them, and the join costs less than a second query)."""

    runs: list[Run]
    users: dict[int, User]
    projects: dict[int, Project]
    has_more: bool


def _filtered(viewer: Viewer, project_name: str | None, filter: RunFilter) -> Select[Any]:
    stmt = select(Run).where(Run.deleted.is_(False), visible_projects(viewer, Run.project_id))
    if project_name is not None:
        stmt = stmt.where(
            Run.project_id
            == select(Project.id).where(Project.name == project_name).scalar_subquery()
        )
    if filter.statuses:
        stmt = stmt.where(Run.status.in_(filter.statuses))
    if filter.only_active:
        stmt = stmt.where(Run.status.in_(sorted(ACTIVE_RUN_STATUSES)))
    if filter.user_name is not None:
        stmt = stmt.where(
            Run.user_id == select(User.id).where(User.name == filter.user_name).scalar_subquery()
        )
    if filter.submitted_after is not None:
        stmt = stmt.where(Run.submitted_at >= filter.submitted_after)
    if filter.submitted_before is not None:
        stmt = stmt.where(Run.submitted_at < filter.submitted_before)
    if filter.name_contains:
        escaped = filter.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Run.name.like(f"%{escaped}%", escape="\\"))
    return stmt


async def runs_page(
    session: AsyncSession,
    viewer: Viewer,
    *,
    project_name: str | None,
    filter: RunFilter,
    limit: int,
    after: RunKey | None = None,
    before: RunKey | None = None,
    backwards: bool = False,
) -> RunsPage:
    """One page of visible runs, newest first, by keyset over ``(submitted_at, id)``.

    Forwards it returns the ``limit`` runs older than ``after``; backwards (``last``) the
    ``limit`` runs newer than ``before``, still newest first; ``has_more`` tells whether
    more exist in the direction of travel (``runql.db.paging``).
    """
    key = tuple_(Run.submitted_at, Run.id)
    stmt = _filtered(viewer, project_name, filter)
    if after is not None:
        stmt = stmt.where(key < tuple_(*after))
    if before is not None:
        stmt = stmt.where(key > tuple_(*before))
    if backwards:
        stmt = stmt.order_by(Run.submitted_at.asc(), Run.id.asc())
    else:
        stmt = stmt.order_by(Run.submitted_at.desc(), Run.id.desc())
    stmt = stmt.add_columns(User, Project).join(User, User.id == Run.user_id)
    stmt = stmt.join(Project, Project.id == Run.project_id)
    rows, has_more = await page_rows(session, stmt, limit)
    if backwards:
        rows.reverse()
    return RunsPage(
        runs=[row[0] for row in rows],
        users={row[1].id: row[1] for row in rows},
        projects={row[2].id: row[2] for row in rows},
        has_more=has_more,
    )


async def runs_by_ids(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> dict[int, Run]:
    """Visible, non-deleted runs by id; invisible and unknown ids are simply absent."""
    rows = await session.scalars(
        select(Run).where(
            in_list(Run.id, dialect_of(session), values=ids),
            Run.deleted.is_(False),
            visible_projects(viewer, Run.project_id),
        )
    )
    return {run.id: run for run in rows}


async def run_columns(
    session: AsyncSession, ids: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """Heavy columns of runs already known to be visible, in one statement."""
    return await heavy_columns(session, Run, ids, columns)
