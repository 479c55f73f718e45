"""Claims: a runner takes ready jobs, each with a lease and a claim token, and the check
that a later renewal or completion still holds that claim.

Claim tokens are random secrets handed to the runner once; only their SHA-256 is stored
(``claim_token_hash``). A token stays on a job after its completion, so a repeated
completion can be recognised and answered without applying it twice; the lease sweeper
(``runql.db.lease_expiry``) clears it, so a late runner's writes are refused as stale.

The hot path of an orchestrator is claims and completions, so a claim costs a fixed
number of statements whatever the batch size: one locking read of the ready jobs, one
(executemany) UPDATE of them, the runs it starts and the events. Per job, Python only
decides; it never issues SQL. Claims never wait for a lock (``FOR UPDATE SKIP LOCKED``),
so they cannot close a cycle with the writers that do (``runql.db.locking``). The lease
starts after the locking read: a claim that waited for other writers must not hand out a
lease partly spent while it waited.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.accounts import hash_token
from runql.db.dialect import is_sqlite
from runql.db.enums import EventKind, JobStatus, RunStatus
from runql.db.events import EventBatch
from runql.db.job_effects import CLAIMABLE_RUN_STATUSES, JOBS_TABLE, per_job_update, status_in
from runql.db.jobs import JobRow
from runql.db.locking import LockedJob, lock_runs_of_jobs
from runql.db.models import Job, Project, Run
from runql.db.types import as_object, utcnow
from runql.db.visibility import Viewer, viewer_params, visible_projects_bound
from runql.error_codes import ErrorCode

CLAIM_TOKEN_PREFIX = "rqc_"


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
    lease_expires_at: dt.datetime | None = None  # a renewed lease's new expiry


NOT_FOUND = JobOutcome(
    refusal=ErrorCode.NOT_FOUND,
    detail="no such job (unknown, deleted, or in a project you are not a member of)",
    must_stop=True,
)


class HeldItem(Protocol):
    """An item of a renewal or completion: a job the caller says it holds, and the hash of
    the claim token it holds it by."""

    @property
    def job_id(self) -> int: ...

    @property
    def token_hash(self) -> str: ...


Locked = TypeVar("Locked", bound=LockedJob)


async def lock_held(
    session: AsyncSession,
    viewer: Viewer,
    items: Sequence[HeldItem],
    read: Callable[[AsyncSession, Viewer, Sequence[int]], Awaitable[Mapping[int, Locked]]],
    *,
    share: bool = False,
) -> list[Locked | JobOutcome]:
    """Lock the jobs of ``items`` (their runs first, ``FOR SHARE`` with ``share``; the
    jobs with ``read``, ``runql.db.locking``) and check each item's claim: per item, in
    order, the job's locked row when the item's token holds its current claim, else the
    outcome refusing the item (``NOT_FOUND``, ``STALE_CLAIM``)."""
    ids = sorted({item.job_id for item in items})
    await lock_runs_of_jobs(session, viewer, ids, share=share)
    found = await read(session, viewer, ids)
    held: list[Locked | JobOutcome] = []
    for item in items:
        row = found.get(item.job_id)
        held.append(NOT_FOUND if row is None else _claim_refusal(row, item.token_hash) or row)
    return held


def _claim_refusal(job: LockedJob, token_hash: str) -> JobOutcome | None:
    """Why the caller's token no longer holds the job's current claim (the refused item's
    outcome), or None when it does."""
    if job.claim_token_hash is None or not secrets.compare_digest(job.claim_token_hash, token_hash):
        detail = (
            "the claim token does not match the job's current claim "
            "(its lease expired and it was requeued, or it was claimed with another token)"
        )
    elif job.run_attempt != job.attempt:
        detail = "the run was restarted since this job was claimed"
    elif job.status == JobStatus.ABORTED:
        detail = "the job was aborted"
    else:
        return None
    return JobOutcome(job.id, ErrorCode.STALE_CLAIM, detail, must_stop=True)


# --- claiming --------------------------------------------------------------------------


# Every statement below is built once per shape (``functools.cache``) and run with bound
# parameters: building one costs more Python than running it on a 50-job batch, and a
# statement object built once also keeps its SQLAlchemy cache key. The shapes: whether the
# viewer is an admin (who sees every project), the dialect where plans differ, and for
# claims whether one project was asked for. The viewer's user id is ``viewer_id``.


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
    return per_job_update(
        status=JobStatus.RUNNING,
        runner_name=bindparam("b_runner"),
        started_at=bindparam("b_now"),
        lease_expires_at=bindparam("b_expires"),
        claim_token_hash=bindparam("b_hash"),
        run_attempt=bindparam("b_attempt"),
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
    params = viewer_params(viewer)
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
