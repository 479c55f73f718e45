"""Engines, sessions and the write-transaction helper for SQLite and PostgreSQL.

Reads and writes take different paths on purpose:

* ``Database.read()`` gives a short session for reads (on SQLite without a BEGIN: each
  read session is one statement, its own snapshot). Under SQLite's WAL readers run beside
  the writer; every loader batch takes its own read session, because
  one ``AsyncSession`` shared by sibling resolvers breaks when they run concurrently.
* ``Database.write()`` gives a session whose transaction holds the write lock from its
  first statement: ``BEGIN IMMEDIATE`` on SQLite, behind an in-process lock so concurrent
  requests queue in Python instead of spinning on ``database is locked``. Without this,
  SQLite's deferred transactions silently lose read-then-write updates (measured in
  docs/measurements.md). PostgreSQL write paths lock rows with ``FOR UPDATE``.

Every SQL statement is reported to the active :class:`StatementRecorder` (a context
variable), which feeds the per-request log line and the statement-count guards in tests.

Both engines are built with ``hide_parameters=True``: a database error's text carries the
statement but not its bound values (run specs, messages, token hashes), so the traceback
of an unexpected error can be logged as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from runql.db import wakeups

SQLITE_BUSY_TIMEOUT_MS = 30_000


#: Statements a recorder keeps the text of; it counts every one. A subscription records
#: for as long as it streams (days), so the texts must not accumulate without bound.
MAX_RECORDED_STATEMENTS = 10_000


@dataclass
class StatementRecorder:
    """Collects the SQL statements issued while it is active (the first
    ``MAX_RECORDED_STATEMENTS`` texts; ``count`` counts them all)."""

    statements: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, statement: str) -> None:
        self.count += 1
        if len(self.statements) < MAX_RECORDED_STATEMENTS:
            self.statements.append(statement)


_recorders: contextvars.ContextVar[tuple[StatementRecorder, ...]] = contextvars.ContextVar(
    "runql_statement_recorders", default=()
)


@contextlib.contextmanager
def record_statements() -> Any:
    """Record every statement issued in this context (and tasks started from it)."""
    recorder = StatementRecorder()
    token = _recorders.set((*_recorders.get(), recorder))
    try:
        yield recorder
    finally:
        _recorders.reset(token)


def _on_execute(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
    if statement in ("BEGIN", "BEGIN IMMEDIATE"):
        return
    for recorder in _recorders.get():
        recorder.add(statement)


class Database:
    """One engine plus the session factories runql uses."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 0,
        event_log: bool = True,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            self.engine = create_async_engine(
                url,
                hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                # Sessions always end their transaction (commit or rollback) before the
                # connection returns; a second rollback on check-in is a wasted thread hop.
                pool_reset_on_return=None,
            )
            _configure_sqlite(self.engine)
        else:
            server_settings = {"jit": "off", "application_name": "runql"}
            if statement_timeout_ms:
                server_settings["statement_timeout"] = str(statement_timeout_ms)
            self.engine = create_async_engine(
                url,
                hide_parameters=True,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=False,
                connect_args={"server_settings": server_settings},
            )
        event.listen(self.engine.sync_engine, "before_cursor_execute", _on_execute)
        self._write_engine = self.engine.execution_options(runql_write=True)
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(
            self._write_engine,
            expire_on_commit=False,
            info={} if event_log else {wakeups.LOG_OFF: True},
        )
        #: Who hears of committed events (``runql.db.wakeups``).
        self.wakeups = wakeups.EventWakeups(None if self.is_sqlite else self.engine)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short session for reads; its transaction ends when the block does."""
        async with self._read_sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction, committed when the block exits cleanly.
        When the transaction appended events, their listeners are woken after the commit
        (``runql.db.wakeups``)."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._write_sessions() as session:
            async with session.begin():
                yield session
            appended = session.info.pop(wakeups.APPENDED, None)
            if appended is not None:
                self.wakeups.committed(appended or None)

    async def dispose(self) -> None:
        await self.wakeups.drain()
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the driver so "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("runql_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        # Reads send no BEGIN: each read session is one statement (a loader batch, a page),
        # which SQLite runs as its own consistent snapshot. Every statement crosses to
        # aiosqlite's thread and back, so a BEGIN would cost as much as the query.
