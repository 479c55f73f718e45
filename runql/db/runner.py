"""Set-based writes of the runner API: claims, lease renewals and completions. What a
finished job sets off (unblocking, retries, aborting downstream jobs, the run's status) is
in ``runql.db.job_effects``; taking jobs back from runners whose lease expired is in
``runql.db.lease_expiry``.

The hot path of an orchestrator is claims and completions, so every call here costs a
fixed number of statements whatever the batch size: one read of the requested rows, one
(executemany) UPDATE of the accepted ones, then a handful of set-based statements for the
effects. Per item, Python only decides; it never issues SQL.

Locking (PostgreSQL; on SQLite the caller's ``Database.write()`` already excludes other
writers and the locking clauses compile to nothing). One order for every writer that
waits for a row lock: **runs before jobs, each in id order**. A transaction locks every
run it will touch, in id order, before it locks or changes any job of them, and locks the
jobs it reads in id order. Claims aside (they never wait, below), a job is then only
locked by transactions that hold its run: exclusively, or shared by renewals that lock
jobs in id order too. No two writers can wait for each other in a cycle, whatever order a
later statement updates a run's jobs in:

* Stops, deletes (``runql.db.lifecycle.lock_runs``), completions and the lease sweeper
  (``runql.db.lease_expiry``) lock their runs ``FOR UPDATE``, then the jobs they read, in
  id order; unblocking, aborting and stopping then update other jobs of those runs in plan
  order, which is safe because no other waiting writer can hold them. Two completions of
  the same run serialise, which is what makes unblocking exact (each sees the other's
  finished upstream jobs). The sweeper takes runs with ``SKIP LOCKED``: it never waits for
  a run, and leaves a busy one to its next sweep.
* Renewals lock their runs ``FOR SHARE``, then the renewed jobs. Share locks do not
  conflict, so renewals of one run go side by side, but a renewal and a stop, completion
  or sweep of the run (``FOR UPDATE``) wait for each other at the run, never halfway
  through the jobs. (Renewals once locked only the jobs: one holding half of a run's jobs
  met a stop holding the run and updating the other half, and PostgreSQL aborted one of
  them with ``deadlock detected``.) ``FOR SHARE`` rather than ``FOR KEY SHARE``: it also
  conflicts with a plain ``UPDATE`` of the run, so no writer changes a run under a renewal.
* Claims never wait, so they cannot close a cycle: they lock only ready jobs
  (``FOR UPDATE SKIP LOCKED``) and flip their runs to ``RUNNING`` through ``SKIP LOCKED``
  too (the roll-up after the next completion repairs a skipped flip).

Times written under a lock (``startedAt``, lease expiries) are taken after the locking read:
a claim or renewal that waited for other writers must not hand out a lease partly spent
while it waited.

Claim tokens are random secrets handed to the runner once; only their SHA-256 is stored
(``claim_token_hash``). A token stays on a job after its completion, so a repeated
completion can be recognised and answered without applying it twice; the lease sweeper
clears it, so a late runner's writes are refused as stale.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, cast

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.accounts import hash_token
from runql.db.dialect import is_sqlite
from runql.db.enums import CompletionStatus, EventKind, JobStatus, RunStatus, TerminationReason
from runql.db.events import EventBatch
from runql.db.job_effects import (
    CLAIMABLE_RUN_STATUSES,
    JOBS_TABLE,
    FinishedJobs,
    retry_limit_column,
    status_in,
)
from runql.db.jobs import JobRow
from runql.db.models import Job, LogicalJob, Project, Run, submission_of
from runql.db.types import as_object, utcnow
from runql.db.visibility import Viewer, visible_projects_bound
from runql.error_codes import ErrorCode

CLAIM_TOKEN_PREFIX = "rqc_"
#: What a runner's report leaves in ``termination_message`` (the column's width).
MAX_MESSAGE_LENGTH = 1000


def new_claim_token() -> str:
    return CLAIM_TOKEN_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Claim:
    """A job handed to a runner (its row as the claim left it), with the token only that
    runner knows."""

    job: JobRow
    token: str
    lease_expires_at: dt.datetime
    #: The job's ``spec`` when the claim was asked for it (``with_spec``), else ``None``.
    spec: Any = None


@dataclass(frozen=True, slots=True)
class Completed:
    """What a batch of completions did: an outcome per item, in request order, and how
    many jobs their effects made claimable (retries, unblocked downstream jobs)."""

    outcomes: list[JobOutcome]
    made_ready: int


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """One item of a renewal or completion batch: the id of the job it applied to, or why
    it was refused (``NOT_FOUND``, ``STALE_CLAIM`` or ``INVALID_STATE``).

    Only the id: most runners do not ask for the job back, so the callers load it (with
    the per-request loader, one statement) only when the response needs it.
    ``must_stop`` tells a runner to stop working on the job: its run is stopping, or the
    job is no longer the runner's.
    """

    job_id: int | None = None
    refusal: ErrorCode | None = None
    detail: str = ""
    must_stop: bool = False
    repeated: bool = False  # a completion answered again, not applied twice


@dataclass(frozen=True, slots=True)
class LeaseItem:
    job_id: int
    token_hash: str


@dataclass(frozen=True, slots=True)
class Renewals:
    """The outcomes of a renewal batch, in request order, and the expiry it wrote."""

    outcomes: list[JobOutcome]
    lease_expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CompletionItem:
    """One completion as the database layer applies it (already validated)."""

    job_id: int
    token_hash: str
    status: CompletionStatus
    exit_status: int | None = None
    message: str | None = None
    result: dict[str, Any] | None = None


# --- claims ----------------------------------------------------------------------------


# Every statement below is built once per shape (``functools.cache``) and run with bound
# parameters: building one costs more Python than running it on a 50-job batch, and a
# statement object built once also keeps its SQLAlchemy cache key. The shapes: whether the
# viewer is an admin (who sees every project), the dialect where plans differ, and for
# claims whether one project was asked for. The viewer's user id is ``viewer_id``.


def _viewer_params(viewer: Viewer) -> dict[str, Any]:
    return {} if viewer.is_admin else {"viewer_id": viewer.user_id}


def _claimable(is_admin: bool, by_project: bool, sqlite: bool, *columns: Any) -> Any:
    # SQLite, without statistics, would start from the viewer's runs and read every job of
    # each; ``+ 0`` keeps it from looking jobs up by run_id, so the plan starts from the
    # small partial index of ready jobs. PostgreSQL plans that well by itself, and the
    # expression would cost it the runs primary key.
    run_id = Job.run_id + 0 if sqlite else Job.run_id
    stmt = (
        select(*columns)
        .join(Run, Run.id == run_id)
        .where(
            status_in(Job.status, "SUBMITTED"),
            Run.status.in_(CLAIMABLE_RUN_STATUSES),
            Run.deleted.is_(False),
            visible_projects_bound(is_admin, Run.project_id),
        )
    )
    if by_project:
        project_id = (
            select(Project.id).where(Project.name == bindparam("project_name")).scalar_subquery()
        )
        stmt = stmt.where(Run.project_id == project_id)
    return stmt


@functools.cache
def _exists_statement(is_admin: bool, by_project: bool, sqlite: bool) -> Any:
    return _claimable(is_admin, by_project, sqlite, Job.id).limit(1)


#: The columns of a claimed job: those of :class:`~runql.db.jobs.JobRow`, the plain row
#: every ``Job`` field reads (no ORM entity per job: hydrating one cost more than the rest of
#: a claim's work on it).
_CLAIMED_COLUMNS = tuple(f.name for f in fields(JobRow))


@functools.cache
def _claim_statement(is_admin: bool, by_project: bool, sqlite: bool, with_spec: bool) -> Any:
    columns = [JOBS_TABLE.c[name] for name in _CLAIMED_COLUMNS]
    if with_spec:  # runners run it: read it with the claim, not in a statement after
        columns.append(JOBS_TABLE.c.spec)
    return (
        _claimable(is_admin, by_project, sqlite, *columns, Run.attempt, Run.status)
        .order_by(Run.priority.desc(), Job.submitted_at, Job.id)
        .limit(bindparam("limit"))
        .with_for_update(of=Job, skip_locked=True)
    )


@functools.cache
def _claim_update() -> Any:
    """The claimed jobs' rows, one executemany row per job (its own token hash)."""
    jobs = JOBS_TABLE.c
    return (
        update(JOBS_TABLE)
        .where(jobs.id == bindparam("b_id"))
        .values(
            status=JobStatus.RUNNING,
            runner_name=bindparam("b_runner"),
            started_at=bindparam("b_now"),
            lease_expires_at=bindparam("b_expires"),
            claim_token_hash=bindparam("b_hash"),
            run_attempt=bindparam("b_attempt"),
        )
    )


