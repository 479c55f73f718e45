"""The loop of runql's periodic background tasks (the lease sweeper, the event pruner): run
a step every interval until stopped, and outlive the database.

A step that fails on the database (busy, locked past ``statement_timeout``, deadlocked,
restarting, unreachable) does not end the task: its work (taking jobs back from runners
that died, pruning the event log) would silently stop until the server restarts. The task
backs off (the interval, doubling per failure in a row, at most ``MAX_BACKOFF_SECONDS`` or
ten intervals) and tries again. The failure is logged once, with its cause, when it
starts, and once more when a step succeeds again; the retries in between log at DEBUG
only, so an outage of hours is two lines, not thousands. Any other exception is a bug in
the task: it is logged with its traceback and ends the task.

Each task keeps what is its own: what a step does (its queries, locks and settings), its
logger and the wording of its lines (:class:`LogLines`), and its metrics (the hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

T = TypeVar("T")

#: What a step may meet and survive: any error of the database or of the way to it.
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
    """How long to wait after the ``failures``-th failed step in a row: the interval,
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


@dataclass(frozen=True)
class LogLines:
    """What a task says about its health, in its own words. Templates in ``%``-style with
    names: ``cause`` (the error, :func:`describe`), ``error`` (the error's own text),
    ``failures`` (in a row), ``delay`` (seconds until the next try) and ``max_delay`` (the
    longest backoff of the task)."""

    failed: str  # WARNING: the first failure of an outage
    failed_again: str  # DEBUG: each further failure in a row
    recovered: str  # INFO: the first success after failures
    stopped: str  # ERROR, with the traceback: a bug ended the task (no placeholders)


class PeriodicTask(Generic[T]):
    """Runs ``step`` every ``interval_seconds`` in the background until stopped; see the
    module docstring for errors.

    ``report`` receives each successful step's result (to log what it did);
    ``on_success``/``on_failure`` count each step, whether the loop or a caller of
    :meth:`run_once` ran it (metrics); ``backoff`` is the wait after the n-th failure in a
    row, given the interval and n."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[T]],
        *,
        interval_seconds: float,
        log: logging.Logger,
        lines: LogLines,
        report: Callable[[T], None] | None = None,
        on_success: Callable[[], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        backoff: Callable[[float, int], float] = backoff_seconds,
    ) -> None:
        self.name = name
        self.step = step
        self.interval_seconds = interval_seconds
        self.log = log
        self.lines = lines
        self.report = report
        self.on_success = on_success
        self.on_failure = on_failure
        self.backoff = backoff
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> T:
        """One step, counted by the hooks (a failure of any kind is counted, then raised)."""
        if self.on_success is None and self.on_failure is None:
            return await self.step()
        try:
            result = await self.step()
        except Exception:
            if self.on_failure is not None:
                self.on_failure()
            raise
        if self.on_success is not None:
            self.on_success()
        return result

    async def run(self) -> None:
        """Step every interval until cancelled."""
        failures = 0
        while True:
            try:
                result = await self.run_once()
            except EXPECTED_ERRORS as exc:
                failures += 1
                delay = self.backoff(self.interval_seconds, failures)
                facts = self._facts(exc, failures, delay)
                if failures == 1:
                    self.log.warning(self.lines.failed, facts)
                else:
                    self.log.debug(self.lines.failed_again, facts)
                await asyncio.sleep(delay)
                continue
            except Exception:
                self.log.exception(self.lines.stopped)
                return
            if failures:
                self.log.info(self.lines.recovered, {"failures": failures})
                failures = 0
            if self.report is not None:
                self.report(result)
            await asyncio.sleep(self.interval_seconds)

    def _facts(self, exc: BaseException, failures: int, delay: float) -> dict[str, Any]:
        """What a failure line may name (``LogLines``)."""
        return {
            "cause": describe(exc),
            "error": exc,
            "failures": failures,
            "delay": delay,
            "max_delay": self.backoff(self.interval_seconds, 64),
        }

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Run in the background (the app's lifespan calls this); a no-op when running."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end; a no-op when not started."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = [
    "EXPECTED_ERRORS",
    "MAX_BACKOFF_SECONDS",
    "LogLines",
    "PeriodicTask",
    "backoff_seconds",
    "describe",
]
