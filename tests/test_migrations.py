"""Alembic migrations are the source of truth; the ORM models must agree with them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from runql.db.engine import Database
from runql.db.migrate import current_revision, head_revision, is_current
from runql.db.models import Base


async def test_models_match_the_migrated_schema(db: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        changes = compare_metadata(context, Base.metadata)
        # Expression indexes (``submission_num DESC``) cannot be reflected on SQLite.
        return [c for c in changes if "ix_jobs_terminated" not in repr(c)]

    async with db.engine.connect() as connection:
        changes = await connection.run_sync(diff)

    assert changes == []


async def test_database_is_at_head(db: Database) -> None:
    assert await current_revision(db) == head_revision()
    assert await is_current(db)
