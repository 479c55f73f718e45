"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "role",
            sa.Enum("ADMIN", "USER", name="userrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )
    op.create_table(
        "members",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("ADMIN", "MANAGER", "USER", name="memberrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_members_project_id_projects")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_members_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_members")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SUBMITTED",
                "RUNNING",
                "TERMINATING",
                "TERMINATED",
                "FAILED",
                "DONE",
                name="runstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("termination_reason", sa.String(length=32), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("system_metrics", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_runs_project_id_projects")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_runs_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_page", "runs", ["submitted_at", "id"], unique=False)
    op.create_index(
        "ix_runs_project_page", "runs", ["project_id", "submitted_at", "id"], unique=False
    )
    op.create_index(
        "uq_runs_project_name_live",
        "runs",
        ["project_id", "name"],
        unique=True,
        sqlite_where=sa.text("NOT deleted"),
        postgresql_where=sa.text("NOT deleted"),
    )

    op.create_table(
        "job_dependencies",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("job_num", sa.Integer(), nullable=False),
        sa.Column("depends_on_job_num", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_job_dependencies_run_id_runs")
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "job_num", "depends_on_job_num", name=op.f("pk_job_dependencies")
        ),
    )
    op.create_index(
        "ix_job_dependencies_upstream",
        "job_dependencies",
        ["run_id", "depends_on_job_num"],
        unique=False,
    )

    op.create_table(
        "logical_jobs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("replica_num", sa.Integer(), nullable=False),
        sa.Column("job_num", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("latest_submission_num", sa.Integer(), nullable=False),
        sa.Column("retry_limit", sa.Integer(), nullable=False),
        sa.Column("retry_on_failure", sa.Boolean(), nullable=False),
        sa.Column("retry_on_lease_expiry", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_logical_jobs_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "replica_num", "job_num", name=op.f("pk_logical_jobs")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("replica_num", sa.Integer(), nullable=False),
        sa.Column("job_num", sa.Integer(), nullable=False),
        sa.Column("submission_num", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "BLOCKED",
                "SUBMITTED",
                "RUNNING",
                "TERMINATING",
                "TERMINATED",
                "ABORTED",
                "FAILED",
                "DONE",
                name="jobstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("termination_reason", sa.String(length=32), nullable=True),
        sa.Column("termination_message", sa.String(length=1000), nullable=True),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("runner_name", sa.String(length=128), nullable=True),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("claim_token_hash", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id", "replica_num", "job_num"],
            ["logical_jobs.run_id", "logical_jobs.replica_num", "logical_jobs.job_num"],
            name="fk_jobs_logical_jobs",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_jobs_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(
        "ix_jobs_lease",
        "jobs",
        ["lease_expires_at"],
        unique=False,
        sqlite_where=sa.text("status IN ('RUNNING', 'TERMINATING')"),
        postgresql_where=sa.text("status IN ('RUNNING', 'TERMINATING')"),
    )
    op.create_index(
        "ix_jobs_ready",
        "jobs",
        ["submitted_at", "id"],
        unique=False,
        sqlite_where=sa.text("status = 'SUBMITTED'"),
        postgresql_where=sa.text("status = 'SUBMITTED'"),
    )
    op.create_index(
        "ix_jobs_terminated",
        "jobs",
        ["run_id", "replica_num", "job_num", sa.text("submission_num DESC")],
        sqlite_where=sa.text("termination_reason IS NOT NULL"),
        postgresql_where=sa.text("termination_reason IS NOT NULL"),
    )
    op.create_index(
        "uq_jobs_submission",
        "jobs",
        ["run_id", "replica_num", "job_num", "submission_num"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_jobs_submission", table_name="jobs")
    op.drop_index("ix_jobs_terminated", table_name="jobs")
    op.drop_index("ix_jobs_ready", table_name="jobs")
    op.drop_index("ix_jobs_lease", table_name="jobs")

    op.drop_table("jobs")
    op.drop_table("logical_jobs")
    op.drop_index("ix_job_dependencies_upstream", table_name="job_dependencies")

    op.drop_table("job_dependencies")
    op.drop_index("uq_runs_project_name_live", table_name="runs")
    op.drop_index("ix_runs_project_page", table_name="runs")
    op.drop_index("ix_runs_page", table_name="runs")

    op.drop_table("runs")
    op.drop_table("members")
    op.drop_table("users")
    op.drop_table("projects")
