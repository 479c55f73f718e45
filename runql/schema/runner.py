"""Runner mutations: ``claimJobs``, ``renewLeases``, ``completeJobs``, with their inputs
and payloads. Declarative: each field is one call into ``runql.resolvers.runner``.

The claim token appears only in ``JobClaim.claimToken``, never as a field of ``Job``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.scalars import JSON, is_scalar
from strawberry.types.base import StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

from runql.db.enums import CompletionStatus
from runql.resolvers import runner as runner_resolvers
from runql.resolvers.runner import Completion, JobAnswer, Lease
from runql.schema.info import Info
from runql.schema.lookahead import asks_for_path
from runql.schema.payloads import ItemError
from runql.schema.types import Job

strawberry.enum(
    CompletionStatus,
    description="What a runner reports for a job it ran: DONE (success) or FAILED.",
)


T = TypeVar("T")


def _leaf_fields(cls: type[T]) -> type[T]:
    """Build ``cls`` straight from graphql-core's coerced value, for an input type whose
    fields are all scalars or enums (nullable or not), as the items of bulk calls are.

    For such fields strawberry's own conversion passes every value through unchanged, but
    it resolves each field's type again for every item: about 0.27 ms per completion, 13
    ms of a 50-item ``completeJobs``. This builds the same instance (the same keyword
    arguments; ``None`` for an omitted field without a default) from names looked up once.
    It is only how a value is built (``StrawberryObjectDefinition.from_input``): the schema
    is unchanged, and a strawberry without the hook converts the usual way.
    """
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    implicit = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    }
    names: list[tuple[str, str]] = []  # (Python, GraphQL): the name converter is the schema's

    def from_input(target: type[T], value: Mapping[str, Any], context: Any) -> T:
        if not names:
            names[:] = _leaf_names(cls, context)
        kwargs = dict(implicit)
        for python_name, graphql_name in names:
            if graphql_name in value:
                kwargs[python_name] = value[graphql_name]
        return target(**kwargs)

    definition.from_input = from_input
    return cls


def _leaf_names(cls: type, context: Any) -> list[tuple[str, str]]:
    """The Python and GraphQL names of ``cls``'s fields; refuses a field whose value
    strawberry would convert (an input object, a list)."""
    names = []
    for field in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        kind = field.type
        if type(kind) is StrawberryOptional:
            kind = kind.of_type
        enum = isinstance(kind, StrawberryEnumDefinition) or has_enum_definition(kind)
        if not (enum or is_scalar(kind, context.scalar_registry)):
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar or an enum")
        names.append((field.python_name, context.config.name_converter.from_field(field)))
    return names


@strawberry.input(description="Ask for ready jobs to run.")
class ClaimJobsInput:
    runner_name: str = strawberry.field(
        description="Who is asking (a host or process name); shown as Job.runnerName."
    )
    limit: int = strawberry.field(description="Most jobs to take (1 to 1,000).")
    project: str | None = strawberry.field(
        default=None, description="Only jobs of this project; default: every visible project."
    )
    lease_seconds: int | None = strawberry.field(
        default=None,
        description="Lease length (default 60, bounded by the server's min/max). Renew "
        "before it lapses, or the job is taken back.",
    )


@_leaf_fields
@strawberry.input(description="A job the runner holds, identified by its claim.")
class LeaseInput:
    job_id: strawberry.ID = strawberry.field(description="The claimed job.")
    claim_token: str = strawberry.field(description="The token claimJobs returned with it.")

    def to_data(self) -> Lease:
        return Lease(job_id=self.job_id, claim_token=self.claim_token)


@strawberry.input(description="Leases to extend (at most 1,000 per call).")
class RenewLeasesInput:
    leases: list[LeaseInput] = strawberry.field(description="The jobs the runner holds.")
    lease_seconds: int | None = strawberry.field(
        default=None, description="New lease length from now (default 60, bounded)."
    )


@_leaf_fields
@strawberry.input(description="How one claimed job ended.")
class CompletionInput:
    job_id: strawberry.ID = strawberry.field(description="The claimed job.")
    claim_token: str = strawberry.field(description="The token claimJobs returned with it.")
    status: CompletionStatus = strawberry.field(description="DONE or FAILED.")
    exit_status: int | None = strawberry.field(default=None, description="Process exit status.")
    message: str | None = strawberry.field(
        default=None,
        description="Why it failed, or a note: free text, kept up to 1,000 characters; "
        "characters no database stores as text (NUL, lone surrogates) become U+FFFD.",
    )
    result: JSON | None = strawberry.field(
        default=None, description="What the job produced: a JSON object (heavy field)."
    )

    def to_data(self) -> Completion:
        return Completion(
            job_id=self.job_id,
            claim_token=self.claim_token,
            status=self.status,
            exit_status=self.exit_status,
            message=self.message,
            result=self.result,
        )


@strawberry.input(description="Completions to report (at most 1,000 per call).")
class CompleteJobsInput:
    completions: list[CompletionInput] = strawberry.field(description="One per finished job.")


@strawberry.type(description="A job handed to the calling runner.")
class JobClaim:
    """Reads the database layer's ``Claim``, which calls the claim token ``token``."""

    job: Job = strawberry.field(description="The job, now RUNNING for this runner.")
    token: str = strawberry.field(
        name="claimToken",
        description="Secret of this claim: send it with every renewal and completion of the "
        "job. It is shown only here.",
    )
    lease_expires_at: dt.datetime = strawberry.field(
        description="When the claim lapses unless renewed."
    )


