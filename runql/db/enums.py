"""Domain enumerations shared by the database layer and (re-exported by) the schema."""

from __future__ import annotations

import enum


class UserRole(enum.StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"


class MemberRole(enum.StrEnum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    USER = "USER"


class RunStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"
    DONE = "DONE"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_RUN_STATUSES


FINISHED_RUN_STATUSES = frozenset({RunStatus.TERMINATED, RunStatus.FAILED, RunStatus.DONE})
ACTIVE_RUN_STATUSES = frozenset(set(RunStatus) - FINISHED_RUN_STATUSES)


class JobStatus(enum.StrEnum):
    BLOCKED = "BLOCKED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    ABORTED = "ABORTED"
    FAILED = "FAILED"
    DONE = "DONE"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_JOB_STATUSES


FINISHED_JOB_STATUSES = frozenset(
    {JobStatus.TERMINATED, JobStatus.ABORTED, JobStatus.FAILED, JobStatus.DONE}
)
ACTIVE_JOB_STATUSES = frozenset(set(JobStatus) - FINISHED_JOB_STATUSES)


class CompletionStatus(enum.StrEnum):
    """What a runner may report for a job it ran."""

    DONE = "DONE"
    FAILED = "FAILED"


class TerminationReason(enum.StrEnum):
    """Why a job submission (or a run) ended."""

    DONE_BY_RUNNER = "DONE_BY_RUNNER"
    FAILED_BY_RUNNER = "FAILED_BY_RUNNER"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    TERMINATED_BY_USER = "TERMINATED_BY_USER"
    ABORTED_BY_USER = "ABORTED_BY_USER"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    JOB_FAILED = "JOB_FAILED"
    ALL_JOBS_DONE = "ALL_JOBS_DONE"


#: Reasons after which a retry policy may add a new submission.
RETRYABLE_REASONS = frozenset({TerminationReason.FAILED_BY_RUNNER, TerminationReason.LEASE_EXPIRED})


class RestartScope(enum.StrEnum):
    """Which logical jobs of a finished run a restart submits again."""

    #: Those whose latest submission did not end ``DONE``; kept ``DONE`` jobs still
    #: unblock their downstream.
    FAILED = "FAILED"
    #: Every logical job.
    ALL = "ALL"


class EventKind(enum.StrEnum):
    """What an event of the log (``runql.db.events``) records. Run kinds carry no job."""

    RUN_SUBMITTED = "RUN_SUBMITTED"
    RUN_STATUS_CHANGED = "RUN_STATUS_CHANGED"
    RUN_STOPPED = "RUN_STOPPED"
    RUN_DELETED = "RUN_DELETED"
    RUN_RESTARTED = "RUN_RESTARTED"
    JOB_CLAIMED = "JOB_CLAIMED"
    JOB_COMPLETED = "JOB_COMPLETED"
    JOB_RETRIED = "JOB_RETRIED"
    JOB_UNBLOCKED = "JOB_UNBLOCKED"
    JOB_ABORTED = "JOB_ABORTED"
    JOB_REQUEUED = "JOB_REQUEUED"
