"""The functions behind ``claimJobs``, ``renewLeases`` and ``completeJobs``.

They validate the request, turn tokens into hashes, call ``runql.db.runner`` inside one
short write transaction, and turn its outcomes into per-item results in request order.
A request that is wrong as a whole (too many items, a bad lease length) is a top-level
error naming the field; a problem with one item (a malformed id, token or result, a stale
claim) is data on that item and never stops the other items from applying.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runql.db import runner as runner_db
from runql.db.accounts import hash_token
from runql.db.enums import CompletionStatus
from runql.db.models import Job
from runql.db.runner import Claim, CompletionItem, JobOutcome, LeaseItem
from runql.observe import metrics
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


# --- items in and answers out ----------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """One item of ``renewLeases`` as the client sent it: a job the runner says it holds."""

    job_id: str
    claim_token: str


@dataclass(frozen=True)
class Completion:
    """One item of ``completeJobs`` as the client sent it; checked here, it becomes the
    database layer's ``CompletionItem`` (a parsed id, the token's hash)."""

    job_id: str
    claim_token: str
    status: CompletionStatus
    exit_status: int | None = None
    message: str | None = None
    result: Any = None


@dataclass(frozen=True)
class JobAnswer:
    """The answer for one renewal or completion: the job's id when the item applied (the
    job itself is loaded only if the client asks for it), or why it was not applied.
    ``must_stop`` and ``lease_expires_at`` answer renewals only."""

    job_id: str
    applied_id: int | None
    error: ItemError | None
    must_stop: bool = False
    lease_expires_at: dt.datetime | None = None
    repeated: bool = False


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


def _error(label: str, outcome: JobOutcome) -> ItemError | None:
    if outcome.refusal is None:
        return None
    return ItemError(code=outcome.refusal.value, message=f"{label}: {outcome.detail}")


def _applied(outcome: JobOutcome) -> int | None:
    """Like every bulk call: the object when the item applied, the error otherwise."""
    return outcome.job_id if outcome.refusal is None else None


async def result_job(ctx: Context, answer: JobAnswer) -> Job | None:
    """``job`` of a per-item answer: batched through the request's job loader, so a
    1,000-item answer costs one statement, and none when the field is not asked for."""
    if answer.applied_id is None:
        return None
    job: Job | None = await ctx.loaders.job_by_id.load(answer.applied_id)
    return job


# --- claimJobs -------------------------------------------------------------------------


@metrics.observe(metrics.Metrics.claimed)
async def claim_jobs(
    ctx: Context,
    *,
    runner_name: str,
    limit: int,
    project: str | None,
    lease_seconds: int | None,
    with_spec: bool = False,
) -> list[Claim]:
    """Hand up to ``limit`` ready jobs to the calling runner, each with a lease.
    ``with_spec`` (the document asks for ``job { spec }``): read each job's spec with the
    claim and answer the field from it, one statement less per claim.

    On SQLite a plain read first checks that there is anything to claim, so an idle
    runner's poll never takes (or waits for) the write lock; PostgreSQL claims with
    ``SKIP LOCKED`` and needs no such check. Nor does a claim whose document just made
    jobs claimable (a runner's cycle: completions that unblocked or retried jobs).
    """
    viewer = ctx.viewer
    check_name(runner_name, "runnerName")
    if project is not None:
        check_text(project, "project")
    if limit < 1:
        raise BadInput("limit", "must be at least 1")
    check_batch("limit", limit, ctx.settings.max_batch_size)
    seconds = _lease_seconds(ctx, lease_seconds)
    if ctx.db.is_sqlite and not ctx.made_ready:
        async with ctx.db.read() as session:
            if not await runner_db.claimable_jobs_exist(session, viewer, project):
                return []
    # The lease starts once the claim holds its locks (the db layer takes the time), not
    # when the request arrived: waiting for other writers must not use it up.
    async with ctx.db.write() as session:
        claims = await runner_db.claim_jobs(
            session,
            viewer,
            runner_name=runner_name,
            project_name=project,
            limit=limit,
            lease=dt.timedelta(seconds=seconds),
            with_spec=with_spec,
        )
    if with_spec:
        for claim in claims:
            ctx.loaders.job_column_by_id.prime((claim.job.id, "spec"), claim.spec)
    return claims


# --- renewLeases -----------------------------------------------------------------------


@metrics.observe(metrics.Metrics.renewed)
async def renew_leases(
    ctx: Context, *, leases: Sequence[Lease], lease_seconds: int | None
) -> list[JobAnswer]:
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
    outcomes: list[JobOutcome] = []
    expires: dt.datetime | None = None  # taken by the db layer once the locks are held
    if items:
        async with ctx.db.write() as session:
            renewals = await runner_db.renew_leases(
                session, viewer, items, lease=dt.timedelta(seconds=seconds)
            )
        outcomes, expires = renewals.outcomes, renewals.lease_expires_at
    found = iter(outcomes)
    answers = []
    for i, (key, lease) in enumerate(zip(keys, leases, strict=True)):
        if isinstance(key, ItemError):
            answers.append(JobAnswer(lease.job_id, None, key, must_stop=True))
            continue
        outcome = runner_db.NOT_FOUND if key[0] is None else next(found)
        error = _error(f"leases[{i}] (job {lease.job_id})", outcome)
        answers.append(
            JobAnswer(
                job_id=lease.job_id,
                applied_id=_applied(outcome),
                error=error,
                must_stop=outcome.must_stop,
                lease_expires_at=None if error else expires,
            )
        )
    return answers


# --- completeJobs ----------------------------------------------------------------------


@metrics.observe(metrics.Metrics.completed)
async def complete_jobs(ctx: Context, *, completions: Sequence[Completion]) -> list[JobAnswer]:
    """Apply a batch of completions in one short write transaction; a result per item, in
    request order. Items with a bad ``result`` are answered on their own; the others
    still apply."""
    viewer = ctx.viewer
    settings = ctx.settings
    check_batch("completions", len(completions), settings.max_batch_size)
    item_errors: list[ItemError | None] = []
    items: list[CompletionItem] = []
    for i, completion in enumerate(completions):
        label = f"completions[{i}]"
        try:
            job_id, token_hash = _claim_key(label, completion.job_id, completion.claim_token)
            result = (
                None
                if completion.result is None
                else check_json_object(
                    completion.result,
                    f"{label}.result",
                    max_bytes=settings.max_json_bytes,
                    max_depth=settings.max_json_depth,
                )
            )
        except ClientError as exc:
            item_errors.append(ItemError.of(exc))
            continue
        if job_id is None:
            item_errors.append(_error(f"{label} (job {completion.job_id})", runner_db.NOT_FOUND))
            continue
        item_errors.append(None)
        items.append(
            CompletionItem(
                job_id=job_id,
                token_hash=token_hash,
                status=completion.status,
                exit_status=completion.exit_status,
                message=clean_message(completion.message),
                result=result,
            )
        )
    outcomes: list[JobOutcome] = []
    if items:
        async with ctx.db.write() as session:
            completed = await runner_db.complete_jobs(session, viewer, items)
        outcomes = completed.outcomes
        ctx.made_ready += completed.made_ready
    found = iter(outcomes)
    answers = []
    for i, (completion, item_error) in enumerate(zip(completions, item_errors, strict=True)):
        if item_error is not None:
            answers.append(JobAnswer(job_id=completion.job_id, applied_id=None, error=item_error))
            continue
        outcome = next(found)
        error = _error(f"completions[{i}] (job {completion.job_id})", outcome)
        answers.append(
            JobAnswer(
                job_id=completion.job_id,
                applied_id=_applied(outcome),
                error=error,
                repeated=outcome.repeated,
            )
        )
    return answers