@strawberry.type(description="The jobs claimed (empty when nothing is ready).")
class ClaimJobsPayload:
    claims: list[JobClaim] = strawberry.field(description="Highest run priority first.")


@strawberry.type(description="The answer for one completion.")
class JobResult:
    job_id: strawberry.ID = strawberry.field(description="The requested job id.")
    error: ItemError | None = strawberry.field(description="Why it did not apply.")

    @strawberry.field(description="The job after the call, when it applied.")
    async def job(self, root: strawberry.Parent[JobAnswer], info: Info) -> Job | None:
        return await runner_resolvers.result_job(info.context, root)  # type: ignore[return-value]


@strawberry.type(description="The answer for one lease.")
class LeaseResult:
    job_id: strawberry.ID = strawberry.field(description="The requested job id.")

    @strawberry.field(description="The job, when the lease was renewed.")
    async def job(self, root: strawberry.Parent[JobAnswer], info: Info) -> Job | None:
        return await runner_resolvers.result_job(info.context, root)  # type: ignore[return-value]

    must_stop: bool = strawberry.field(
        description="Stop working on this job: its run is stopping (complete it; it ends "
        "TERMINATED), or it is no longer yours (see error)."
    )
    lease_expires_at: dt.datetime | None = strawberry.field(
        description="The new expiry, when renewed."
    )
    error: ItemError | None = strawberry.field(description="Why it was not renewed.")


@strawberry.type(description="One result per completion, in request order.")
class CompleteJobsPayload:
    results: list[JobResult] = strawberry.field(description="Per completion, in order.")


@strawberry.type(description="One result per lease, in request order.")
class RenewLeasesPayload:
    results: list[LeaseResult] = strawberry.field(description="Per lease, in order.")


@strawberry.type(description="Runners: claim ready jobs, keep their leases, report them.")
class RunnerMutation:
    @strawberry.mutation(
        description=(
            "Claim up to `limit` ready jobs of the projects you can see, highest run "
            "priority first, then oldest. Each comes with a claim token and a lease. "
            "Answers at once, with an empty list when nothing is ready."
        )
    )
    async def claim_jobs(
        self,
        info: Info,
        input: Annotated[ClaimJobsInput, strawberry.argument(description="What to claim.")],
    ) -> ClaimJobsPayload:
        return ClaimJobsPayload(
            claims=await runner_resolvers.claim_jobs(  # type: ignore[arg-type]
                info.context,
                runner_name=input.runner_name,
                limit=input.limit,
                project=input.project,
                lease_seconds=input.lease_seconds,
                with_spec=asks_for_path(info, "claims", "job", "spec"),
            )
        )

    @strawberry.mutation(
        description=(
            "Extend the leases of jobs you hold. Each result says whether to stop the job "
            "(its run is stopping, or it is no longer yours)."
        )
    )
    async def renew_leases(
        self,
        info: Info,
        input: Annotated[RenewLeasesInput, strawberry.argument(description="Leases to renew.")],
    ) -> RenewLeasesPayload:
        return RenewLeasesPayload(
            results=await runner_resolvers.renew_leases(  # type: ignore[arg-type]
                info.context,
                leases=[lease.to_data() for lease in input.leases],
                lease_seconds=input.lease_seconds,
            )
        )

    @strawberry.mutation(
        description=(
            "Report finished jobs (up to 1,000). Each item applies or fails on its own; "
            "repeating a completion is answered again without applying it twice. "
            "Downstream jobs, retries and the run's status follow in the same transaction."
        )
    )
    async def complete_jobs(
        self,
        info: Info,
        input: Annotated[
            CompleteJobsInput, strawberry.argument(description="The completions to apply.")
        ],
    ) -> CompleteJobsPayload:
        return CompleteJobsPayload(
            results=await runner_resolvers.complete_jobs(  # type: ignore[arg-type]
                info.context, completions=[item.to_data() for item in input.completions]
            )
        )