@functools.cache
def _start_runs_statement() -> Any:
    """Runs of ``run_ids`` still ``SUBMITTED`` become ``RUNNING``; busy ones are skipped."""
    locked = (
        select(Run.id)
        .where(Run.id.in_(bindparam("run_ids", expanding=True)), Run.status == RunStatus.SUBMITTED)
        .with_for_update(skip_locked=True)
    )
    return (
        update(Run)
        .where(Run.id.in_(locked))
        .values(status=RunStatus.RUNNING)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )


def _claim_params(viewer: Viewer, project_name: str | None, **more: Any) -> dict[str, Any]:
    params = _viewer_params(viewer)
    if project_name is not None:
        params["project_name"] = project_name
    return params | more


async def claimable_jobs_exist(
    session: AsyncSession, viewer: Viewer, project_name: str | None
) -> bool:
    """Whether a claim could find work: a plain read, so SQLite callers can skip taking
    the write lock for an empty claim (idle runners poll; they must not queue writers)."""
    stmt = _exists_statement(viewer.is_admin, project_name is not None, is_sqlite(session))
    return (await session.scalar(stmt, _claim_params(viewer, project_name))) is not None


async def claim_jobs(
    session: AsyncSession,
    viewer: Viewer,
    *,
    runner_name: str,
    project_name: str | None,
    limit: int,
    lease: dt.timedelta,
    with_spec: bool = False,
) -> list[Claim]:
    """Claim up to ``limit`` ready jobs the viewer may run: highest run priority first,
    then oldest submission. They become ``RUNNING`` for ``runner_name`` with a fresh token
    each and a lease of ``lease`` from the moment they are locked; runs still
    ``SUBMITTED`` become ``RUNNING``. At most four statements, whatever ``limit`` is
    (the last appends the events: ``JOB_CLAIMED`` per job, ``RUN_STATUS_CHANGED`` per
    run started). ``with_spec``: each claim carries its job's ``spec`` too.
    """
    stmt = _claim_statement(
        viewer.is_admin, project_name is not None, is_sqlite(session), with_spec
    )
    rows = (await session.execute(stmt, _claim_params(viewer, project_name, limit=limit))).all()
    if not rows:
        return []
    now = utcnow()  # after the write lock (SQLite) and the job locks: the lease is whole
    lease_expires_at = now + lease
    claimed = {
        "status": JobStatus.RUNNING,
        "runner_name": runner_name,
        "started_at": now,
        "lease_expires_at": lease_expires_at,
    }
    claims: list[Claim] = []
    params: list[dict[str, Any]] = []
    starting: set[int] = set()
    width = len(_CLAIMED_COLUMNS)
    for row in rows:
        values = dict(zip(_CLAIMED_COLUMNS, row[:width], strict=True))
        spec = row[width] if with_spec else None
        attempt, run_status = row[-2], row[-1]
        values.update(claimed, run_attempt=attempt)
        job = JobRow(**values)
        token = new_claim_token()
        params.append(
            {
                "b_id": job.id,
                "b_hash": hash_token(token),
                "b_attempt": attempt,
                "b_runner": runner_name,
                "b_now": now,
                "b_expires": lease_expires_at,
            }
        )
        claims.append(Claim(job, token, lease_expires_at, as_object(spec) if with_spec else None))
        if run_status == RunStatus.SUBMITTED:
            starting.add(job.run_id)
    await session.execute(_claim_update(), params)
    events = EventBatch()
    events.jobs(EventKind.JOB_CLAIMED, [claim.job.id for claim in claims])
    if starting:
        started = await session.scalars(_start_runs_statement(), {"run_ids": sorted(starting)})
        events.runs(EventKind.RUN_STATUS_CHANGED, sorted(started))
    await events.flush(session, now)
    return claims


