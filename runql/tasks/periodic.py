"""The loop of runql's periodic background tasks (the lease sweeper, the event pruner): run
a step every interval until stopped, and outlive the database.

A step that fails on the database (busy, locked past ``statement_timeout``, deadlocked,
restarting, unreachable) does not end the task: its work (taking jobs back from runners
that died, pruning the event log) would silently stop until the server restarts. The task
backs off (the interval, doubling per failure in a row, at most ``MAX_BACKOFF_SECONDS`` or
ten intervals) and tries again. The failure is logged once, with its cause, when it
starts, and once more when a step succeeds again; the retries in between log at DEBUG
only, so an outage of hours is two lines, not thousands (``runql.db.outages.Outage``, the
rule every background loop of runql follows). Any other exception is a bug in the task: it
is logged with its traceback and ends the task.

Each task keeps what is its own: what a step does (its queries, locks and settings), its
logger and the wording of its lines (:class:`LogLines`), and its metrics (the hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from runql.db.outages import EXPECTED_ERRORS, LogLines, Outage

T = TypeVar("T")

#: Longest wait between retries while the database keeps failing.
MAX_BACKOFF_SECONDS = 60.0


def backoff_seconds(interval_seconds: float, failures: int) -> float:
    """How long to wait after the ``failures``-th failed step in a row: the interval,
    doubling with each failure, capped at ten intervals or ``MAX_BACKOFF_SECONDS``,
    whichever is less (but never below one interval)."""
    cap = max(interval_seconds, min(MAX_BACKOFF_SECONDS, 10 * interval_seconds))
    return min(cap, interval_seconds * 2 ** min(max(failures - 1, 0), 32))


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
        outage = Outage(
            self.log, self.lines, lambda failures: self.backoff(self.interval_seconds, failures)
        )
        while True:
            try:
                result = await self.run_once()
            except EXPECTED_ERRORS as exc:
                await outage.wait_after(exc)
                continue
            except Exception:
                self.log.exception(self.lines.stopped)
                return
            outage.succeeded()
            if self.report is not None:
                self.report(result)
            await asyncio.sleep(self.interval_seconds)

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


__all__ = ["MAX_BACKOFF_SECONDS", "PeriodicTask", "backoff_seconds"]
