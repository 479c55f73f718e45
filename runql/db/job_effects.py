"""Every effect of a finished job, as set-based statements: retry submissions, unblocking
downstream jobs, aborting jobs that can never run, the run's status roll-up, and finishing
stopped runs.

:class:`FinishedJobs` is the one way in: completions (``runql.db.completions``), lease expiry
(``runql.db.lease_expiry``) and stops (``runql.db.lifecycle``) record the jobs they just
ended, classified once here, and ``apply`` sets off the rest in the order that keeps it
exact. Each statement costs the same whatever the number of jobs; the statements are built
once (``functools.cache``) because building them costs more than running them on small
batches. Each statement that changes rows returns their ids (``RETURNING``) for the
transaction's :class:`~runql.db.events.EventBatch`: no statement is added per event.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    exists,
    insert,
    literal,
    literal_column,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from runql.db.enums import (
    ACTIVE_JOB_STATUSES,
    EventKind,
    JobStatus,
    RunStatus,
    TerminationReason,
)
from runql.db.events import EventBatch
from runql.db.models import Job, JobDependency, LogicalJob, Run
from runql.db.types import UTCDateTime, utcnow

#: Runs whose ready jobs may be claimed (a stopping run's are terminated, not claimed).
CLAIMABLE_RUN_STATUSES = (RunStatus.SUBMITTED, RunStatus.RUNNING)

# Status predicates written as SQL literals in the exact form of the partial indexes'
# predicates, so SQLite matches them and PostgreSQL's generic plans can use the indexes.
ACTIVE_SQL = ("BLOCKED", "SUBMITTED", "RUNNING", "TERMINATING")  # ix_jobs_active
LEASED_SQL = ("RUNNING", "TERMINATING")  # ix_jobs_lease


#: The jobs table for Core executemany UPDATEs (ORM bulk updates would not tell loaded rows).
JOBS_TABLE = cast(Table, Job.__table__)


def per_job_update(**values: Any) -> Any:
    """An executemany UPDATE of jobs (claims, completions): one parameter row per job,
    keyed by its id as ``b_id``; ``values`` bind the row's other parameters."""
    return update(JOBS_TABLE).where(JOBS_TABLE.c.id == bindparam("b_id")).values(**values)


def status_in(column: Any, *statuses: str) -> ColumnElement[bool]:
    values: list[ColumnElement[Any]] = [literal_column(f"'{status}'") for status in statuses]
    return column == values[0] if len(values) == 1 else column.in_(values)


#: The columns a new submission of a logical job is written with (a retry, a restart).
NEW_SUBMISSION_COLUMNS = (
    "run_id",
    "replica_num",
    "job_num",
    "submission_num",
    "name",
    "status",
    "run_attempt",
    "submitted_at",
    "spec",
)


@functools.cache
def _retry_statements() -> tuple[Any, Any]:
    old = aliased(Job)
    failed = old.id.in_(bindparam("job_ids", expanding=True))
    add = (
        insert(JOBS_TABLE)
        .from_select(
            list(NEW_SUBMISSION_COLUMNS),
            select(
                old.run_id,
                old.replica_num,
                old.job_num,
                old.submission_num + 1,
                old.name,
                literal(JobStatus.SUBMITTED.value),
                old.run_attempt,
                bindparam("now", type_=UTCDateTime),
                old.spec,
            ).where(failed),
        )
        .returning(JOBS_TABLE.c.id)
    )
    logical = cast(Table, LogicalJob.__table__)
    keys = select(old.run_id, old.replica_num, old.job_num).where(failed)
    move = (
        update(logical)
        .where(tuple_(logical.c.run_id, logical.c.replica_num, logical.c.job_num).in_(keys))
        .values(latest_submission_num=logical.c.latest_submission_num + 1)
    )
    return add, move


