"""Typed ORM models. The Alembic migrations are the source of truth for the schema;
``tests/test_migrations.py`` checks that these models and the migrations agree.

Heavy JSON columns are ``deferred(raiseload=True)``: reading one without asking for it
explicitly raises, so hidden per-row I/O fails in tests instead of slowing production.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    and_,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from runql.db.enums import EventKind, JobStatus, MemberRole, RunStatus, UserRole
from runql.db.types import JSONDocument, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(cls: type) -> SAEnum:
    return SAEnum(cls, native_enum=False, create_constraint=False, length=16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[UserRole] = mapped_column(_enum(UserRole), default=UserRole.USER)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Member(Base):
    """A user's role in a project. The primary key starts with ``user_id`` because the
    visibility subquery asks "which projects is this user a member of"."""

    __tablename__ = "members"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    role: Mapped[MemberRole] = mapped_column(_enum(MemberRole), default=MemberRole.USER)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_page", "submitted_at", "id"),
        Index("ix_runs_project_page", "project_id", "submitted_at", "id"),
        Index(
            "uq_runs_project_name_live",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("NOT deleted"),
            postgresql_where=text("NOT deleted"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.SUBMITTED)
    termination_reason: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    #: Who restarted the run last (the user's name then; ``runql.db.restart``), for the
    #: status message until the run moves on.
    restarted_by: Mapped[str | None] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    spec: Mapped[dict[str, Any]] = mapped_column(
        JSONDocument, default=dict, deferred=True, deferred_raiseload=True
    )
    summary: Mapped[dict[str, Any] | None] = mapped_column(
        JSONDocument, deferred=True, deferred_raiseload=True
    )
    system_metrics: Mapped[dict[str, Any] | None] = mapped_column(
        JSONDocument, deferred=True, deferred_raiseload=True
    )


class LogicalJob(Base):
    """One row per ``(run_id, replica_num, job_num)``: the job as the user defined it.

    ``latest_submission_num`` is updated in the transaction that adds a submission, so the
    latest-N query can read a bounded slice of ``jobs`` instead of a job's whole history.
    """

    __tablename__ = "logical_jobs"
    # Dependencies name job numbers: unblocking looks up every replica of a job_num.
    __table_args__ = (Index("ix_logical_jobs_job", "run_id", "job_num"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    replica_num: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_num: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    latest_submission_num: Mapped[int] = mapped_column(Integer, default=0)
    retry_limit: Mapped[int] = mapped_column(Integer, default=0)
    #: The submission number the run's current attempt started this job at (0 until a
    #: restart): retries are counted from it, so a restart gives a fresh retry budget.
    retry_base: Mapped[int] = mapped_column(Integer, default=0)
    retry_on_failure: Mapped[bool] = mapped_column(Boolean, default=True)
    retry_on_lease_expiry: Mapped[bool] = mapped_column(Boolean, default=True)


class JobDependency(Base):
    """``job_num`` of a run waits for every replica of ``depends_on_job_num``."""

    __tablename__ = "job_dependencies"
    # Covering (job_num last): "who waits for these jobs" never reads the table, and
    # SQLite prefers it over the primary key's run_id prefix (see migration 0002).
    __table_args__ = (
        Index("ix_job_dependencies_upstream", "run_id", "depends_on_job_num", "job_num"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    job_num: Mapped[int] = mapped_column(Integer, primary_key=True)
    depends_on_job_num: Mapped[int] = mapped_column(Integer, primary_key=True)


class Job(Base):
    """One row per submission of a logical job; a retry adds a row."""

    __tablename__ = "jobs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "replica_num", "job_num"],
            ["logical_jobs.run_id", "logical_jobs.replica_num", "logical_jobs.job_num"],
            name="fk_jobs_logical_jobs",
        ),
        Index(
            "uq_jobs_submission",
            "run_id",
            "replica_num",
            "job_num",
            "submission_num",
            unique=True,
        ),
        # Latest terminated submission per logical job (status messages), flat in history.
        Index(
            "ix_jobs_terminated",
            "run_id",
            "replica_num",
            "job_num",
            text("submission_num DESC"),
            sqlite_where=text("termination_reason IS NOT NULL"),
            postgresql_where=text("termination_reason IS NOT NULL"),
        ),
        # Claim queue: only ready jobs are in it.
        Index(
            "ix_jobs_ready",
            "submitted_at",
            "id",
            sqlite_where=text("status = 'SUBMITTED'"),
            postgresql_where=text("status = 'SUBMITTED'"),
        ),
        # Lease sweeper: only claimed jobs are in it.
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            sqlite_where=text("status IN ('RUNNING', 'TERMINATING')"),
            postgresql_where=text("status IN ('RUNNING', 'TERMINATING')"),
        ),
        # Run status roll-up: "has this run an active job left?" in one probe.
        Index(
            "ix_jobs_active",
            "run_id",
            sqlite_where=text("status IN ('BLOCKED', 'SUBMITTED', 'RUNNING', 'TERMINATING')"),
            postgresql_where=text("status IN ('BLOCKED', 'SUBMITTED', 'RUNNING', 'TERMINATING')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    replica_num: Mapped[int] = mapped_column(Integer, default=0)
    job_num: Mapped[int] = mapped_column(Integer)
    submission_num: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus))
    termination_reason: Mapped[str | None] = mapped_column(String(32))
    termination_message: Mapped[str | None] = mapped_column(String(1000))
    exit_status: Mapped[int | None] = mapped_column(Integer)
    runner_name: Mapped[str | None] = mapped_column(String(128))
    run_attempt: Mapped[int] = mapped_column(Integer, default=0)
    claim_token_hash: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    spec: Mapped[dict[str, Any]] = mapped_column(
        JSONDocument, default=dict, deferred=True, deferred_raiseload=True
    )
    result: Mapped[dict[str, Any] | None] = mapped_column(
        JSONDocument, deferred=True, deferred_raiseload=True
    )


class XID8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``pg_current_xact_id()``); asyncpg reads and
    binds it as a Python int."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XID8"


# Reflection (Alembic's model/migration comparison) knows the column's type.
postgresql_base.ischema_names.setdefault("xid8", XID8)


#: Event positions: 64-bit on PostgreSQL; SQLite's INTEGER PRIMARY KEY is its rowid.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One change of a run or job, written in the transaction that made it
    (``runql.db.events``). Its position is ``(txid, id)``: ``txid`` is the writing
    transaction's id on PostgreSQL (0 on SQLite, whose writes are serial).

    No foreign keys: the log is history (pruned by age, never by its runs), and a key
    check per appended row would cost the hot paths. ``AUTOINCREMENT`` on SQLite: ids are
    positions and must never be reused after pruning empties the table.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_position", "txid", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger().with_variant(XID8(), "postgresql"))
    kind: Mapped[EventKind] = mapped_column(
        SAEnum(EventKind, native_enum=False, create_constraint=False, length=24)
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    project_id: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(Integer)


class EventsPruned(Base):
    """One row (``id`` 1): the position of the newest event pruned so far. A cursor below
    it is expired even when the log is empty."""

    __tablename__ = "events_pruned"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    txid: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)


#: Columns never selected unless a query asks for the field.
HEAVY_RUN_COLUMNS = ("spec", "summary", "system_metrics")
HEAVY_JOB_COLUMNS = ("spec", "result")


def submission_of(job: Any, logical_job: Any) -> ColumnElement[bool]:
    """Join condition: ``job`` (the ``Job`` entity or an alias) is a submission of
    ``logical_job`` (``LogicalJob`` or an alias)."""
    return and_(
        logical_job.run_id == job.run_id,
        logical_job.replica_num == job.replica_num,
        logical_job.job_num == job.job_num,
    )
