"""The background task that takes jobs back from runners that stopped renewing their
leases (crashed, lost their network, were killed).

Every ``lease_sweep_seconds`` it asks, with a plain read, whether any lease has expired;
only then does it open a write transaction and let ``runql.db.lease_expiry.requeue_expired``
end those claims (a retry submission when the job's policy allows it, a failure
otherwise). Several server replicas on one PostgreSQL sweep side by side: runs being swept
elsewhere are skipped (``SKIP LOCKED``), not waited for.

A sweep that fails on the database (busy, locked past ``statement_timeout``, deadlocked,
restarting, unreachable) does not end the task: jobs whose runner died would stay
``RUNNING`` for ever. It backs off (the interval, doubling per failure in a row, at most
``MAX_BACKOFF_SECONDS`` or ten intervals) and tries again. The failure is logged once,
with its cause, when it starts, and once more when a sweep succeeds again; the retries in
between log at DEBUG only, so an outage of hours is two lines, not thousands. Any other
exception is a bug in the sweeper: it is logged with its traceback and ends the task.

The clock is a parameter so tests drive expiry without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable

import asyncpg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from runql.db import lease_expiry
from runql.db.engine import Database
from runql.db.types import utcnow
from runql.metrics import Metrics

log = logging.getLogger(__name__)

#: Claims ended per write transaction: keeps each transaction (and the write lock) short.
BATCH_SIZE = 500

#: What a sweep may meet and survive: any error of the database or of the way to it.
#: SQLAlchemy wraps most driver errors, but not all of them the same way (a statement
#: timeout or a deadlock on asyncpg arrives as a plain ``DBAPIError``), and a few driver
#: and socket errors escape unwrapped, so the whole families are listed. Anything else is
#: a bug and ends the task loudly.
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

#: Longest wait between retries while the database keeps failing.
MAX_BACKOFF_SECONDS = 60.0


def backoff_seconds(interval_seconds: float, failures: int) -> float:
    """How long to wait after the ``failures``-th failed sweep in a row: the interval,
    doubling with each failure, capped at ten intervals or ``MAX_BACKOFF_SECONDS``,
    whichever is less (but never below one interval)."""
    cap = max(interval_seconds, min(MAX_BACKOFF_SECONDS, 10 * interval_seconds))
    return min(cap, interval_seconds * 2 ** min(max(failures - 1, 0), 32))


def describe(exc: BaseException) -> str:
    """The error for the log: its type and the driver's own error (what the database
    said), without the SQL text SQLAlchemy appends to its message."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        driver = exc.orig.__cause__ or exc.orig  # asyncpg's error behind the DB-API adapter
        kind = f"{type(driver).__module__}.{type(driver).__name__}"
        return f"{type(exc).__name__} ({kind}): {str(driver).strip()}"
    return f"{type(exc).__name__}: {exc}"


class LeaseSweeper:
    """Requeues jobs whose lease expired, periodically, until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float,
        now: Callable[[], dt.datetime] = utcnow,
        batch_size: int = BATCH_SIZE,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.interval_seconds = interval_seconds
        self.now = now
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        """End every claim whose lease expired by ``now()``; returns how many it ended.
        Counted in the metrics (when on): a sweep, its expired leases, or its failure."""
        if self.metrics is None:
            return await self._sweep()
        try:
            ended = await self._sweep()
        except Exception:
            self.metrics.sweep_failed()
            raise
        self.metrics.sweep_succeeded()
        return ended

    async def _sweep(self) -> int:
        now = self.now()
        total = 0
        while True:
            async with self.db.read() as session:
                if not await lease_expiry.expired_leases_exist(session, now):
                    return total
            async with self.db.write() as session:
                ended = await lease_expiry.requeue_expired(session, now=now, limit=self.batch_size)
            total += ended
            if ended and self.metrics is not None:  # per committed batch
                self.metrics.leases_expired.inc(ended)
            if ended < self.batch_size:  # done, or the rest is being swept elsewhere
                return total

    async def run(self) -> None:
        """Sweep every interval until cancelled; see the module docstring for errors."""
        failures = 0
        while True:
            try:
                ended = await self.sweep_once()
            except EXPECTED_ERRORS as exc:
                failures += 1
                delay = backoff_seconds(self.interval_seconds, failures)
                if failures == 1:
                    log.warning(
                        "lease sweep failed: %s; retrying with backoff (at most every %gs), "
                        "further failures are logged at DEBUG until a sweep succeeds",
                        describe(exc),
                        backoff_seconds(self.interval_seconds, 64),
                    )
                else:
                    log.debug(
                        "lease sweep failed again (%d in a row), retrying in %gs: %s",
                        failures,
                        delay,
                        describe(exc),
                    )
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception(
                    "lease sweeper stopped by an unexpected error (a bug): expired leases "
                    "are no longer collected until the server restarts"
                )
                return
            if failures:
                log.info("lease sweep recovered after %d failed attempt(s)", failures)
                failures = 0
            if ended:
                log.info("lease sweep: ended %d expired claim(s)", ended)
            await asyncio.sleep(self.interval_seconds)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Run in the background (the app's lifespan calls this); a no-op when running."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="runql-lease-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