async def _add_retry_submissions(
    session: AsyncSession, failed_ids: Sequence[int], now: dt.datetime
) -> list[int]:
    """A new ``SUBMITTED`` submission (``submission_num + 1``, same spec) for each failed
    job of ``failed_ids``, and the logical jobs' ``latest_submission_num`` moved to it, in
    two statements; returns the new submissions' ids. The failed rows keep their reason
    and message: that is job history."""
    add, move = _retry_statements()
    params = {"job_ids": sorted(failed_ids), "now": now}
    added = list((await session.execute(add, params)).scalars())
    await session.execute(move, {"job_ids": params["job_ids"]})
    return added


# The statements below are built once and executed with expanding parameters: building
# these correlated constructs per call cost milliseconds of Python per request.
#
# Their shapes hold without planner statistics (a fresh database, or a run that grew since
# the last ANALYZE). Correlated *scalar* subqueries are never flattened into joins, so each
# check runs as an index probe with the outer row's values, in the order written; sets
# computed once are MATERIALIZED CTEs, so no plan re-runs them per row. Flattened EXISTS
# joins were measured to read every job of a run per candidate (O(n^2) per call).


def _latest_submission(lj: Any, column: Any) -> Any:
    """``column`` of logical job ``lj``'s latest submission: one unique-index probe."""
    latest = aliased(Job)
    return (
        select(getattr(latest, column.key))
        .where(
            latest.run_id == lj.run_id,
            latest.replica_num == lj.replica_num,
            latest.job_num == lj.job_num,
            latest.submission_num == lj.latest_submission_num,
        )
        .correlate(lj)
        .scalar_subquery()
    )


def _first(stmt: Any) -> Any:
    """``(SELECT 1 ... LIMIT 1)``: an existence test that stays a correlated subquery."""
    return stmt.with_only_columns(literal(1), maintain_column_froms=True).limit(1).scalar_subquery()


def _downstream_of_jobs(dep: Any) -> Any:
    """``dep`` rows waiting for the job numbers of the jobs ``:job_ids`` (exact per run):
    the finished jobs by primary key, then ``ix_job_dependencies_upstream``."""
    finished = aliased(Job)
    return (
        select(dep.run_id, dep.job_num)
        .select_from(finished)
        .join(
            dep,
            and_(dep.run_id == finished.run_id, dep.depends_on_job_num == finished.job_num),
        )
        .where(finished.id.in_(bindparam("job_ids", expanding=True)))
    )


def _blocked_jobs_of(job_nums: Any) -> Any:
    """A materialized set of the ids of the ``BLOCKED`` latest submissions of every replica
    of the ``(run_id, job_num)`` rows of ``job_nums`` (a CTE). The submissions are probed by
    their unique key, never found by scanning a run's jobs."""
    lj = aliased(LogicalJob)
    return (
        select(_latest_submission(lj, Job.id).label("id"))
        .select_from(job_nums)
        .join(lj, and_(lj.run_id == job_nums.c.run_id, lj.job_num == job_nums.c.job_num))
        .where(_latest_submission(lj, Job.status) == literal_column("'BLOCKED'"))
        .cte("blocked_jobs")
        .prefix_with("MATERIALIZED")
    )


@functools.cache
def _unblock_statement() -> Any:
    downstream = aliased(JobDependency)
    other = aliased(JobDependency)
    lj = aliased(LogicalJob)
    unfinished_replica = _first(
        select(lj).where(
            lj.run_id == other.run_id,
            lj.job_num == other.depends_on_job_num,
            _latest_submission(lj, Job.status) != literal_column("'DONE'"),
        )
    )
    waiting = _first(
        select(other).where(
            other.run_id == downstream.run_id,
            other.job_num == downstream.job_num,
            unfinished_replica.is_not(None),
        )
    )
    ready = (
        _downstream_of_jobs(downstream)
        .where(waiting.is_(None))
        .cte("ready")
        .prefix_with("MATERIALIZED")
    )
    targets = _blocked_jobs_of(ready)
    return (
        update(JOBS_TABLE)
        .where(JOBS_TABLE.c.id.in_(select(targets.c.id)))
        .values(status=JobStatus.SUBMITTED)
        .returning(JOBS_TABLE.c.id, JOBS_TABLE.c.run_id)
    )


