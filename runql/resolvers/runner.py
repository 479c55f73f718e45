"""The functions behind ``claimJobs``, ``renewLeases`` and ``completeJobs``.

They validate the request, turn tokens into hashes, call ``runql.db.claims``,
``runql.db.leases`` or ``runql.db.completions`` inside one short write transaction, and
turn the outcomes into per-item results in request order (``runql.resolvers.batch``).
A request that is wrong as a whole (too many items, a bad lease length) is a top-level
error naming the field; a problem with one item (a malformed id, token or result, a stale
claim) is data on that item and never stops the other items from applying.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runql.db import claims as claims_db
from runql.db import completions as completions_db
from runql.db import leases as leases_db
from runql.db.accounts import hash_token
from runql.db.claims import NOT_FOUND, Claim, JobOutcome
from runql.db.completions import CompletionItem
from runql.db.enums import CompletionStatus
from runql.db.leases import LeaseItem
from runql.db.models import Job
from runql.observe import metrics
from runql.resolvers.batch import Answered, answer_each
from runql.resolvers.checks import (
    check_batch,
    check_json_object,
    check_name,
    check_text,
    clean_message,
    parse_id,
)
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, ItemError, LimitExceeded

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


def _answer(job_id: str, label: str, outcome: JobOutcome, **more: Any) -> JobAnswer:
    """Like every bulk call: the job's id when the item applied, the error otherwise
    (naming the item and its job)."""
    if outcome.refusal is None:
        return JobAnswer(job_id, outcome.job_id, None, **more)
    message = f"{label} (job {job_id}): {outcome.detail}"
    return JobAnswer(job_id, None, ItemError(code=outcome.refusal.value, message=message), **more)


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
            if not await claims_db.claimable_jobs_exist(session, viewer, project):
                return []
    # The lease starts once the claim holds its locks (the db layer takes the time), not
    # when the request arrived: waiting for other writers must not use it up.
    async with ctx.db.write() as session:
        claims = await claims_db.claim_jobs(
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
    lease = dt.timedelta(seconds=_lease_seconds(ctx, lease_seconds))

    def check(item: Lease, label: str) -> LeaseItem | Answered[JobOutcome]:
        job_id, token_hash = _claim_key(label, item.job_id, item.claim_token)
        return Answered(NOT_FOUND) if job_id is None else LeaseItem(job_id, token_hash)

    async def write(items: list[LeaseItem]) -> list[JobOutcome]:
        # The new expiry is taken by the db layer once the locks are held.
        async with ctx.db.write() as session:
            return await leases_db.renew_leases(session, viewer, items, lease=lease)

    def answer(item: Lease, label: str, outcome: JobOutcome) -> JobAnswer:
        return _answer(
            item.job_id,
            label,
            outcome,
            must_stop=outcome.must_stop,
            lease_expires_at=outcome.lease_expires_at,
        )

    return await answer_each(
        "leases",
        leases,
        check=check,
        write=write,
        answer=answer,
        refuse=lambda item, error: JobAnswer(item.job_id, None, error, must_stop=True),
    )


# --- completeJobs ----------------------------------------------------------------------


@metrics.observe(metrics.Metrics.completed)
async def complete_jobs(ctx: Context, *, completions: Sequence[Completion]) -> list[JobAnswer]:
    """Apply a batch of completions in one short write transaction; a result per item, in
    request order. Items with a bad ``result`` are answered on their own; the others
    still apply."""
    viewer = ctx.viewer
    settings = ctx.settings
    check_batch("completions", len(completions), settings.max_batch_size)

    def check(item: Completion, label: str) -> CompletionItem | Answered[JobOutcome]:
        job_id, token_hash = _claim_key(label, item.job_id, item.claim_token)
        result = (
            None
            if item.result is None
            else check_json_object(
                item.result,
                f"{label}.result",
                max_bytes=settings.max_json_bytes,
                max_depth=settings.max_json_depth,
            )
        )
        if job_id is None:
            return Answered(NOT_FOUND)
        return CompletionItem(
            job_id=job_id,
            token_hash=token_hash,
            status=item.status,
            exit_status=item.exit_status,
            message=clean_message(item.message),
            result=result,
        )

    async def write(items: list[CompletionItem]) -> list[JobOutcome]:
        async with ctx.db.write() as session:
            completed = await completions_db.complete_jobs(session, viewer, items)
        ctx.made_ready += completed.made_ready
        return completed.outcomes

    def answer(item: Completion, label: str, outcome: JobOutcome) -> JobAnswer:
        return _answer(item.job_id, label, outcome, repeated=outcome.repeated)

    return await answer_each(
        "completions",
        completions,
        check=check,
        write=write,
        answer=answer,
        refuse=lambda item, error: JobAnswer(item.job_id, None, error),
    )