# --- the locking read and claim check shared by renewals and completions ---------------


class LockedJob(Protocol):
    """A row of :func:`_locked_jobs`: the job's columns deciding needs, with its run's
    status and attempt (a plain row, no ORM object per item)."""

    id: int
    run_id: int
    job_num: int
    submission_num: int
    status: JobStatus
    claim_token_hash: str | None
    run_attempt: int
    run_status: RunStatus
    attempt: int


class LockedCompletion(LockedJob, Protocol):
    """A row of :func:`_locked_completions`: a locked job with its retry policy."""

    retry_limit: int
    retry_on_failure: bool


@functools.cache
def _lock_runs_statement(is_admin: bool, share: bool) -> Any:
    runs = select(Job.run_id).where(Job.id.in_(bindparam("job_ids", expanding=True)))
    return (
        select(Run.id)
        .where(Run.id.in_(runs), visible_projects_bound(is_admin, Run.project_id))
        .order_by(Run.id)
        .with_for_update(read=share)
    )


async def _lock_runs_of_jobs(
    session: AsyncSession, viewer: Viewer, job_ids: Sequence[int], *, share: bool = False
) -> None:
    """PostgreSQL: lock the runs of ``job_ids`` in id order before any of their jobs, the
    order every waiting writer keeps (``FOR UPDATE``, or ``FOR SHARE`` for renewals).
    SQLite holds the database write lock already."""
    if is_sqlite(session):
        return
    stmt = _lock_runs_statement(viewer.is_admin, share)
    await session.execute(stmt, {"job_ids": job_ids, **_viewer_params(viewer)})


