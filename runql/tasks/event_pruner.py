"""The background task that deletes events older than the retention
(``RUNQL_EVENT_RETENTION_HOURS``), every ``RUNQL_EVENT_PRUNE_SECONDS``.

Pruning records a watermark (``runql.db.events.prune_events``): a subscription resuming
from a cursor below it answers ``CURSOR_EXPIRED`` instead of silently skipping events.
Replicas prune one at a time (``runql.db.live.try_prune_lock``); one that finds another
pruning skips its turn. It runs on ``runql.tasks.periodic.PeriodicTask``, so database errors
are survived as in the lease sweeper: logged once with their cause, retried with
backoff, logged again on recovery.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from runql.db import events as event_log
from runql.db import live as live_queries
from runql.db.engine import Database
from runql.db.outages import LogLines
from runql.db.types import utcnow
from runql.tasks.periodic import PeriodicTask

log = logging.getLogger(__name__)

LINES = LogLines(
    failed="event pruning failed: %(cause)s; retrying with backoff",
    failed_again="event pruning failed again (%(failures)d in a row): %(error)s",
    recovered="event pruning recovered after %(failures)d failed attempt(s)",
    stopped="event pruning stopped by an unexpected error (a bug)",
)


class EventPruner(PeriodicTask[int]):
    """Deletes events older than the retention, periodically, until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float,
        retention: dt.timedelta,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__(
            "runql-event-pruner",
            self.prune_once,
            interval_seconds=interval_seconds,
            log=log,
            lines=LINES,
            report=self._report,
        )
        self.db = db
        self.retention = retention
        self.now = now

    async def prune_once(self) -> int:
        """Delete what is older than the retention; returns how many events."""
        async with self.db.write() as session:
            if not await live_queries.try_prune_lock(session):
                return 0
            return await event_log.prune_events(session, older_than=self.now() - self.retention)

    def _report(self, pruned: int) -> None:
        if pruned:
            log.info("event pruning: deleted %d event(s) older than %s", pruned, self.retention)
