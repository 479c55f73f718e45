"""Restarting finished runs, set-based: a new attempt re-runs what failed (or everything)
without submitting the workload again.

A restart takes up to hundreds of runs per call (``restartRuns``) and costs a fixed
number of statements whatever their number or size: the caller's one locking read of the
runs (``runql.db.lifecycle.lock_runs``), then one INSERT ... SELECT of every new
submission, one UPDATE of the logical jobs' pointers, one UPDATE of the runs and the
events' INSERT. Per run, Python only decides (permission, status); it never issues SQL.

What a restart does to a run it accepts (``DONE``, ``FAILED`` or ``TERMINATED``):

* each logical job it re-runs gets a new submission (``submission_num`` + 1, the same
  spec), ``SUBMITTED`` when no job it waits for is re-run (every upstream's latest
  submission is a kept ``DONE``), ``BLOCKED`` otherwise; completions unblock it later as
  for any job. Scope ``FAILED`` re-runs the logical jobs whose latest submission did not
  end ``DONE``; ``ALL`` re-runs every one. Older submissions stay: they are history.
* the logical job's latest-submission pointer moves to the new row in the same
  transaction, and its ``retry_base`` too: retries are counted from the new submission,
  so the retry budget is fresh (``runql.db.job_effects.FinishingJob``).
* the run's ``attempt`` + 1 (every claim token of an earlier attempt is then refused as
  ``STALE_CLAIM``: ``runql.db.claims``), ``finishedAt`` and ``terminationReason``
  cleared, ``restarted_by`` set to the caller, status ``SUBMITTED``. A re-run set always
  has a job whose upstream jobs are all kept (the DAG has no cycle), so the run has a
  ready job and ``SUBMITTED`` is what its submissions make it.

Locks: the runs are held ``FOR UPDATE`` (id order) before any statement touches a job,
the order every writer keeps (``runql.db.locking``). The INSERT only reads existing jobs
and the UPDATE of ``logical_jobs`` touches rows of the held runs only, so a restart
waits for nothing but runs.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    exists,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from runql.db.enums import FINISHED_RUN_STATUSES, EventKind, JobStatus, RestartScope, RunStatus
from runql.db.events import EventBatch
from runql.db.job_effects import JOBS_TABLE, NEW_SUBMISSION_COLUMNS
from runql.db.lifecycle import LockedRuns, RunOutcome
from runql.db.models import JobDependency, LogicalJob, Run
from runql.db.types import UTCDateTime, utcnow
from runql.db.visibility import Viewer
from runql.error_codes import ErrorCode

#: Run statuses a restart accepts (the final ones).
RESTARTABLE = FINISHED_RUN_STATUSES

_LOGICAL = cast(Table, LogicalJob.__table__)
_RUNS = cast(Table, Run.__table__)


def _latest_of(lj: Any) -> Any:
    """An alias of ``jobs`` and the condition that it is ``lj``'s latest submission."""
    latest = JOBS_TABLE.alias()
    return latest, and_(
        latest.c.run_id == lj.c.run_id,
        latest.c.replica_num == lj.c.replica_num,
        latest.c.job_num == lj.c.job_num,
        latest.c.submission_num == lj.c.latest_submission_num,
    )


def _rerun(lj: Any, scope: RestartScope) -> Any:
    """Whether logical job ``lj`` is re-run: under ``FAILED``, its latest submission is
    not ``DONE`` (a correlated probe of the unique submission index)."""
    if scope == RestartScope.ALL:
        return literal(True)
    latest, is_latest = _latest_of(lj)
    status = select(latest.c.status).where(is_latest).correlate(lj).scalar_subquery()
    return status != literal_column("'DONE'")


@functools.cache
def _insert_statement(scope: RestartScope) -> Any:
    """One INSERT ... SELECT: the new submission of every re-run logical job of the runs
    ``:run_ids``; returns the new rows' ids and runs."""
    lj = _LOGICAL.alias("lj")
    latest, is_latest = _latest_of(lj)
    dep = aliased(JobDependency)
    upstream = _LOGICAL.alias("up")
    waits_for_rerun = exists(
        select(literal(1))
        .select_from(dep)
        .join(
            upstream,
            and_(upstream.c.run_id == dep.run_id, upstream.c.job_num == dep.depends_on_job_num),
        )
        .where(dep.run_id == lj.c.run_id, dep.job_num == lj.c.job_num, _rerun(upstream, scope))
    ).correlate(lj)
    run_ids: Any = bindparam("run_ids", expanding=True)
    chosen = (
        select(
            lj.c.run_id,
            lj.c.replica_num,
            lj.c.job_num,
            lj.c.latest_submission_num + 1,
            lj.c.name,
            case(
                (waits_for_rerun, literal(JobStatus.BLOCKED.value)),
                else_=literal(JobStatus.SUBMITTED.value),
            ),
            _RUNS.c.attempt + 1,
            bindparam("now", type_=UTCDateTime),
            latest.c.spec,
        )
        .select_from(lj)
        .join(_RUNS, _RUNS.c.id == lj.c.run_id)
        .join(latest, is_latest)
        .where(lj.c.run_id.in_(run_ids))
        # New ids in the order a user reads a run's jobs (insert_run's order).
        .order_by(lj.c.run_id, lj.c.job_num, lj.c.replica_num)
    )
    if scope == RestartScope.FAILED:
        chosen = chosen.where(latest.c.status != literal_column("'DONE'"))
    return (
        insert(JOBS_TABLE)
        .from_select(list(NEW_SUBMISSION_COLUMNS), chosen)
        .returning(JOBS_TABLE.c.id, JOBS_TABLE.c.run_id)
    )