@functools.cache
def _locking_read(is_admin: bool, with_policy: bool) -> Any:
    """The jobs of ``job_ids`` of visible, live runs, locked in id order, with the columns
    of :class:`LockedJob` (and of :class:`LockedCompletion` ``with_policy``)."""
    extra = (retry_limit_column(), LogicalJob.retry_on_failure) if with_policy else ()
    stmt = (
        select(
            Job.id,
            Job.run_id,
            Job.job_num,
            Job.submission_num,
            Job.status,
            Job.claim_token_hash,
            Job.run_attempt,
            Run.status.label("run_status"),
            Run.attempt,
            *extra,
        )
        .join(Run, Run.id == Job.run_id)
        .where(
            Job.id.in_(bindparam("job_ids", expanding=True)),
            Run.deleted.is_(False),
            visible_projects_bound(is_admin, Run.project_id),
        )
        .order_by(Job.id)
        .with_for_update(of=Job)
    )
    if with_policy:
        stmt = stmt.join(LogicalJob, submission_of(Job, LogicalJob))
    return stmt


async def _locked_jobs(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, LockedJob]:
    """The requested jobs, locked, by id; absent ids are unknown or not visible."""
    stmt = _locking_read(viewer.is_admin, False)
    rows = await session.execute(stmt, {"job_ids": ids, **_viewer_params(viewer)})
    return cast("dict[int, LockedJob]", {row.id: row for row in rows})


async def _locked_completions(
    session: AsyncSession, viewer: Viewer, ids: Sequence[int]
) -> dict[int, LockedCompletion]:
    """As :func:`_locked_jobs`, with each job's retry policy."""
    stmt = _locking_read(viewer.is_admin, True)
    rows = await session.execute(stmt, {"job_ids": ids, **_viewer_params(viewer)})
    return cast("dict[int, LockedCompletion]", {row.id: row for row in rows})