async def _unblock_downstream(
    session: AsyncSession, done_ids: Sequence[int]
) -> list[tuple[int, int]]:
    """``BLOCKED`` jobs downstream of the jobs ``done_ids`` (just finished ``DONE``) become
    ``SUBMITTED`` when every replica of every job they wait for is ``DONE`` (its latest
    submission). One statement: candidates from the upstream index, each checked
    dependency by dependency, replica by replica, with index probes. Returns their ids
    and runs' ids."""
    # On the session's connection: through the ORM session this Core UPDATE (of ORM
    # aliases) would be annotated anew on every call, and its cache key rebuilt (~1 ms).
    connection = await session.connection()
    result = await connection.execute(_unblock_statement(), {"job_ids": sorted(done_ids)})
    return [(job_id, run_id) for job_id, run_id in result]


@functools.cache
def _abort_statement() -> Any:
    doomed = _downstream_of_jobs(JobDependency).cte("doomed", recursive=True)
    dep = aliased(JobDependency)
    doomed = doomed.union(
        select(dep.run_id, dep.job_num).where(
            dep.run_id == doomed.c.run_id, dep.depends_on_job_num == doomed.c.job_num
        )
    )
    # Materialized once more: SQLite has no size estimate for a recursive CTE and would
    # otherwise scan every job to join it.
    doomed_set = select(doomed.c.run_id, doomed.c.job_num).cte("doomed_set")
    targets = _blocked_jobs_of(doomed_set.prefix_with("MATERIALIZED"))
    return (
        update(JOBS_TABLE)
        .where(JOBS_TABLE.c.id.in_(select(targets.c.id)))
        .values(
            status=JobStatus.ABORTED,
            termination_reason=TerminationReason.UPSTREAM_FAILED.value,
            finished_at=bindparam("now", type_=UTCDateTime),
        )
        .returning(JOBS_TABLE.c.id)
    )


async def _abort_downstream(
    session: AsyncSession, failed_ids: Sequence[int], now: dt.datetime
) -> list[int]:
    """Every job downstream (transitively) of the jobs ``failed_ids`` (failed for good) can
    never run: its ``BLOCKED`` submission ends ``ABORTED`` with reason ``UPSTREAM_FAILED``.
    One statement (a recursive CTE over the dependencies). Returns their ids."""
    params = {"job_ids": sorted(failed_ids), "now": now}
    return list((await session.execute(_abort_statement(), params)).scalars())


@functools.cache
def _roll_up_statement() -> Any:
    active_job = aliased(Job)
    first_active = _first(
        select(active_job).where(
            active_job.run_id == Run.id, status_in(active_job.status, *ACTIVE_SQL)
        )
    )
    active = first_active.is_not(None)
    unsuccessful = _first(
        select(LogicalJob).where(
            LogicalJob.run_id == Run.id,
            _latest_submission(LogicalJob, Job.status) != literal_column("'DONE'"),
        )
    ).is_not(None)
    runs = cast(Table, Run.__table__)
    return (
        update(runs)
        .where(
            runs.c.id.in_(bindparam("run_ids", expanding=True)),
            runs.c.status.in_(CLAIMABLE_RUN_STATUSES),
            (runs.c.status == RunStatus.SUBMITTED) | first_active.is_(None),
        )
        .values(
            status=case(
                (active, literal(RunStatus.RUNNING.value)),
                (unsuccessful, literal(RunStatus.FAILED.value)),
                else_=literal(RunStatus.DONE.value),
            ),
            termination_reason=case(
                (active, null()),
                (unsuccessful, literal(TerminationReason.JOB_FAILED.value)),
                else_=literal(TerminationReason.ALL_JOBS_DONE.value),
            ),
            finished_at=case((active, null()), else_=bindparam("now", type_=UTCDateTime)),
        )
        .returning(runs.c.id)
    )