@functools.cache
def _move_pointers_statement() -> Any:
    """The logical jobs of ``:run_ids`` that just got a submission past their latest
    point at it, and count retries from it."""
    added = JOBS_TABLE.alias()
    has_new = exists(
        select(literal(1)).where(
            added.c.run_id == _LOGICAL.c.run_id,
            added.c.replica_num == _LOGICAL.c.replica_num,
            added.c.job_num == _LOGICAL.c.job_num,
            added.c.submission_num == _LOGICAL.c.latest_submission_num + 1,
        )
    )
    return (
        update(_LOGICAL)
        .where(_LOGICAL.c.run_id.in_(bindparam("run_ids", expanding=True)), has_new)
        .values(
            latest_submission_num=_LOGICAL.c.latest_submission_num + 1,
            retry_base=_LOGICAL.c.latest_submission_num + 1,
        )
    )


def _refusal(viewer: Viewer, locked: LockedRuns, run: Run, scope: RestartScope) -> ErrorCode | None:
    if not locked.may_manage(viewer, run):
        return ErrorCode.FORBIDDEN
    status = RunStatus(run.status)
    if status not in RESTARTABLE:
        return ErrorCode.INVALID_STATE
    if scope == RestartScope.FAILED and status == RunStatus.DONE:
        return ErrorCode.INVALID_STATE  # every job is DONE: nothing failed to re-run
    return None


async def restart_runs(
    session: AsyncSession,
    viewer: Viewer,
    locked: LockedRuns,
    *,
    scope: RestartScope = RestartScope.FAILED,
    now: dt.datetime | None = None,
) -> dict[int, RunOutcome]:
    """Restart the ``locked`` runs the viewer may manage; an outcome per locked run id.

    Refused: ``FORBIDDEN`` (the stop/delete rule), ``INVALID_STATE`` (the run is not
    final, or has no job to re-run: under scope ``FAILED``, a ``DONE`` run). Events: a
    ``RUN_RESTARTED`` per run, then a ``JOB_RETRIED`` per new submission (which wakes
    ``jobsReady`` subscribers), in the transaction's one events INSERT.
    """
    now = now or utcnow()
    outcomes: dict[int, RunOutcome] = {}
    accepted: list[int] = []
    for run in locked.runs:
        refusal = _refusal(viewer, locked, run, scope)
        outcomes[run.id] = RunOutcome(run=None if refusal else run, refusal=refusal)
        if refusal is None:
            accepted.append(run.id)
    if not accepted:
        return outcomes
    params = {"run_ids": accepted}
    added = (await session.execute(_insert_statement(scope), {**params, "now": now})).all()
    # A final run always has a job to re-run (FAILED and TERMINATED runs a job that did
    # not end DONE); should one have none, it is refused rather than left SUBMITTED with
    # nothing to run.
    rerun = {run_id for _, run_id in added}
    for run_id in accepted:
        if run_id not in rerun:
            outcomes[run_id] = RunOutcome(refusal=ErrorCode.INVALID_STATE)
    accepted = [run_id for run_id in accepted if run_id in rerun]
    if not accepted:
        return outcomes
    await session.execute(_move_pointers_statement(), params)
    await session.execute(
        update(Run)
        .where(Run.id.in_(accepted))
        .values(
            attempt=Run.attempt + 1,
            status=RunStatus.SUBMITTED,
            finished_at=None,
            termination_reason=None,
            restarted_by=viewer.name,
        )
        .execution_options(synchronize_session="evaluate")
    )
    events = EventBatch()
    events.runs(EventKind.RUN_RESTARTED, accepted)
    events.jobs(EventKind.JOB_RETRIED, sorted(job_id for job_id, _ in added))
    await events.flush(session, now)
    return outcomes
