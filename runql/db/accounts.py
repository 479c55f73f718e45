"""Accounts: users and their API tokens, projects and their members.

Lookups by id or name take loader batches, which can be long (federation ``_entities``):
each list is one parameter (``runql.db.key_lists``), never one parameter per value.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from runql.db.dialect import dialect_of
from runql.db.enums import MemberRole, UserRole
from runql.db.key_lists import in_list
from runql.db.models import Member, Project, User
from runql.db.paging import page_rows
from runql.db.visibility import Viewer, visible_projects

TOKEN_PREFIX = "rql_"


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: they are random, so a slow hash buys nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def viewer_for_token(session: AsyncSession, token: str) -> Viewer | None:
    row = (
        await session.execute(
            select(User.id, User.name, User.role).where(User.token_hash == hash_token(token))
        )
    ).one_or_none()
    if row is None:
        return None
    return Viewer(user_id=row.id, name=row.name, is_admin=row.role == UserRole.ADMIN)


async def create_user(
    session: AsyncSession, name: str, *, admin: bool = False, token: str | None = None
) -> tuple[User, str]:
    """Create a user; returns it with its API token (shown once, stored hashed)."""
    token = token or new_token()
    user = User(
        name=name, role=UserRole.ADMIN if admin else UserRole.USER, token_hash=hash_token(token)
    )
    session.add(user)
    await session.flush()
    return user, token


async def create_project(
    session: AsyncSession, name: str, members: Sequence[tuple[str, MemberRole]] = ()
) -> Project:
    project = Project(name=name)
    session.add(project)
    await session.flush()
    if members:
        names = [member_name for member_name, _ in members]
        result = await session.execute(select(User.name, User.id).where(User.name.in_(names)))
        ids: dict[str, int] = {row.name: row.id for row in result}
        missing = sorted(set(names) - set(ids))
        if missing:
            raise LookupError(f"unknown user(s): {', '.join(missing)}")
        session.add_all(
            Member(project_id=project.id, user_id=ids[member_name], role=role)
            for member_name, role in members
        )
        await session.flush()
    return project


async def users_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, User]:
    rows = await session.scalars(
        select(User).where(in_list(User.id, dialect_of(session), values=ids))
    )
    return {user.id: user for user in rows}


async def visible_users_by_ids(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, User]:
    """Users the viewer may look up by id (federation's ``_entities``): themselves, anyone
    sharing a project with them, everyone for an ADMIN. Others are absent."""
    stmt = select(User).where(in_list(User.id, dialect_of(session), values=ids))
    if not viewer.is_admin:
        shared = select(Member.user_id).where(visible_projects(viewer, Member.project_id))
        stmt = stmt.where((User.id == viewer.user_id) | User.id.in_(shared.scalar_subquery()))
    rows = await session.scalars(stmt)
    return {user.id: user for user in rows}


async def projects_by_ids(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, Project]:
    found = await _visible_projects_in(session, viewer, Project.id, ids)
    return {project.id: project for project in found}


async def projects_by_names(
    session: AsyncSession, viewer: Viewer, names: Sequence[str]
) -> dict[str, Project]:
    found = await _visible_projects_in(session, viewer, Project.name, names, String())
    return {project.name: project for project in found}


async def _visible_projects_in(
    session: AsyncSession,
    viewer: Viewer,
    column: Any,
    values: Sequence[Any],
    item_type: TypeEngine[Any] | None = None,
) -> Sequence[Project]:
    """The visible projects whose ``column`` is one of ``values``."""
    where = in_list(column, dialect_of(session), values=values, item_type=item_type)
    return (
        await session.scalars(select(Project).where(where, visible_projects(viewer, Project.id)))
    ).all()


@dataclass(frozen=True)
class ProjectsPage:
    projects: list[Project]
    has_more: bool


async def projects_page(
    session: AsyncSession, viewer: Viewer, *, after_name: str | None, limit: int
) -> ProjectsPage:
    """The ``limit`` visible projects after ``after_name``, by name (keyset-paged)."""
    stmt = select(Project).where(visible_projects(viewer, Project.id))
    if after_name is not None:
        stmt = stmt.where(Project.name > after_name)
    rows, has_more = await page_rows(session, stmt.order_by(Project.name), limit)
    return ProjectsPage(projects=[row[0] for row in rows], has_more=has_more)


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def member_roles(
    session: AsyncSession, viewer: Viewer, project_ids: Sequence[int]
) -> dict[int, MemberRole]:
    """The viewer's role in each of ``project_ids`` where they are a member."""
    rows = await session.execute(
        select(Member.project_id, Member.role).where(
            Member.user_id == viewer.user_id,
            in_list(Member.project_id, dialect_of(session), values=project_ids),
        )
    )
    return {row.project_id: row.role for row in rows}
