"""restart: who restarted a run, and where a logical job's retry budget starts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

``restartRuns`` (``runql.db.restart``) gives each re-run logical job a new submission
and a fresh retry budget: ``logical_jobs.retry_base`` is the submission number the
run's current attempt started the job at, and retries are counted from it.
``runs.restarted_by`` keeps the name of the user who restarted the run last, for the
status message ("restarted by alice") until the run moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("restarted_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("logical_jobs") as batch:
        batch.add_column(sa.Column("retry_base", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("logical_jobs") as batch:
        batch.drop_column("retry_base")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("restarted_by")
