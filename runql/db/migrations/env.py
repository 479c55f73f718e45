"""Alembic environment. runql calls it through ``runql.db.migrate``; it also works with
the ``alembic`` command when ``RUNQL_DATABASE_URL`` is set."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from runql.db.models import Base

config = context.config
target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, hide_parameters=True)  # like runql's own engines
    async with engine.connect() as connection:
        await connection.run_sync(_do_run)
        await connection.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _do_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["RUNQL_DATABASE_URL"]
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("runql migrations run online only")
run_migrations_online()
