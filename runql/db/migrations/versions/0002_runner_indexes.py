"""runner: indexes for run roll-up and DAG unblocking

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The runner API rolls a run's status up after every batch of completions ("is anything of
this run still active?"). Without this index that question scans every logical job of the
run; with it, it is one probe, whatever the size of the run. Unblocking and aborting
downstream jobs look logical jobs up by ``(run_id, job_num)`` (dependencies name job
numbers, not replicas), which the primary key ``(run_id, replica_num, job_num)`` cannot
serve. They also ask "which jobs wait for these job numbers": the upstream index gets
``job_num`` as a third column so it covers that question; without it SQLite (no
statistics) prefers the covering primary key and reads every dependency of the run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('BLOCKED', 'SUBMITTED', 'RUNNING', 'TERMINATING')"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_active",
        "jobs",
        ["run_id"],
        unique=False,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index("ix_logical_jobs_job", "logical_jobs", ["run_id", "job_num"], unique=False)
    op.drop_index("ix_job_dependencies_upstream", table_name="job_dependencies")
    op.create_index(
        "ix_job_dependencies_upstream",
        "job_dependencies",
        ["run_id", "depends_on_job_num", "job_num"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_job_dependencies_upstream", table_name="job_dependencies")
    op.create_index(
        "ix_job_dependencies_upstream",
        "job_dependencies",
        ["run_id", "depends_on_job_num"],
        unique=False,
    )
    op.drop_index("ix_logical_jobs_job", table_name="logical_jobs")
    op.drop_index("ix_jobs_active", table_name="jobs")
