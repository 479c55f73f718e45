"""Who sees what, as SQL.

A global ADMIN sees every project; anyone else sees the projects they are a member of.
The rule is a subquery on ``members`` so it composes into any statement: project ids are
never loaded into Python and sent back as an ``IN (...)`` list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, true
from sqlalchemy.orm import InstrumentedAttribute

from runql.db.models import Member


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller."""

    user_id: int
    name: str
    is_admin: bool


def visible_projects(viewer: Viewer, project_id: InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """A predicate on ``project_id`` that holds for the projects ``viewer`` may see."""
    return _visible(viewer.is_admin, project_id, viewer.user_id)


def visible_projects_bound(
    is_admin: bool, project_id: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """:func:`visible_projects` for a statement built once and run for any viewer with
    ``is_admin``: the viewer's user id is the bound parameter ``viewer_id``."""
    return _visible(is_admin, project_id, bindparam("viewer_id"))


def viewer_params(viewer: Viewer) -> dict[str, Any]:
    """The bound parameters :func:`visible_projects_bound` needs for ``viewer``."""
    return {} if viewer.is_admin else {"viewer_id": viewer.user_id}


def _visible(is_admin: bool, project_id: InstrumentedAttribute[int], user_id: Any) -> Any:
    if is_admin:
        return true()
    memberships = select(Member.project_id).where(Member.user_id == user_id)
    return project_id.in_(memberships.scalar_subquery())
