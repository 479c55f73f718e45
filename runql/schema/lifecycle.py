"""Lifecycle mutations: ``submitRun``, ``stopRuns``, ``deleteRuns``, ``restartRuns``, with
their inputs and payloads. Declarative: each field is one call into
``runql.resolvers.lifecycle``."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from runql.resolvers import lifecycle as lifecycle_resolvers
from runql.resolvers.dag import JobDefinition
from runql.schema.enums import RestartScope
from runql.schema.info import Info
from runql.schema.payloads import ItemError
from runql.schema.types import Run


def _spec(value: Any) -> Any:
    """``spec`` is nullable with a null default rather than ``JSON! = {}``: introspection
    must print every input default as a GraphQL literal, and graphql-core cannot turn a
    ``JSON`` scalar's ``{}`` into one (the full introspection query failed). Absent or
    null means an empty object, so resolvers see what they did before. Any JSON value
    passes: the resolvers check that it is an object."""
    return {} if value is None else value


@strawberry.input(description="When a failed submission of a job is tried again.")
class RetryPolicyInput:
    limit: int = strawberry.field(
        default=0, description="Retries after the first submission (0 = never retry)."
    )
    on_failure: bool = strawberry.field(
        default=True, description="Retry when the runner reports a failure."
    )
    on_lease_expiry: bool = strawberry.field(
        default=True, description="Retry when the runner's lease lapses (runner lost)."
    )


@strawberry.input(description="One job of a run: a node of the run's DAG.")
class JobInput:
    name: str = strawberry.field(description="Unique within the run; dependsOn refers to it.")
    replicas: int = strawberry.field(default=1, description="Copies of the job (at least 1).")
    depends_on: list[str] = strawberry.field(
        default_factory=list,
        description="Names of jobs of this run that must be DONE (every replica) first.",
    )
    retry: RetryPolicyInput | None = strawberry.field(
        default=None, description="Retry policy; default: no retries."
    )
    spec: JSON | None = strawberry.field(
        default=None,
        description="The job's configuration: a JSON object; absent or null means {}.",
    )

    def to_data(self) -> JobDefinition:
        retry = self.retry or RetryPolicyInput()
        return JobDefinition(
            name=self.name,
            replicas=self.replicas,
            depends_on=tuple(self.depends_on),
            retry_limit=retry.limit,
            retry_on_failure=retry.on_failure,
            retry_on_lease_expiry=retry.on_lease_expiry,
            spec=_spec(self.spec),
        )


@strawberry.input(description="A run to create. The whole input is checked before writing.")
class SubmitRunInput:
    project: str = strawberry.field(description="Project name; you must be a member.")
    jobs: list[JobInput] = strawberry.field(description="The run's jobs (a DAG, at least one).")
    name: str | None = strawberry.field(
        default=None,
        description="Unique among the project's live runs; generated (e.g. swift-otter-12) "
        "when absent.",
    )
    priority: int = strawberry.field(default=0, description="Higher is claimed first.")
    spec: JSON | None = strawberry.field(
        default=None,
        description="The run's configuration: a JSON object; absent or null means {}.",
    )


@strawberry.input(
    description="Runs to stop: by id, or by name within a project (at most 500 per call)."
)
class StopRunsInput:
    run_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Run ids; pass these or project + names."
    )
    project: str | None = strawberry.field(default=None, description="Project of `names`.")
    names: list[str] | None = strawberry.field(default=None, description="Run names.")
    abort: bool = strawberry.field(
        default=False,
        description="End every active job now (ABORTED) instead of letting running jobs "
        "wind down (TERMINATING).",
    )


@strawberry.input(
    description="Finished runs to restart: by id, or by name within a project (at most 500 "
    "per call)."
)
class RestartRunsInput:
    run_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Run ids; pass these or project + names."
    )
    project: str | None = strawberry.field(default=None, description="Project of `names`.")
    names: list[str] | None = strawberry.field(default=None, description="Run names.")
    scope: RestartScope = strawberry.field(
        default=RestartScope.FAILED,
        description="FAILED: re-run the jobs that did not end DONE; ALL: every job.",
    )


@strawberry.input(description="Finished runs to delete (at most 500 per call).")
class DeleteRunsInput:
    run_ids: list[strawberry.ID] = strawberry.field(description="Run ids.")


@strawberry.type(description="What created the run.")
class SubmitRunPayload:
    run: Run = strawberry.field(description="The new run.")


@strawberry.type(description="The answer for one requested run.")
class RunResult:
    run_id: strawberry.ID | None = strawberry.field(
        description="The requested id (by name: the id found, or null)."
    )
    name: str | None = strawberry.field(
        description="The requested name (by id: the run's name when found)."
    )
    run: Run | None = strawberry.field(description="The run after the change, when it applied.")
    error: ItemError | None = strawberry.field(description="Why it did not apply.")


@strawberry.type(description="One result per requested run, in request order.")
class StopRunsPayload:
    results: list[RunResult] = strawberry.field(description="Per requested run, in order.")


@strawberry.type(description="One result per requested run, in request order.")
class RestartRunsPayload:
    results: list[RunResult] = strawberry.field(description="Per requested run, in order.")


@strawberry.type(description="One result per requested run, in request order.")
class DeleteRunsPayload:
    results: list[RunResult] = strawberry.field(description="Per requested run, in order.")


@strawberry.type(description="Submit, stop, restart and delete runs.")
class LifecycleMutation:
    @strawberry.mutation(
        description=(
            "Create a run and the first submission of each job: SUBMITTED without upstream "
            "jobs, BLOCKED otherwise. Members of the project and admins may submit."
        )
    )
    async def submit_run(
        self,
        info: Info,
        input: Annotated[SubmitRunInput, strawberry.argument(description="The run to create.")],
    ) -> SubmitRunPayload:
        return SubmitRunPayload(
            run=await lifecycle_resolvers.submit_run(  # type: ignore[arg-type]
                info.context,
                project=input.project,
                jobs=[job.to_data() for job in input.jobs],
                name=input.name,
                priority=input.priority,
                spec=_spec(input.spec),
            )
        )

    @strawberry.mutation(
        description=(
            "Stop many runs at once. Jobs not yet claimed end TERMINATED, running jobs go "
            "TERMINATING until their runner notices; the run ends TERMINATED when nothing "
            "runs any more. abort: true ends everything now (ABORTED). Stopping a stopping "
            "run is fine. Allowed for the submitter, project ADMIN/MANAGER members, admins."
        )
    )
    async def stop_runs(
        self,
        info: Info,
        input: Annotated[
            StopRunsInput, strawberry.argument(description="The runs to stop, and how.")
        ],
    ) -> StopRunsPayload:
        return StopRunsPayload(
            results=await lifecycle_resolvers.stop_runs(  # type: ignore[arg-type]
                info.context,
                run_ids=input.run_ids,
                project=input.project,
                names=input.names,
                abort=input.abort,
            )
        )

    @strawberry.mutation(
        description=(
            "Delete many finished runs (soft delete: they disappear from every read and "
            "their names can be reused). Same permission rule as stopRuns."
        )
    )
    async def delete_runs(
        self,
        info: Info,
        input: Annotated[DeleteRunsInput, strawberry.argument(description="The runs to delete.")],
    ) -> DeleteRunsPayload:
        return DeleteRunsPayload(
            results=await lifecycle_resolvers.delete_runs(info.context, run_ids=input.run_ids)  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description=(
            "Restart many finished runs (DONE, FAILED, TERMINATED) as a new attempt: each "
            "job re-run gets a new submission, ready when the jobs it waits for are DONE, "
            "else BLOCKED; claims of earlier attempts become stale. Same permission rule "
            "as stopRuns."
        )
    )
    async def restart_runs(
        self,
        info: Info,
        input: Annotated[
            RestartRunsInput, strawberry.argument(description="The runs to restart, and how.")
        ],
    ) -> RestartRunsPayload:
        return RestartRunsPayload(
            results=await lifecycle_resolvers.restart_runs(  # type: ignore[arg-type]
                info.context,
                run_ids=input.run_ids,
                project=input.project,
                names=input.names,
                scope=input.scope,
            )
        )
