"""Root query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry

from runql.resolvers import jobs as job_resolvers
from runql.resolvers import projects as project_resolvers
from runql.resolvers import runs as run_resolvers
from runql.schema.info import Info
from runql.schema.inputs import RunFilterInput
from runql.schema.lookahead import asks_for, runs_page_needs
from runql.schema.types import Job, Project, ProjectConnection, Run, RunConnection, User


@strawberry.type(description="Read the orchestrator's state. Every field needs an API token.")
class Query:
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: Info) -> User:
        return await project_resolvers.me(info.context)  # type: ignore[return-value]

    @strawberry.field(description="Projects the viewer can see, by name.")
    async def projects(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size (max 100).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
    ) -> ProjectConnection:
        return await project_resolvers.projects(info.context, first=first, after=after)  # type: ignore[return-value]

    @strawberry.field(description="A project by name, or null when unknown or not visible.")
    async def project(
        self, info: Info, name: Annotated[str, strawberry.argument(description="Project name.")]
    ) -> Project | None:
        return await project_resolvers.project_by_name(info.context, name)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "Runs the viewer can see, newest first, keyset-paginated by (submittedAt, id). "
            "Use first/after to go forwards, last/before to go backwards."
        )
    )
    async def runs(
        self,
        info: Info,
        project: Annotated[
            str | None, strawberry.argument(description="Only this project's runs.")
        ] = None,
        filter: Annotated[
            RunFilterInput | None, strawberry.argument(description="Narrow the list.")
        ] = None,
        first: Annotated[
            int | None,
            strawberry.argument(description="Page size going forwards (max 100, default 20)."),
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Runs older than this cursor.")
        ] = None,
        last: Annotated[
            int | None, strawberry.argument(description="Page size going backwards (max 100).")
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="Runs newer than this cursor.")
        ] = None,
    ) -> RunConnection:
        return await run_resolvers.runs(  # type: ignore[return-value]
            info.context,
            project=project,
            filter=filter.to_data() if filter else None,
            first=first,
            after=after,
            last=last,
            before=before,
            needs=runs_page_needs(info),
            event_cursor=asks_for(info, "eventCursor"),
        )

    @strawberry.field(description="A run by id, or null when unknown, deleted or not visible.")
    async def run(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Run id.")]
    ) -> Run | None:
        return await run_resolvers.run_by_id(info.context, id)  # type: ignore[return-value]

    @strawberry.field(description="A job submission by id, or null when unknown or not visible.")
    async def job(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Job id.")]
    ) -> Job | None:
        return await job_resolvers.job_by_id(info.context, id)  # type: ignore[return-value]
