"""Resolvers for the viewer and projects."""

from __future__ import annotations

from runql.db import accounts as account_queries
from runql.db.models import Project, User
from runql.resolvers.checks import check_text
from runql.resolvers.context import Context
from runql.resolvers.pagination import Page, decode_cursor, encode_cursor, page_size

CURSOR_KIND = "projects"
DEFAULT_PAGE_SIZE = 50


async def me(ctx: Context) -> User:
    user = await ctx.loaders.user_by_id.load(ctx.viewer.user_id)
    assert user is not None, "the authenticated user exists"
    return user


async def projects(ctx: Context, *, first: int | None, after: str | None) -> Page[Project]:
    limit, _ = page_size(first, None, maximum=ctx.settings.max_page_size, default=DEFAULT_PAGE_SIZE)
    secret = ctx.settings.secret_key
    after_name = None
    if after:
        after_name = str(decode_cursor(secret, CURSOR_KIND, after, argument="after")[0])
    async with ctx.db.read() as session:
        page = await account_queries.projects_page(
            session, ctx.viewer, after_name=after_name, limit=limit
        )
    return Page.build(
        page.projects,
        lambda p: encode_cursor(secret, CURSOR_KIND, [p.name]),
        has_next_page=page.has_more,
        has_previous_page=after is not None,
    )


async def project_by_name(ctx: Context, name: str) -> Project | None:
    project: Project | None = await ctx.loaders.project_by_name.load(check_text(name, "name"))
    return project
