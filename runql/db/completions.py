"""Completions: a runner reports how the jobs it holds ended, many per call.

A batch costs a fixed number of statements whatever its size: the runs' locks
(PostgreSQL, ``runql.db.locking``), one locking read of the requested jobs, one
(executemany) UPDATE of the accepted ones, then the set-based effects. Per item, Python
only decides; it never issues SQL. What a finished job sets off (unblocking, retries,
aborting downstream jobs, the run's status) is ``runql.db.job_effects``. Two completions
of the same run serialise at the run, which is what makes unblocking exact.

A token stays on a job after its completion (``runql.db.claims``), so a repeated
completion is recognised and answered without being applied twice.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.claims import JobOutcome, lock_held
from runql.db.enums import CompletionStatus, EventKind, JobStatus, TerminationReason
from runql.db.events import EventBatch
from runql.db.job_effects import FinishedJobs, per_job_update
from runql.db.locking import LockedJob, locked_completions
from runql.db.types import utcnow
from runql.db.visibility import Viewer
from runql.error_codes import ErrorCode

#: What a runner's report leaves in ``termination_message`` (the column's width).
MAX_MESSAGE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class CompletionItem:
    """One completion as the database layer applies it (already validated)."""

    job_id: int
    token_hash: str
    status: CompletionStatus
    exit_status: int | None = None
    message: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    """What a batch of completions did: an outcome per item, in request order, and how
    many jobs their effects made claimable (retries, unblocked downstream jobs)."""

    outcomes: list[JobOutcome]
    made_ready: int


def _repeat(
    job: LockedJob, reported: CompletionStatus, status: JobStatus | None = None
) -> JobOutcome:
    """A completion for a job this claim already finished (``status``: how it ended, when
    that happened earlier in this batch): answered, not applied again."""
    status = status or JobStatus(job.status)
    if status == JobStatus.TERMINATED or status == reported.value:
        return JobOutcome(job.id, repeated=True)
    return JobOutcome(
        job.id,
        ErrorCode.INVALID_STATE,
        f"the job was already completed as {status}; it cannot become {reported}",
        must_stop=True,
    )


#: Why a completed job ended, by the status it ends in.
_REASONS = {
    JobStatus.TERMINATED: TerminationReason.TERMINATED_BY_USER,
    JobStatus.DONE: TerminationReason.DONE_BY_RUNNER,
    JobStatus.FAILED: TerminationReason.FAILED_BY_RUNNER,
}


async def complete_jobs(
    session: AsyncSession,
    viewer: Viewer,
    completions: Sequence[CompletionItem],
    *,
    now: dt.datetime | None = None,
) -> Completed:
    """Apply a batch of completions; an outcome per item, in request order.

    An item applies when its token holds the job's current claim and the job is
    ``RUNNING``/``TERMINATING``: ``DONE`` / ``FAILED`` as reported, ``TERMINATED`` whatever
    was reported when the run is stopping. A repeat of an applied completion (in an earlier
    call or earlier in this batch) is answered with the job and not applied again. Then,
    set-based (:class:`~runql.db.job_effects.FinishedJobs`): retries for failures with
    retries left, downstream jobs aborted after a failure for good, downstream jobs
    unblocked after successes, the runs' statuses. ``now`` (``finishedAt``, retries'
    ``submittedAt``) defaults to the time the locks are held, not the time the request
    arrived. Events: ``JOB_COMPLETED`` per applied item, then those of the effects, in
    one statement before the transaction commits.
    """
    # The token first: a repeat is recognised only when it carries the claim's token, so a
    # forged item after an applied one is refused, not answered as applied.
    held = await lock_held(session, viewer, completions, locked_completions)
    now = now or utcnow()
    finished = FinishedJobs()
    params: list[dict[str, Any]] = []
    outcomes: list[JobOutcome] = []
    applied: dict[int, JobStatus] = {}
    for item, row in zip(completions, held, strict=True):
        if isinstance(row, JobOutcome):
            outcomes.append(row)
        elif row.id in applied:
            outcomes.append(_repeat(row, item.status, applied[row.id]))
        elif row.status not in (JobStatus.RUNNING, JobStatus.TERMINATING):
            outcomes.append(_repeat(row, item.status))
        else:
            status = finished.add(
                row,
                succeeded=item.status == CompletionStatus.DONE,
                may_retry=row.retry_on_failure,
            )
            params.append(_row_params(row.id, status, item))
            applied[row.id] = status
            outcomes.append(JobOutcome(row.id))
    if params:
        await _write_completions(session, params, now)
        events = EventBatch()
        events.jobs(EventKind.JOB_COMPLETED, [p["b_id"] for p in params])
        await finished.apply(session, now, events=events)
        await events.flush(session, now)
    return Completed(outcomes, finished.made_ready)


def _row_params(job_id: int, status: JobStatus, item: CompletionItem) -> dict[str, Any]:
    """What applying ``item`` writes on the job's row (one row of the executemany)."""
    message = item.message
    if message is not None and len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return {
        "b_id": job_id,
        "b_status": status,
        "b_reason": _REASONS[status].value,
        "b_message": message,
        "b_exit": item.exit_status,
        "b_result": item.result,
    }


async def _write_completions(
    session: AsyncSession, params: list[dict[str, Any]], now: dt.datetime
) -> None:
    """The completed jobs' rows, in one executemany UPDATE."""
    for row in params:
        row["b_now"] = now
    await session.execute(_completion_update(), params)


@functools.cache
def _completion_update() -> Any:
    return per_job_update(
        status=bindparam("b_status"),
        termination_reason=bindparam("b_reason"),
        termination_message=bindparam("b_message"),
        exit_status=bindparam("b_exit"),
        result=bindparam("b_result"),
        finished_at=bindparam("b_now"),
        lease_expires_at=None,
    )
