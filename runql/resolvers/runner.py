"""The functions behind ``claimJobs``, ``renewLeases`` and ``completeJobs``.

They validate the request, turn tokens into hashes, call ``runql.db.runner`` inside one
short write transaction, and turn its outcomes into per-item results in request order.
A request that is wrong as a whole (too many items, a bad lease length, a malformed id)
is a top-level error naming the field; a problem with one item is data on that item and
never stops the other items from applying.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runql.db import runner as runner_db
from runql.db.models import Job
from runql.db.runner import CompletionItem, CompletionStatus, ItemOutcome, LeaseItem
from runql.db.users import hash_token
from runql.resolvers.checks import (
    check_batch,
    check_json_object,
    check_name,
    check_text,
    clean_message,
    parse_id,
)
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, ClientError, ItemError, LimitExceeded

#: Lease length when the runner does not ask for one (clamped to the configured bounds).
DEFAULT_LEASE_SECONDS = 60


# --- data in and out -------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimJobsData:
    runner_name: str
    limit: int
    project: str | None = None
    lease_seconds: int | None = None


@dataclass(frozen=True)
class JobClaim:
    job: Job
    claim_token: str
    lease_expires_at: dt.datetime


@dataclass(frozen=True)
class ClaimJobsResult:
    claims: list[JobClaim]


@dataclass(frozen=True)
class LeaseData:
    job_id: str
    claim_token: str


@dataclass(frozen=True)
class CompletionData:
    job_id: str
    claim_token: str
    status: CompletionStatus
    exit_status: int | None = None
    message: str | None = None
    result: Any = None


@dataclass(frozen=True)
class JobResult:
    """One completion: the job after the call (``applied_id``: loaded only if the client
    asks for it), or why the item was not applied."""

    job_id: str
    applied_id: int | None
    error: ItemError | None


@dataclass(frozen=True)
class LeaseResult:
    """One renewal; ``must_stop`` tells the runner to stop working on the job."""

    job_id: str
    applied_id: int | None
    must_stop: bool
    lease_expires_at: dt.datetime | None
    error: ItemError | None


@dataclass(frozen=True)
class JobResults:
    results: list[JobResult] = field(default_factory=list)


@dataclass(frozen=True)
class LeaseResults:
    results: list[LeaseResult] = field(default_factory=list)


# --- checks ----------------------------------------------------------------------------


def _lease_seconds(ctx: Context, value: int | None) -> int:
    low, high = ctx.settings.min_lease_seconds, ctx.settings.max_lease_seconds
    if value is None:
        return min(max(DEFAULT_LEASE_SECONDS, low), high)
    if value < low:
        raise BadInput("leaseSeconds", f"must be at least {low}", minimum=low)
    if value > high:
        raise LimitExceeded("leaseSeconds", high, value)
    return value


def _claim_key(label: str, job_id: str, claim_token: str) -> tuple[int | None, str]:
    """An item's job id and claim token hash; raises ``ClientError`` naming the item's
    field when either is malformed (the caller answers that item alone)."""
    parsed = parse_id(job_id, f"{label}.jobId")
    check_text(claim_token, f"{label}.claimToken")
    return parsed, hash_token(claim_token)


def _error(label: str, outcome: ItemOutcome) -> ItemError | None:
    if outcome.refusal is None:
        return None
    return ItemError(code=outcome.refusal.value, message=f"{label}: {outcome.detail}")


def _applied(outcome: ItemOutcome) -> int | None:
    """Like every bulk call: the object when the item applied, the error otherwise."""
    return outcome.job_id if outcome.refusal is None else None


async def result_job(ctx: Context, result: JobResult | LeaseResult) -> Job | None:
    """``job`` of a per-item result: batched through the request's job loader, so a
    1,000-item answer costs one statement, and none when the field is not asked for."""
    if result.applied_id is None:
        return None
    job: Job | None = await ctx.loaders.job_by_id.load(result.applied_id)
    return job


# --- claimJobs -------------------------------------------------------------------------


async def claim_jobs(ctx: Context, data: ClaimJobsData) -> ClaimJobsResult:
    """Hand up to ``limit`` ready jobs to the calling runner, each with a lease.

    On SQLite a plain read first checks that there is anything to claim, so an idle
    runner's poll never takes (or waits for) the write lock; PostgreSQL claims with
    ``SKIP LOCKED`` and needs no such check.
    """
    viewer = ctx.viewer
    check_name(data.runner_name, "runnerName")
    if data.project is not None:
        check_text(data.project, "project")
    if data.limit < 1:
        raise BadInput("limit", "must be at least 1")
    check_batch("limit", data.limit, ctx.settings.max_batch_size)
    seconds = _lease_seconds(ctx, data.lease_seconds)
    if ctx.db.is_sqlite:
        async with ctx.db.read() as session:
            if not await runner_db.claimable_jobs_exist(session, viewer, data.project):
                return ClaimJobsResult(claims=[])
    # The lease starts once the claim holds its locks (the db layer takes the time), not
    # when the request arrived: waiting for other writers must not use it up.
    async with ctx.db.write() as session:
        claims = await runner_db.claim_jobs(
            session,
            viewer,
            runner_name=data.runner_name,
            project_name=data.project,
            limit=data.limit,
            lease=dt.timedelta(seconds=seconds),
        )
    return ClaimJobsResult(
        claims=[
            JobClaim(job=c.job, claim_token=c.token, lease_expires_at=c.lease_expires_at)
            for c in claims
        ]
    )


# --- renewLeases -----------------------------------------------------------------------


async def renew_leases(
    ctx: Context, leases: Sequence[LeaseData], lease_seconds: int | None
) -> LeaseResults:
    """Extend the leases the caller still holds; a result per item, in request order."""
    viewer = ctx.viewer
    check_batch("leases", len(leases), ctx.settings.max_batch_size)
    seconds = _lease_seconds(ctx, lease_seconds)
    keys: list[tuple[int | None, str] | ItemError] = []
    for i, lease in enumerate(leases):
        try:
            keys.append(_claim_key(f"leases[{i}]", lease.job_id, lease.claim_token))
        except ClientError as exc:
            keys.append(ItemError.of(exc))
    items = [
        LeaseItem(key[0], key[1])
        for key in keys
        if not isinstance(key, ItemError) and key[0] is not None
    ]
    outcomes: list[ItemOutcome] = []
    expires: dt.datetime | None = None  # taken by the db layer once the locks are held
    if items:
        async with ctx.db.write() as session:
            renewals = await runner_db.renew_leases(
                session, viewer, items, lease=dt.timedelta(seconds=seconds)
            )
        outcomes, expires = renewals.outcomes, renewals.lease_expires_at
    found = iter(outcomes)
    results = []
    for i, (key, lease) in enumerate(zip(keys, leases, strict=True)):
        if isinstance(key, ItemError):
            results.append(LeaseResult(lease.job_id, None, True, None, key))
            continue
        outcome = runner_db.NOT_FOUND if key[0] is None else next(found)
        error = _error(f"leases[{i}] (job {lease.job_id})", outcome)
        results.append(
            LeaseResult(
                job_id=lease.job_id,
                applied_id=_applied(outcome),
                must_stop=outcome.must_stop,
                lease_expires_at=None if error else expires,
                error=error,
            )
        )
    return LeaseResults(results=results)


# --- completeJobs ----------------------------------------------------------------------


async def complete_jobs(ctx: Context, completions: Sequence[CompletionData]) -> JobResults:
    """Apply a batch of completions in one short write transaction; a result per item, in
    request order. Items with a bad ``result`` are answered on their own; the others
    still apply."""
    viewer = ctx.viewer
    settings = ctx.settings
    check_batch("completions", len(completions), settings.max_batch_size)
    answers: list[ItemError | None] = []
    items: list[CompletionItem] = []
    for i, data in enumerate(completions):
        label = f"completions[{i}]"
        try:
            job_id, token_hash = _claim_key(label, data.job_id, data.claim_token)
            result = (
                None
                if data.result is None
                else check_json_object(
                    data.result,
                    f"{label}.result",
                    max_bytes=settings.max_json_bytes,
                    max_depth=settings.max_json_depth,
                )
            )
        except ClientError as exc:
            answers.append(ItemError.of(exc))
            continue
        if job_id is None:
            answers.append(_error(f"{label} (job {data.job_id})", runner_db.NOT_FOUND))
            continue
        answers.append(None)
        items.append(
            CompletionItem(
                job_id=job_id,
                token_hash=token_hash,
                status=data.status,
                exit_status=data.exit_status,
                message=clean_message(data.message),
                result=result,
            )
        )
    outcomes: list[ItemOutcome] = []
    if items:
        async with ctx.db.write() as session:
            outcomes = await runner_db.complete_jobs(session, viewer, items)
    found = iter(outcomes)
    results = []
    for i, (data, answer) in enumerate(zip(completions, answers, strict=True)):
        if answer is not None:
            results.append(JobResult(job_id=data.job_id, applied_id=None, error=answer))
            continue
        outcome = next(found)
        error = _error(f"completions[{i}] (job {data.job_id})", outcome)
        results.append(JobResult(job_id=data.job_id, applied_id=_applied(outcome), error=error))
    return JobResults(results=results)
