"""GraphQL enums: the domain enums of ``runql.db.enums``, registered with descriptions."""

from __future__ import annotations

import strawberry

from runql.db.enums import JobStatus, MemberRole, RunStatus, UserRole

strawberry.enum(RunStatus, description="Lifecycle of a run. TERMINATED, FAILED and DONE are final.")
strawberry.enum(
    JobStatus,
    description=(
        "Lifecycle of one job submission. BLOCKED waits for upstream jobs; SUBMITTED is "
        "ready for a runner to claim; TERMINATED, ABORTED, FAILED and DONE are final."
    ),
)
strawberry.enum(UserRole, description="Global role: ADMIN sees every project.")
strawberry.enum(MemberRole, description="A user's role within a project.")

__all__ = ["JobStatus", "MemberRole", "RunStatus", "UserRole"]
