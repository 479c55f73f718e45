"""The background task that takes jobs back from runners that stopped renewing their
leases (crashed, lost their network, were killed).

Every ``lease_sweep_seconds`` it asks, with a plain read, whether any lease has expired;
only then does it open a write transaction and let ``runql.db.runner.requeue_expired``
end those claims (a retry submission when the job's policy allows it, a failure
otherwise). Several server replicas on one PostgreSQL sweep side by side: runs being swept
elsewhere are skipped (``SKIP LOCKED``), not waited for.

The clock is a parameter so tests drive expiry without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.exc import InterfaceError, OperationalError

from runql.db import runner as runner_db
from runql.db.engine import Database
from runql.db.types import utcnow

log = logging.getLogger(__name__)

#: Claims ended per write transaction: keeps each transaction (and the write lock) short.
BATCH_SIZE = 500

#: What a sweep may meet and survive: the database busy, restarting or unreachable.
#: Anything else is a bug and ends the task loudly.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    TimeoutError,
)


class LeaseSweeper:
    """Requeues jobs whose lease expired, periodically, until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float,
        now: Callable[[], dt.datetime] = utcnow,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.db = db
        self.interval_seconds = interval_seconds
        self.now = now
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        """End every claim whose lease expired by ``now()``; returns how many it ended."""
        now = self.now()
        total = 0
        while True:
            async with self.db.read() as session:
                if not await runner_db.expired_leases_exist(session, now):
                    return total
            async with self.db.write() as session:
                ended = await runner_db.requeue_expired(session, now=now, limit=self.batch_size)
            total += ended
            if ended < self.batch_size:  # done, or the rest is being swept elsewhere
                return total

    async def run(self) -> None:
        while True:
            try:
                ended = await self.sweep_once()
            except EXPECTED_ERRORS as exc:
                log.warning("lease sweep failed, retrying in %ss: %r", self.interval_seconds, exc)
            else:
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
