"""Root subscription fields (graphql-transport-ws at ``/graphql``; docs/live-updates.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from runql.resolvers import events as event_resolvers
from runql.schema.enums import EventKind
from runql.schema.info import Info
from runql.schema.types import Job, Run


@strawberry.type(description="A change of a run or of one of its jobs, in log order.")
class RunEvent:
    cursor: str = strawberry.field(
        description="Pass as runEvents(after:) to resume right after this event."
    )
    kind: EventKind = strawberry.field(description="What changed.")
    at: dt.datetime = strawberry.field(description="When the change was committed.")
    run: Run = strawberry.field(description="The run, as it is now (not as of the event).")
    job: Job | None = strawberry.field(description="The job, as it is now; null for run events.")


@strawberry.type(description="Jobs are ready to be claimed: claim now instead of polling.")
class JobsReady:
    ready: int = strawberry.field(
        description="How many jobs the viewer could claim when this was sent (a hint)."
    )


@strawberry.type(description="Live updates. Every field needs an API token.")
class Subscription:
    @strawberry.subscription(
        description=(
            "Changes of the runs the viewer can see, oldest first. Without `after`: from now "
            "on. With `after` (an event's cursor, or a runs list's eventCursor): every later "
            "change first, then live ones, with no gap and no duplicate. A cursor older "
            "than the retention, or ahead of the event log (another database's), answers "
            "CURSOR_EXPIRED: list again."
        )
    )
    def run_events(
        self,
        info: Info,
        project: Annotated[
            str | None, strawberry.argument(description="Only this project's runs.")
        ] = None,
        run_ids: Annotated[
            list[strawberry.ID] | None, strawberry.argument(description="Only these runs.")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Resume after this cursor.")
        ] = None,
    ) -> AsyncGenerator[RunEvent, None]:
        return event_resolvers.run_events(
            info.context, project=project, run_ids=run_ids, after=after
        )  # type: ignore[return-value]

    @strawberry.subscription(
        description=(
            "For runners: a signal whenever jobs the viewer could claim appear (at once if "
            "some are ready already). Coalesced; claim until claimJobs answers none."
        )
    )
    def jobs_ready(
        self,
        info: Info,
        project: Annotated[
            str | None, strawberry.argument(description="Only this project's jobs.")
        ] = None,
    ) -> AsyncGenerator[JobsReady, None]:
        return event_resolvers.jobs_ready(info.context, project=project)  # type: ignore[return-value]