async def _roll_up_runs(
    session: AsyncSession, run_ids: Iterable[int], now: dt.datetime
) -> list[int]:
    """Bring the status of the (not stopping, not finished) ``run_ids`` in line with their
    jobs, in one UPDATE that writes only the runs whose status changes:

    * something still active (blocked, ready, claimed): ``RUNNING``;
    * nothing active and every logical job's latest submission ``DONE``: ``DONE``
      (reason ``ALL_JOBS_DONE``);
    * nothing active, some job failed for good: ``FAILED`` (reason ``JOB_FAILED``).

    ``finished_at`` is set in the same write, so exactly once. Returns the ids of the
    runs it changed.
    """
    params = {"run_ids": sorted(run_ids), "now": now}
    return list((await session.execute(_roll_up_statement(), params)).scalars())


async def finish_stopped_runs(
    session: AsyncSession, run_ids: Iterable[int], now: dt.datetime | None = None
) -> set[int]:
    """Move each ``TERMINATING`` run of ``run_ids`` with no active job left to ``TERMINATED``
    (reason ``TERMINATED_BY_USER``); returns the ids it finished.

    One UPDATE whatever the number of runs. Call it after any change that may have ended
    a stopping run's last active job: a graceful stop, or a runner completing a
    ``TERMINATING`` job. Runs in other statuses are left alone.
    """
    ids = list(run_ids)
    if not ids:
        return set()
    active_job = exists().where(
        LogicalJob.run_id == Run.id,
        Job.run_id == LogicalJob.run_id,
        Job.replica_num == LogicalJob.replica_num,
        Job.job_num == LogicalJob.job_num,
        Job.submission_num == LogicalJob.latest_submission_num,
        Job.status.in_(sorted(ACTIVE_JOB_STATUSES)),
    )
    stmt = (
        update(Run)
        .where(Run.id.in_(ids), Run.status == RunStatus.TERMINATING, ~active_job)
        .values(
            status=RunStatus.TERMINATED,
            finished_at=now or utcnow(),
            termination_reason=TerminationReason.TERMINATED_BY_USER.value,
        )
        .returning(Run.id)
        .execution_options(synchronize_session="fetch")
    )
    return set(await session.scalars(stmt))


# --- the one way in --------------------------------------------------------------------


class FinishingJob(Protocol):
    """The columns of a job that classify how it ended (a plain row, not an ORM object).

    ``retry_limit`` is the submission number below which a failure is retried: the
    policy's limit counted from the submission the run's current attempt started the job
    at (select it with :func:`retry_limit_column`), so a restart's budget is fresh.
    """

    id: int
    run_id: int
    submission_num: int
    status: JobStatus
    run_status: RunStatus
    retry_limit: int


def retry_limit_column() -> Any:
    """:attr:`FinishingJob.retry_limit` for a read joined to ``LogicalJob``."""
    return (LogicalJob.retry_limit + LogicalJob.retry_base).label("retry_limit")


