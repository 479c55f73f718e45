"""Surviving a database outage in a background loop: the one home of "on a database error,
log it once with its cause, back off, carry on, and log the recovery".

Three loops of a server live through outages this way: the periodic tasks
(``runql.tasks.periodic``: the lease sweeper, the event pruner), the event listener
(``runql.tasks.event_listener``) and the sender of wake-ups (``runql.db.wakeups``). Each
keeps what is its own (what it retries, its backoff policy, its wording, its metrics and
health); :class:`Outage` keeps the rest: an outage of hours is two lines in the log (a
WARNING naming the cause when it starts, an INFO when it ends), the retries in between
are DEBUG only, and the wait between them grows.

It lives in ``runql.db`` because the wake-up sender is part of the database handle
(``Database.write()`` hands it every commit) and ``runql.db`` imports no other layer;
what it knows is the database's: which errors are the database's or the way to it, and
what the driver said.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

#: What a loop may meet and survive: any error of the database or of the way to it.
#: SQLAlchemy wraps most driver errors, but not all of them the same way (a statement
#: timeout or a deadlock on asyncpg arrives as a plain ``DBAPIError``), and a few driver
#: and socket errors escape unwrapped, so the whole families are listed. Anything else is
#: a bug and ends the loop loudly.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    OSError,  # ConnectionError and TimeoutError (asyncio's too) are OSErrors
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    sqlite3.Error,
)


def describe(exc: BaseException) -> str:
    """The error for the log: its type and the driver's own error (what the database
    said), without the SQL text SQLAlchemy appends to its message."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        driver = exc.orig.__cause__ or exc.orig  # asyncpg's error behind the DB-API adapter
        kind = f"{type(driver).__module__}.{type(driver).__name__}"
        return f"{type(exc).__name__} ({kind}): {str(driver).strip()}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class LogLines:
    """What a loop says about its health, in its own words. Templates in ``%``-style with
    names: ``cause`` (the error, :func:`describe`), ``error`` (the error's own text),
    ``failures`` (in a row), ``delay`` (seconds until the next try) and ``max_delay`` (the
    longest backoff of the loop)."""

    failed: str  # WARNING: the first failure of an outage
    failed_again: str  # DEBUG: each further failure in a row
    recovered: str  # INFO: the first success after failures
    stopped: str = ""  # ERROR, with the traceback: a bug ended the loop (no placeholders)


class Outage:
    """The failures in a row of one loop, and what is logged about them.

    ``backoff(n)`` is the wait after the n-th failure in a row. A loop calls
    :meth:`failed` for each failed attempt (it logs and returns the wait), or
    :meth:`wait_after` to also sleep it; and :meth:`succeeded` after each attempt that
    worked (it logs the recovery when an outage ends).
    """

    def __init__(
        self, log: logging.Logger, lines: LogLines, backoff: Callable[[int], float]
    ) -> None:
        self.log = log
        self.lines = lines
        self.backoff = backoff
        #: Failed attempts in a row (0: no outage).
        self.failures = 0
        #: The cause of the last failure while the outage lasts (for health reports).
        self.cause: str | None = None

    def failed(self, exc: BaseException) -> float:
        """Count a failed attempt and log it (WARNING for the first of an outage, DEBUG
        after); returns how long to wait before the next."""
        self.failures += 1
        self.cause = describe(exc)
        delay = self.backoff(self.failures)
        facts: dict[str, Any] = {
            "cause": self.cause,
            "error": exc,
            "failures": self.failures,
            "delay": delay,
            "max_delay": self.backoff(64),
        }
        if self.failures == 1:
            self.log.warning(self.lines.failed, facts)
        else:
            self.log.debug(self.lines.failed_again, facts)
        return delay

    async def wait_after(self, exc: BaseException) -> None:
        """:meth:`failed`, then sleep the backoff."""
        await asyncio.sleep(self.failed(exc))

    def succeeded(self) -> None:
        """An attempt worked: ends the outage, if any, with one INFO line."""
        if self.failures:
            self.log.info(self.lines.recovered, {"failures": self.failures})
            self.failures = 0
        self.cause = None


__all__ = ["EXPECTED_ERRORS", "LogLines", "Outage", "describe"]
