"""Object types. Thin on purpose: scalar fields read attributes of the ORM rows the
resolvers return; every field that needs data goes through ``runql.resolvers``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.scalars import JSON

from runql.db import models
from runql.resolvers import entities as entity_resolvers
from runql.resolvers import jobs as job_resolvers
from runql.resolvers import lifecycle as lifecycle_resolvers
from runql.resolvers import runs as run_resolvers
from runql.resolvers.jobs import AnyJob, JobRow
from runql.resolvers.pagination import Edge, PageInfo
from runql.resolvers.runs import JobCounts
from runql.schema.enums import JobStatus, MemberRole, RunStatus, UserRole
from runql.schema.expose import expose
from runql.schema.info import Info
from runql.schema.lookahead import asks_only_for

#: A selection of only these fields is answered from the id the parent already holds.
ID_ONLY = frozenset({"id", "__typename"})

T = TypeVar("T")


def _is(*backing: type) -> Any:
    """``is_type_of`` for types whose resolvers return ORM entities or list rows rather
    than strawberry instances (federation's ``_entities`` union resolves through it)."""

    def is_type_of(cls: type, obj: Any, info: Any) -> bool:
        return isinstance(obj, (*backing, cls))

    return classmethod(is_type_of)


expose(
    PageInfo,
    description="Pagination state of a connection (Relay style).",
    fields={
        "has_next_page": "More items exist after endCursor.",
        "has_previous_page": "More items exist before startCursor.",
        "start_cursor": "Cursor of the first edge.",
        "end_cursor": "Cursor of the last edge.",
    },
)
expose(
    Edge,
    description="An item of a connection with its opaque cursor.",
    fields={"cursor": "Pass to after/before to page from here.", "node": "The item."},
)


@strawberry.type(description="A keyset-paginated list.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the list.")


@strawberry.federation.type(keys=["id"], description="A person or robot with an API token.")
class User:
    id: strawberry.ID = strawberry.field(description="Stable identifier.")
    name: str = strawberry.field(description="Unique user name.")
    role: UserRole = strawberry.field(description="Global role.")
    is_type_of = _is(models.User)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.User | None:
        return await entity_resolvers.user_reference(info.context, id)


@strawberry.federation.type(
    keys=["id", "name"], description="A project: runs belong to one; members see them."
)
class Project:
    id: strawberry.ID = strawberry.field(description="Stable identifier.")
    name: str = strawberry.field(description="Unique project name.")
    created_at: dt.datetime = strawberry.field(description="When the project was created.")
    is_type_of = _is(models.Project)

    @classmethod
    async def resolve_reference(
        cls, info: Info, id: strawberry.ID | None = None, name: str | None = None
    ) -> models.Project | None:
        return await entity_resolvers.project_reference(info.context, id, name)


@strawberry.type(description="A project membership of a user.")
class Membership:
    project: Project = strawberry.field(description="The project.")
    role: MemberRole = strawberry.field(description="The user's role in it.")


expose(
    JobCounts,
    description="Logical jobs of a run per status of their latest submission.",
    fields={
        "blocked": "Waiting for upstream jobs.",
        "submitted": "Ready to be claimed by a runner.",
        "running": "Claimed by a runner.",
        "terminating": "Asked to stop, runner not yet done.",
        "terminated": "Stopped by a user.",
        "aborted": "Aborted (by a user or upstream failure).",
        "failed": "Failed for good.",
        "done": "Finished successfully.",
        "total": "All logical jobs of the run.",
    },
)


@strawberry.federation.type(
    keys=["id"], description="A submitted workload: a DAG of jobs with a config."
)
class Run:
    id: strawberry.ID = strawberry.field(description="Stable identifier.")
    name: str = strawberry.field(description="Unique among the project's live runs.")
    status: RunStatus = strawberry.field(description="Where the run is in its lifecycle.")
    termination_reason: str | None = strawberry.field(description="Why the run ended, if so.")
    priority: int = strawberry.field(description="Higher runs get their jobs claimed first.")
    attempt: int = strawberry.field(description="Bumped on restart; older claims are stale.")
    submitted_at: dt.datetime = strawberry.field(description="When the run was submitted.")
    finished_at: dt.datetime | None = strawberry.field(
        description="When it reached a final status."
    )
    is_type_of = _is(models.Run)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Run | None:
        return await entity_resolvers.run_reference(info.context, id)

    @strawberry.field(description="The project the run belongs to.")
    async def project(self, root: strawberry.Parent[models.Run], info: Info) -> Project:
        return await run_resolvers.run_project(info.context, root)  # type: ignore[return-value]

    # ``user``, ``statusMessage`` and ``jobs`` are plain functions: on a runs page their
    # data is already loaded and they answer at once; elsewhere they answer a future that
    # graphql-core awaits (``runql.resolvers.loaders``, "value_or_future").
    @strawberry.field(description="Who submitted the run.")
    def user(self, root: strawberry.Parent[models.Run], info: Info) -> User:
        return run_resolvers.run_user(info.context, root)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "One line for a UI: done, running, retrying, stopping, stopped by user, "
            "aborted by user, failed: <job>: <reason>, ..."
        )
    )
    def status_message(self, root: strawberry.Parent[models.Run], info: Info) -> str:
        return run_resolvers.run_status_message_of(info.context, root)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "The latest submissions of each logical job (replica, job), newest first within a "
            "logical job. Cost does not grow with retry history."
        )
    )
    def jobs(
        self,
        root: strawberry.Parent[models.Run],
        info: Info,
        submissions_limit: Annotated[
            int,
            strawberry.argument(description="Submissions per logical job (1-100)."),
        ] = 1,
        statuses: Annotated[
            list[JobStatus] | None,
            strawberry.argument(
                description="Keep only those latest submissions in these statuses."
            ),
        ] = None,
    ) -> list[Job]:
        return run_resolvers.run_jobs(info.context, root, submissions_limit, statuses)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "Whether the viewer may stop this run now: it is not finished, and the viewer "
            "submitted it, manages its project (ADMIN/MANAGER) or is an admin."
        )
    )
    async def viewer_can_stop(self, root: strawberry.Parent[models.Run], info: Info) -> bool:
        return await lifecycle_resolvers.viewer_can_stop(info.context, root)

    @strawberry.field(
        description=(
            "Whether the viewer may delete this run now: it is finished, and the viewer "
            "submitted it, manages its project (ADMIN/MANAGER) or is an admin."
        )
    )
    async def viewer_can_delete(self, root: strawberry.Parent[models.Run], info: Info) -> bool:
        return await lifecycle_resolvers.viewer_can_delete(info.context, root)

    @strawberry.field(description="Logical jobs per status of their latest submission.")
    async def job_counts(self, root: strawberry.Parent[models.Run], info: Info) -> JobCounts:
        return await run_resolvers.run_job_counts(info.context, root)

    @strawberry.field(description="The run's configuration as submitted (heavy: loaded on demand).")
    async def spec(self, root: strawberry.Parent[models.Run], info: Info) -> JSON:
        return await run_resolvers.run_column(info.context, root, "spec")

    @strawberry.field(description="Summary metrics reported for the run (heavy).")
    async def summary(self, root: strawberry.Parent[models.Run], info: Info) -> JSON | None:
        return await run_resolvers.run_column(info.context, root, "summary")

    @strawberry.field(description="System metrics of the run's machines (heavy).")
    async def system_metrics(self, root: strawberry.Parent[models.Run], info: Info) -> JSON | None:
        return await run_resolvers.run_column(info.context, root, "system_metrics")