@dataclass(slots=True)
class FinishedJobs:
    """The jobs that just finished in one transaction, by what they set off.

    ``done`` may unblock downstream jobs; ``retried`` (failed, a retry left) get a new
    submission; ``failed_for_good`` abort what is downstream of them; ``stopped`` (jobs of
    stopping runs) set off nothing but, maybe, the end of their run. ``runs`` are the runs
    touched: their status is rolled up, except ``stopping_runs``, which are finished once no
    job of theirs is active.
    """

    done: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed_for_good: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    runs: set[int] = field(default_factory=set)
    stopping_runs: set[int] = field(default_factory=set)
    #: Runs seen ``RUNNING`` (their status cannot go back to ``SUBMITTED``).
    running_runs: set[int] = field(default_factory=set)
    #: Runs with a retry of a job just added (it is ``SUBMITTED``: the run is active).
    retrying_runs: set[int] = field(default_factory=set)
    #: After :meth:`apply`: how many jobs it made ``SUBMITTED`` (retries, unblocked).
    made_ready: int = 0

    @classmethod
    def of_stopped_runs(cls, run_ids: Iterable[int]) -> FinishedJobs:
        """The jobs a stop just ended, by run: ended set-based, so not listed one by one."""
        runs = set(run_ids)
        return cls(runs=runs, stopping_runs=set(runs))

    def add(self, job: FinishingJob, *, succeeded: bool, may_retry: bool) -> JobStatus:
        """Record that ``job`` just ended; returns the status it ends in.

        A job of a stopping run (the job or its run ``TERMINATING``) ends ``TERMINATED``
        whatever happened. Otherwise ``DONE`` when it ``succeeded``, else ``FAILED``: with a
        retry when its policy for this kind of failure (``may_retry``) allows one and it has
        retries left (``submission_num < retry_limit``), for good otherwise.
        """
        self.runs.add(job.run_id)
        if job.run_status == RunStatus.RUNNING:
            self.running_runs.add(job.run_id)
        if job.status == JobStatus.TERMINATING or job.run_status == RunStatus.TERMINATING:
            self.stopped.append(job.id)
            self.stopping_runs.add(job.run_id)
            return JobStatus.TERMINATED
        if succeeded:
            self.done.append(job.id)
            return JobStatus.DONE
        if may_retry and job.submission_num < job.retry_limit:
            self.retried.append(job.id)
            self.retrying_runs.add(job.run_id)
        else:
            self.failed_for_good.append(job.id)
        return JobStatus.FAILED

    @property
    def failed(self) -> list[int]:
        """Every job that ended ``FAILED`` (with a retry or for good), in id order."""
        return sorted(self.retried + self.failed_for_good)

    async def apply(self, session: AsyncSession, now: dt.datetime, *, events: EventBatch) -> None:
        """What the jobs set off, in an order that keeps it exact: retries first, then
        aborting (a job downstream of a failure must not be unblocked), then unblocking,
        then the runs' statuses, then the stopping runs left with nothing active. The
        jobs' own rows (and their events) are written by the caller, before this; the
        events of what they set off go to ``events``, which the caller flushes.

        The roll-up leaves a ``RUNNING`` run with an active job as it is, so it is not
        asked about runs that were ``RUNNING`` and got a job ``SUBMITTED`` here (a retry,
        an unblocked job): on a pipeline, about every other completion transaction
        saves that statement."""
        active = set(self.retrying_runs)
        if self.retried:
            added = await _add_retry_submissions(session, self.retried, now)
            events.jobs(EventKind.JOB_RETRIED, sorted(added))
            self.made_ready += len(added)
        if self.failed_for_good:
            aborted = await _abort_downstream(session, self.failed_for_good, now)
            events.jobs(EventKind.JOB_ABORTED, sorted(aborted))
        if self.done:
            unblocked = await _unblock_downstream(session, self.done)
            events.jobs(EventKind.JOB_UNBLOCKED, sorted(job_id for job_id, _ in unblocked))
            active.update(run_id for _, run_id in unblocked)
            self.made_ready += len(unblocked)
        to_roll_up = self.runs - self.stopping_runs - (active & self.running_runs)
        if to_roll_up:
            changed = await _roll_up_runs(session, to_roll_up, now)
            events.runs(EventKind.RUN_STATUS_CHANGED, sorted(changed))
        if self.stopping_runs:
            finished = await finish_stopped_runs(session, self.stopping_runs, now)
            events.runs(EventKind.RUN_STATUS_CHANGED, sorted(finished))
