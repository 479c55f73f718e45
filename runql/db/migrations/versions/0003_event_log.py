"""events: the event log written in the transaction of every change

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Every home of a change (submit, stop, delete, claims, completions, their effects, lease
expiry) appends one row per change here, in its own transaction (``runql.db.events``).
A position is ``(txid, id)``: on PostgreSQL ``txid`` is the writer's ``xid8`` and readers
stay below the oldest transaction still in flight, so an event that commits late is read
late, never skipped. ``events_pruned`` keeps the newest pruned position, so a cursor
older than the retention is recognised as expired even when the log is empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import UserDefinedType

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


class XID8(UserDefinedType[int]):
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "XID8"


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("txid", sa.BigInteger().with_variant(XID8(), "postgresql"), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_position", "events", ["txid", "id"], unique=False)
    op.create_table(
        "events_pruned",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_pruned")),
    )


def downgrade() -> None:
    op.drop_table("events_pruned")
    op.drop_index("ix_events_position", table_name="events")
    op.drop_table("events")