@strawberry.federation.type(keys=["id"], description="One submission of a logical job.")
class Job:
    id: strawberry.ID = strawberry.field(description="Stable identifier of this submission.")
    name: str = strawberry.field(description="The job's name within its run.")
    replica_num: int = strawberry.field(description="Replica index of the logical job.")
    job_num: int = strawberry.field(description="Index of the job within its run.")
    submission_num: int = strawberry.field(description="0 for the first try, +1 per retry.")
    status: JobStatus = strawberry.field(description="Where the submission is in its lifecycle.")
    termination_reason: str | None = strawberry.field(description="Why it ended, if so.")
    termination_message: str | None = strawberry.field(description="Details from the runner.")
    exit_status: int | None = strawberry.field(description="Process exit status, if reported.")
    runner_name: str | None = strawberry.field(description="The runner that claimed it.")
    submitted_at: dt.datetime = strawberry.field(description="When this submission was made.")
    started_at: dt.datetime | None = strawberry.field(description="When a runner claimed it.")
    finished_at: dt.datetime | None = strawberry.field(description="When it ended.")
    lease_expires_at: dt.datetime | None = strawberry.field(
        description="When the runner's claim lapses unless renewed."
    )
    is_type_of = _is(models.Job, JobRow)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Job | None:
        return await entity_resolvers.job_reference(info.context, id)

    @strawberry.field(description="The run this job belongs to.")
    async def run(self, root: strawberry.Parent[AnyJob], info: Info) -> Run:
        return await job_resolvers.job_run(  # type: ignore[return-value]
            info.context, root, id_only=asks_only_for(info, ID_ONLY)
        )

    @strawberry.field(description="This logical job's history, newest submission first.")
    async def submissions(
        self,
        root: strawberry.Parent[AnyJob],
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (1-100).")] = 10,
    ) -> list[Job]:
        return await job_resolvers.job_submissions(info.context, root, first)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "Names of the jobs this one waits for (every replica of each), in the order "
            "they were submitted: the run's DAG."
        )
    )
    async def depends_on(self, root: strawberry.Parent[AnyJob], info: Info) -> list[str]:
        return await job_resolvers.job_depends_on(info.context, root)

    @strawberry.field(description="The job's configuration (heavy: loaded on demand).")
    async def spec(self, root: strawberry.Parent[AnyJob], info: Info) -> JSON:
        return await job_resolvers.job_column(info.context, root, "spec")

    @strawberry.field(description="Result reported by the runner on completion (heavy).")
    async def result(self, root: strawberry.Parent[AnyJob], info: Info) -> JSON | None:
        return await job_resolvers.job_column(info.context, root, "result")


@strawberry.type(description="A keyset-paginated list of runs, and where to watch it from.")
class RunConnection(Connection[Run]):
    event_cursor: str = strawberry.field(
        description=(
            "Subscribe to runEvents(after:) with this to get every change made after this "
            "page was read (list-then-watch; docs/live-updates.md)."
        )
    )


ProjectConnection = Connection[Project]
