"""Users, projects, memberships and API tokens.

Lookups by id or name take loader batches, which can be long (federation ``_entities``):
each list is one parameter (``runql.db.key_lists``), never one parameter per value.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.enums import MemberRole, UserRole
from runql.db.key_lists import dialect_of, in_list
from runql.db.models import Member, Project, User
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
    rows = await session.scalars(
        select(Project).where(
            in_list(Project.id, dialect_of(session), values=ids),
            visible_projects(viewer, Project.id),
        )
    )
    return {project.id: project for project in rows}


async def projects_by_names(
    session: AsyncSession, viewer: Viewer, names: Sequence[str]
) -> dict[str, Project]:
    rows = await session.scalars(
        select(Project).where(
            in_list(Project.name, dialect_of(session), values=names, item_type=String()),
            visible_projects(viewer, Project.id),
        )
    )
    return {project.name: project for project in rows}


async def projects_page(
    session: AsyncSession, viewer: Viewer, *, after_name: str | None, limit: int
) -> list[Project]:
    """Visible projects ordered by name, keyset-paged; fetch ``limit + 1`` to see more."""
    stmt = select(Project).where(visible_projects(viewer, Project.id))
    if after_name is not None:
        stmt = stmt.where(Project.name > after_name)
    return list(await session.scalars(stmt.order_by(Project.name).limit(limit)))


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
