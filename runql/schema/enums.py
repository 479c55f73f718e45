"""GraphQL enums: the domain enums of ``runql.db.enums``, registered with descriptions."""

from __future__ import annotations

import strawberry

from runql.db.enums import EventKind, JobStatus, MemberRole, RestartScope, RunStatus, UserRole

strawberry.enum(RunStatus, description="Lifecycle of a run. TERMINATED, FAILED and DONE are final.")
strawberry.enum(
    JobStatus,
    description=(
        "Lifecycle of one job submission. BLOCKED waits for upstream jobs; SUBMITTED is "
        "ready for a runner to claim; TERMINATED, ABORTED, FAILED and DONE are final."
    ),
)
strawberry.enum(
    RestartScope,
    description=(
        "Which jobs of a finished run restartRuns submits again: FAILED, those whose "
        "latest submission did not end DONE (kept DONE jobs still unblock their "
        "downstream); ALL, every job."
    ),
)
strawberry.enum(UserRole, description="Global role: ADMIN sees every project.")
strawberry.enum(MemberRole, description="A user's role within a project.")
strawberry.enum(
    EventKind,
    name="RunEventKind",
    description=(
        "What changed: a run submitted, its status changed, stopped, deleted or "
        "restarted (no job); a job claimed, completed, retried (a new submission, also "
        "when its run is restarted), unblocked, aborted, or requeued after its lease "
        "expired."
    ),
)

__all__ = ["EventKind", "JobStatus", "MemberRole", "RestartScope", "RunStatus", "UserRole"]
