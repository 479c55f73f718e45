"""Set-based writes of a run's lifecycle: creating, stopping and (soft) deleting runs.

Stop and delete take up to hundreds of runs per call and must not cost a statement per
run, nor hold the write lock for long. Each does one locking read of every requested run
(with what is needed to decide visibility and permission), decides per run in Python, then
issues a fixed number of set-based UPDATEs over the runs it accepted. On PostgreSQL the read
locks the rows ``FOR UPDATE`` ordered by id, so two overlapping bulk calls queue instead of
deadlocking; on SQLite the caller's ``Database.write()`` already holds the write lock.

Every writer keeps one lock order: runs before jobs, each in id order (the full rule, and
why it rules out deadlocks, is in ``runql.db.locking``). A stop holds every run it stops
before its first job UPDATE, so it may update their jobs in any (plan) order: every other
writer that waits for those jobs takes their run first (renewals ``FOR SHARE``, completions
and sweeps ``FOR UPDATE``) and so waits at the run instead; claims never wait.

What the jobs a stop ends set off (the run ``TERMINATED`` once none is active) goes through
``runql.db.job_effects.FinishedJobs``, as for jobs ended by runners or lease expiry.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.enums import (
    ACTIVE_JOB_STATUSES,
    EventKind,
    JobStatus,
    MemberRole,
    RunStatus,
    TerminationReason,
)
from runql.db.events import EventBatch
from runql.db.job_effects import FinishedJobs
from runql.db.models import Job, JobDependency, LogicalJob, Member, Project, Run
from runql.db.types import utcnow
from runql.db.visibility import Viewer, visible_projects
from runql.error_codes import ErrorCode


@dataclass(frozen=True)
class JobDefinition:
    """One job of a run as submitted; ``depends_on`` names other jobs of the same run.

    Also what the API's ``JobInput`` becomes as the client sent it: the resolvers check
    such definitions (``spec`` may then be any JSON value) before any is written.
    """

    name: str
    replicas: int = 1
    depends_on: tuple[str, ...] = ()
    retry_limit: int = 0
    retry_on_failure: bool = True
    retry_on_lease_expiry: bool = True
    spec: dict[str, Any] = field(default_factory=dict)


async def insert_run(
    session: AsyncSession,
    *,
    project_id: int,
    user_id: int,
    name: str,
    jobs: Sequence[JobDefinition],
    spec: dict[str, Any] | None = None,
    priority: int = 0,
    submitted_at: dt.datetime | None = None,
) -> Run:
    """Create a run with submission 0 of every logical job, in a handful of statements.

    Jobs without upstream jobs start ``SUBMITTED`` (ready to claim), the others ``BLOCKED``.
    The definitions must already be validated (known names, no cycles). Appends the
    run's ``RUN_SUBMITTED`` event.
    """
    now = submitted_at or utcnow()
    run = Run(
        project_id=project_id,
        user_id=user_id,
        name=name,
        status=RunStatus.SUBMITTED,
        priority=priority,
        spec=spec or {},
        submitted_at=now,
    )
    session.add(run)
    await session.flush()
    job_nums = {job.name: num for num, job in enumerate(jobs)}
    logical_rows: list[dict[str, Any]] = []
    job_rows: list[dict[str, Any]] = []
    dependency_rows: list[dict[str, Any]] = []
    for job_num, job in enumerate(jobs):
        status = JobStatus.BLOCKED if job.depends_on else JobStatus.SUBMITTED
        dependency_rows.extend(
            {"run_id": run.id, "job_num": job_num, "depends_on_job_num": job_nums[upstream]}
            for upstream in dict.fromkeys(job.depends_on)
        )
        for replica_num in range(job.replicas):
            logical_rows.append(
                {
                    "run_id": run.id,
                    "replica_num": replica_num,
                    "job_num": job_num,
                    "name": job.name,
                    "latest_submission_num": 0,
                    "retry_limit": job.retry_limit,
                    "retry_on_failure": job.retry_on_failure,
                    "retry_on_lease_expiry": job.retry_on_lease_expiry,
                }
            )
            job_rows.append(
                {
                    "run_id": run.id,
                    "replica_num": replica_num,
                    "job_num": job_num,
                    "submission_num": 0,
                    "name": job.name,
                    "status": status,
                    "run_attempt": 0,
                    "submitted_at": now,
                    "spec": job.spec,
                }
            )
    if logical_rows:
        await session.execute(insert(LogicalJob), logical_rows)
        await session.execute(insert(Job), job_rows)
    if dependency_rows:
        await session.execute(insert(JobDependency), dependency_rows)
    events = EventBatch()
    events.runs(EventKind.RUN_SUBMITTED, [run.id])
    await events.flush(session, utcnow())  # not ``now``: tests and demos backdate runs
    return run


# --- submitting ------------------------------------------------------------------------

#: Index that keeps run names unique among a project's live (non-deleted) runs.
RUN_NAME_INDEX = "uq_runs_project_name_live"

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
    "fancy", "fluent", "gentle", "golden", "happy", "humble", "jolly", "keen", "lively", "lucid",
    "mellow", "misty", "noble", "polar", "proud", "quiet", "rapid", "rustic", "serene", "sharp",
    "silent", "snowy", "solar", "steady", "swift", "tidy", "vivid", "warm", "wise", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "beacon", "canyon", "cedar", "comet", "delta", "dune", "falcon", "fjord", "forest",
    "galaxy", "glacier", "harbor", "heron", "island", "lagoon", "lynx", "maple", "meadow", "meteor",
    "nebula", "oasis", "orbit", "otter", "panda", "pebble", "pine", "prairie", "quartz", "raven",
    "reef", "river", "sparrow", "summit", "thunder", "tundra", "valley", "willow", "wolf", "zephyr",
)  # fmt: skip
#: Generated names tried before giving up (each retry is a savepoint, not a new request).
_NAME_ATTEMPTS = 5


class RunNameTaken(Exception):
    """A live run of the project already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _is_name_conflict(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    # PostgreSQL names the index; SQLite names the columns.
    return RUN_NAME_INDEX in text or "runs.project_id, runs.name" in text


async def _run_count(session: AsyncSession, project_id: int) -> int:
    stmt = select(func.count()).select_from(Run).where(Run.project_id == project_id)
    return int(await session.scalar(stmt) or 0)


def _generated_name(number: int, attempt: int, rng: random.Random) -> str:
    """``swift-otter-12``: two words for the eye, the project's run count for order.
    Later attempts (a concurrent submit took the name) add a random suffix."""
    name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{number}"
    return name if attempt < 2 else f"{name}-{rng.randrange(16**4):04x}"


async def submit_run(
    session: AsyncSession,
    *,
    project_id: int,
    user_id: int,
    name: str | None,
    jobs: Sequence[JobDefinition],
    spec: dict[str, Any],
    priority: int = 0,
    rng: random.Random | None = None,
) -> Run:
    """Create a run named ``name``, or a readable generated name unique in the project.

    The unique index decides, not a prior SELECT: two concurrent submits may pick the same
    name on PostgreSQL. Each attempt runs in a savepoint so a conflict leaves the
    transaction usable. An explicit name that is taken raises :class:`RunNameTaken`.
    """
    rng = rng or random.Random()
    number = 0 if name is not None else await _run_count(session, project_id) + 1
    for attempt in range(1 if name is not None else _NAME_ATTEMPTS):
        candidate = name if name is not None else _generated_name(number, attempt, rng)
        try:
            async with session.begin_nested():
                return await insert_run(
                    session,
                    project_id=project_id,
                    user_id=user_id,
                    name=candidate,
                    jobs=jobs,
                    spec=spec,
                    priority=priority,
                )
        except IntegrityError as exc:
            if not _is_name_conflict(exc):
                raise
    raise RunNameTaken(candidate)


# --- who may stop or delete ------------------------------------------------------------

#: Project roles that may stop or delete anyone's runs in the project.
MANAGING_ROLES = frozenset({MemberRole.ADMIN, MemberRole.MANAGER})


def may_manage_run(viewer: Viewer, run_user_id: int, role: MemberRole | None) -> bool:
    """Stop/delete permission: global admins, project ADMIN/MANAGER members, the submitter.

    ``role`` is the viewer's role in the run's project (None when not a member).
    """
    return viewer.is_admin or run_user_id == viewer.user_id or role in MANAGING_ROLES


@dataclass(frozen=True)
class RunOutcome:
    """One requested run after a bulk call: the run as it now is, or why not
    (``FORBIDDEN``, ``ALREADY_FINISHED``, ``NOT_FINISHED``; ``NOT_FOUND`` is the caller's)."""

    run: Run | None = None
    refusal: ErrorCode | None = None


@dataclass(frozen=True)
class LockedRuns:
    """The requested runs the viewer can see, locked, with the viewer's project roles."""

    runs: list[Run]
    roles: dict[int, MemberRole | None]

    def by_id(self) -> dict[int, Run]:
        return {run.id: run for run in self.runs}

    def by_name(self) -> dict[str, Run]:
        return {run.name: run for run in self.runs}

    def may_manage(self, viewer: Viewer, run: Run) -> bool:
        return may_manage_run(viewer, run.user_id, self.roles.get(run.id))


async def lock_runs(
    session: AsyncSession,
    viewer: Viewer,
    *,
    ids: Sequence[int] = (),
    project_name: str | None = None,
    names: Sequence[str] = (),
) -> LockedRuns:
    """One statement: the live runs among ``ids`` (or named ``names`` in ``project_name``)
    that ``viewer`` can see, with the viewer's role in each run's project.

    On PostgreSQL the rows are locked ``FOR UPDATE`` in id order (SQLite ignores the
    clause; its write transaction already excludes other writers).
    """
    role = (
        select(Member.role)
        .where(Member.project_id == Run.project_id, Member.user_id == viewer.user_id)
        .correlate(Run)
        .scalar_subquery()
    )
    stmt = select(Run, role.label("role")).where(
        Run.deleted.is_(False), visible_projects(viewer, Run.project_id)
    )
    if project_name is not None:
        project_id = select(Project.id).where(Project.name == project_name).scalar_subquery()
        stmt = stmt.where(Run.project_id == project_id, Run.name.in_(names))
    else:
        stmt = stmt.where(Run.id.in_(ids))
    rows = (await session.execute(stmt.order_by(Run.id).with_for_update(of=Run))).all()
    return LockedRuns(
        runs=[row[0] for row in rows],
        roles={row[0].id: None if row[1] is None else MemberRole(row[1]) for row in rows},
    )


def _latest_submissions_of(run_ids: Iterable[int]) -> ColumnElement[bool]:
    """Jobs that are the latest submission of their logical job, for ``run_ids``.

    Older submissions are final already; matching through ``logical_jobs`` keeps the cost
    to one row per logical job however deep the retry history is.
    """
    latest = select(
        LogicalJob.run_id,
        LogicalJob.replica_num,
        LogicalJob.job_num,
        LogicalJob.latest_submission_num,
    ).where(LogicalJob.run_id.in_(list(run_ids)))
    return tuple_(Job.run_id, Job.replica_num, Job.job_num, Job.submission_num).in_(latest)


# --- stopping --------------------------------------------------------------------------


async def stop_runs(
    session: AsyncSession,
    viewer: Viewer,
    locked: LockedRuns,
    *,
    abort: bool = False,
    now: dt.datetime | None = None,
) -> dict[int, RunOutcome]:
    """Stop the ``locked`` runs the viewer may manage; an outcome per locked run id.

    Graceful: the run goes ``TERMINATING``; jobs a runner has not claimed yet (BLOCKED,
    SUBMITTED) end ``TERMINATED``; RUNNING jobs go ``TERMINATING`` for their runner to see
    at its next renewal or completion; the run is ``TERMINATED`` at once if nothing is
    left running. ``abort``: every active job ends ``ABORTED`` and the run ``TERMINATED``.
    A run already stopping is accepted again (idempotent); with ``abort`` it is aborted.
    At most six UPDATEs and the events' INSERT, whatever the number of runs: a
    ``RUN_STOPPED`` per run stopped (not one per job it ended), a ``RUN_STATUS_CHANGED``
    per run a graceful stop finished at once.
    """
    now = now or utcnow()
    events = EventBatch()
    outcomes: dict[int, RunOutcome] = {}
    graceful: list[int] = []
    aborted: list[int] = []
    for run in locked.runs:
        status = RunStatus(run.status)
        if not locked.may_manage(viewer, run):
            outcomes[run.id] = RunOutcome(refusal=ErrorCode.FORBIDDEN)
            continue
        if status.is_finished:
            outcomes[run.id] = RunOutcome(refusal=ErrorCode.ALREADY_FINISHED)
            continue
        outcomes[run.id] = RunOutcome(run=run)
        if abort:
            aborted.append(run.id)
        elif status != RunStatus.TERMINATING:
            graceful.append(run.id)
    if graceful:
        await session.execute(
            update(Run)
            .where(Run.id.in_(graceful))
            .values(status=RunStatus.TERMINATING)
            .execution_options(synchronize_session="evaluate")
        )
        await _end_jobs(
            session,
            graceful,
            {JobStatus.BLOCKED, JobStatus.SUBMITTED},
            status=JobStatus.TERMINATED,
            termination_reason=TerminationReason.TERMINATED_BY_USER.value,
            finished_at=now,
        )
        await _end_jobs(session, graceful, {JobStatus.RUNNING}, status=JobStatus.TERMINATING)
        events.runs(EventKind.RUN_STOPPED, graceful)
        await FinishedJobs.of_stopped_runs(graceful).apply(session, now, events=events)
    if aborted:
        await _end_jobs(
            session,
            aborted,
            ACTIVE_JOB_STATUSES,
            status=JobStatus.ABORTED,
            termination_reason=TerminationReason.ABORTED_BY_USER.value,
            finished_at=now,
        )
        await session.execute(
            update(Run)
            .where(Run.id.in_(aborted))
            .values(
                status=RunStatus.TERMINATED,
                finished_at=now,
                termination_reason=TerminationReason.ABORTED_BY_USER.value,
            )
            .execution_options(synchronize_session="evaluate")
        )
        events.runs(EventKind.RUN_STOPPED, aborted)
    await events.flush(session, now)
    return outcomes


async def _end_jobs(
    session: AsyncSession, run_ids: list[int], statuses: Iterable[JobStatus], **values: Any
) -> None:
    """One UPDATE of the latest submissions of ``run_ids`` that are in ``statuses``."""
    await session.execute(
        update(Job)
        .where(_latest_submissions_of(run_ids), Job.status.in_(sorted(statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- deleting --------------------------------------------------------------------------


async def delete_runs(
    session: AsyncSession, viewer: Viewer, locked: LockedRuns
) -> dict[int, RunOutcome]:
    """Soft-delete the finished ``locked`` runs the viewer may manage, in one UPDATE.

    The rows stay (jobs keep their history) but every read path filters them out, and
    the name becomes free: the unique name index covers live runs only. A
    ``RUN_DELETED`` event per deleted run.
    """
    outcomes: dict[int, RunOutcome] = {}
    deleted: list[int] = []
    for run in locked.runs:
        if not locked.may_manage(viewer, run):
            outcomes[run.id] = RunOutcome(refusal=ErrorCode.FORBIDDEN)
        elif not RunStatus(run.status).is_finished:
            outcomes[run.id] = RunOutcome(refusal=ErrorCode.NOT_FINISHED)
        else:
            outcomes[run.id] = RunOutcome(run=run)
            deleted.append(run.id)
    if deleted:
        await session.execute(
            update(Run)
            .where(Run.id.in_(deleted))
            .values(deleted=True)
            .execution_options(synchronize_session="evaluate")
        )
        events = EventBatch()
        events.runs(EventKind.RUN_DELETED, deleted)
        await events.flush(session, utcnow())
    return outcomes
