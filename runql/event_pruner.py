"""The background task that deletes events older than the retention
(``RUNQL_EVENT_RETENTION_HOURS``), every ``RUNQL_EVENT_PRUNE_SECONDS``.

Pruning records a watermark (``runql.db.events.prune_events``): a subscription resuming
from a cursor below it answers ``CURSOR_EXPIRED`` instead of silently skipping events.
Replicas prune one at a time (``runql.db.live.try_prune_lock``); one that finds another
pruning skips its turn. Database errors are survived as in the lease sweeper: logged
once with their cause, retried with backoff, logged again on recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from runql.db import events as event_log
from runql.db import live as live_queries
from runql.db.engine import Database
from runql.db.types import utcnow
from runql.lease_sweeper import EXPECTED_ERRORS, backoff_seconds, describe

log = logging.getLogger(__name__)


class EventPruner:
    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float,
        retention: dt.timedelta,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.interval_seconds = interval_seconds
        self.retention = retention
        self.now = now
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self) -> int:
        """Delete what is older than the retention; returns how many events."""
        async with self.db.write() as session:
            if not await live_queries.try_prune_lock(session):
                return 0
            return await event_log.prune_events(session, older_than=self.now() - self.retention)

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                pruned = await self.prune_once()
            except EXPECTED_ERRORS as exc:
                failures += 1
                if failures == 1:
                    log.warning("event pruning failed: %s; retrying with backoff", describe(exc))
                else:
                    log.debug("event pruning failed again (%d in a row): %s", failures, exc)
                await asyncio.sleep(backoff_seconds(self.interval_seconds, failures))
                continue
            except Exception:
                log.exception("event pruning stopped by an unexpected error (a bug)")
                return
            if failures:
                log.info("event pruning recovered after %d failed attempt(s)", failures)
                failures = 0
            if pruned:
                log.info("event pruning: deleted %d event(s) older than %s", pruned, self.retention)
            await asyncio.sleep(self.interval_seconds)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="runql-event-pruner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