def _claim_refusal(job: LockedJob, token_hash: str) -> tuple[ErrorCode, str] | None:
    """Whether the caller's token still holds the job's current claim."""
    if job.claim_token_hash is None or not secrets.compare_digest(job.claim_token_hash, token_hash):
        return ErrorCode.STALE_CLAIM, (
            "the claim token does not match the job's current claim "
            "(its lease expired and it was requeued, or it was claimed with another token)"
        )
    if job.run_attempt != job.attempt:
        return ErrorCode.STALE_CLAIM, "the run was restarted since this job was claimed"
    if job.status == JobStatus.ABORTED:
        return ErrorCode.STALE_CLAIM, "the job was aborted"
    return None


NOT_FOUND = JobOutcome(
    refusal=ErrorCode.NOT_FOUND,
    detail="no such job (unknown, deleted, or in a project you are not a member of)",
    must_stop=True,
)


# --- renewals --------------------------------------------------------------------------


async def renew_leases(
    session: AsyncSession,
    viewer: Viewer,
    leases: Sequence[LeaseItem],
    *,
    lease: dt.timedelta,
) -> Renewals:
    """Extend every lease whose token still holds the job's claim to ``lease`` from now
    (once the locks are held); an outcome per item, in order. A job of a stopping run is
    renewed too (its runner winds it down) and answered ``must_stop``. Two statements
    whatever the batch size, three on PostgreSQL (the runs' share locks)."""
    ids = sorted({item.job_id for item in leases})
    await _lock_runs_of_jobs(session, viewer, ids, share=True)
    found = await _locked_jobs(session, viewer, ids)
    lease_expires_at = utcnow() + lease
    outcomes: list[JobOutcome] = []
    renewed: set[int] = set()
    for item in leases:
        row = found.get(item.job_id)
        if row is None:
            outcomes.append(NOT_FOUND)
            continue
        refusal = _claim_refusal(row, item.token_hash)
        if refusal is not None:
            outcomes.append(JobOutcome(row.id, *refusal, must_stop=True))
        elif row.status not in (JobStatus.RUNNING, JobStatus.TERMINATING):
            outcomes.append(
                JobOutcome(
                    row.id,
                    ErrorCode.INVALID_STATE,
                    f"the job is already finished ({row.status}); nothing to renew",
                    must_stop=True,
                )
            )
        else:
            renewed.add(row.id)
            outcomes.append(JobOutcome(row.id, must_stop=row.status == JobStatus.TERMINATING))
    if renewed:
        await session.execute(
            _renew_statement(), {"job_ids": sorted(renewed), "expires": lease_expires_at}
        )
    return Renewals(outcomes, lease_expires_at)


@functools.cache
def _renew_statement() -> Any:
    return (
        update(Job)
        .where(Job.id.in_(bindparam("job_ids", expanding=True)))
        .values(lease_expires_at=bindparam("expires"))
        .execution_options(synchronize_session=False)
    )


# --- completions -----------------------------------------------------------------------


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
    ids = sorted({item.job_id for item in completions})
    await _lock_runs_of_jobs(session, viewer, ids)
    found = await _locked_completions(session, viewer, ids)
    now = now or utcnow()
    finished = FinishedJobs()
    params: list[dict[str, Any]] = []
    outcomes: list[JobOutcome] = []
    applied: dict[int, JobStatus] = {}
    for item in completions:
        row = found.get(item.job_id)
        if row is None:
            outcomes.append(NOT_FOUND)
            continue
        # The token first: a repeat is recognised only when it carries the claim's token,
        # so a forged item after an applied one is refused, not answered as applied.
        refusal = _claim_refusal(row, item.token_hash)
        if refusal is not None:
            outcomes.append(JobOutcome(row.id, *refusal, must_stop=True))
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
    jobs = JOBS_TABLE.c
    return (
        update(JOBS_TABLE)
        .where(jobs.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            termination_reason=bindparam("b_reason"),
            termination_message=bindparam("b_message"),
            exit_status=bindparam("b_exit"),
            result=bindparam("b_result"),
            finished_at=bindparam("b_now"),
            lease_expires_at=None,
        )
    )
