"""Federation entity references (``_entities``): a gateway's representations to rows.

Each lookup goes through the request's loaders, so a gateway asking for 100 entities of
mixed types costs one statement per type and key, and the usual visibility rules apply:
an entity the viewer may not see resolves to null, exactly like an unknown id.
"""

from __future__ import annotations

from runql.db.models import Job, Project, Run, User
from runql.resolvers.checks import check_text, parse_id
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput


async def run_reference(ctx: Context, id: str) -> Run | None:
    parsed = parse_id(str(id), "id")
    return None if parsed is None else await ctx.loaders.run_by_id.load(parsed)


async def job_reference(ctx: Context, id: str) -> Job | None:
    parsed = parse_id(str(id), "id")
    return None if parsed is None else await ctx.loaders.job_by_id.load(parsed)


async def user_reference(ctx: Context, id: str) -> User | None:
    parsed = parse_id(str(id), "id")
    return None if parsed is None else await ctx.loaders.visible_user_by_id.load(parsed)


async def project_reference(ctx: Context, id: str | None, name: str | None) -> Project | None:
    """``Project`` has two keys: ``id`` and ``name``."""
    if id is not None:
        parsed = parse_id(str(id), "id")
        return None if parsed is None else await ctx.loaders.project_by_id.load(parsed)
    if name is not None:
        checked = check_text(str(name), "name")
        project: Project | None = await ctx.loaders.project_by_name.load(checked)
        return project
    raise BadInput("representations", "a Project representation needs its id or name")
