"""``Run.statusMessage``: one short line a UI shows next to a run's status.

Derived like a good orchestrator UI does, from the run, the latest submission of each
logical job, and the newest terminated submission of each logical job.
"""

from __future__ import annotations

from collections.abc import Sequence

from runql.db.enums import RETRYABLE_REASONS, JobStatus, RunStatus, TerminationReason
from runql.db.jobs import AnyJob
from runql.db.models import Run

_WAITING = frozenset({JobStatus.SUBMITTED, JobStatus.BLOCKED})
_FAILED = frozenset({JobStatus.FAILED, JobStatus.ABORTED})
_DECIDED_BY_RUN = frozenset(
    {RunStatus.DONE, RunStatus.TERMINATED, RunStatus.TERMINATING, RunStatus.FAILED}
)


def _humanize(reason: str) -> str:
    return reason.lower().replace("_", " ")


def needs_latest_terminated(run: Run, latest: Sequence[AnyJob]) -> bool:
    """Only an active run whose job waits on a resubmission must look back at the
    terminated submission before it (to tell "retrying" apart); everything else is
    decided from the run and its latest submissions, saving a statement per page."""
    if RunStatus(run.status) in _DECIDED_BY_RUN or _restarted(run):
        return False
    return any(job.status in _WAITING and job.submission_num > 0 for job in latest)


def _restarted(run: Run) -> bool:
    """A restarted run says so until it moves on (a runner claims a job, or it stops)."""
    return run.status == RunStatus.SUBMITTED and run.restarted_by is not None


def run_status_message(
    run: Run, latest: Sequence[AnyJob], terminated: Sequence[AnyJob] = ()
) -> str:
    """``latest``: the newest submission of each logical job; ``terminated``: the newest
    terminated one of each, needed only when :func:`needs_latest_terminated` says so."""
    status = RunStatus(run.status)
    if _restarted(run):
        return f"restarted by {run.restarted_by}"
    if status == RunStatus.DONE:
        return "done"
    if status == RunStatus.TERMINATED:
        if run.termination_reason == TerminationReason.ABORTED_BY_USER:
            return "aborted by user"
        if run.termination_reason == TerminationReason.TERMINATED_BY_USER:
            return "stopped by user"
        return "terminated"
    if status == RunStatus.TERMINATING:
        return "stopping"
    if status == RunStatus.FAILED:
        failed = [job for job in latest if job.status in _FAILED]
        culprit = next(
            (job for job in failed if job.termination_reason != TerminationReason.UPSTREAM_FAILED),
            failed[0] if failed else None,
        )
        if culprit is None:
            return f"failed: {_humanize(run.termination_reason or 'unknown')}"
        detail = culprit.termination_message or _humanize(culprit.termination_reason or "failed")
        return f"failed: {culprit.name}: {detail}"
    last_terminated = {(j.replica_num, j.job_num): j for j in terminated}
    for job in latest:
        previous = last_terminated.get((job.replica_num, job.job_num))
        if (
            job.status in _WAITING
            and previous is not None
            and previous.submission_num < job.submission_num
            and previous.termination_reason in RETRYABLE_REASONS
        ):
            return "retrying"
    return status.value.lower()
