"""The background task that takes jobs back from runners that stopped renewing their
leases (crashed, lost their network, were killed).

Every ``lease_sweep_seconds`` it asks, with a plain read, whether any lease has expired;
only then does it open a write transaction and let ``runql.db.lease_expiry.requeue_expired``
end those claims (a retry submission when the job's policy allows it, a failure
otherwise). Several server replicas on one PostgreSQL sweep side by side: runs being swept
elsewhere are skipped (``SKIP LOCKED``), not waited for.

It runs on ``runql.tasks.periodic.PeriodicTask``: a sweep that fails on the database does not
end it (jobs whose runner died would stay ``RUNNING`` for ever); it backs off and tries
again, logging the outage once with its cause and once more on recovery. Any other
exception is a bug in the sweeper: it is logged with its traceback and ends the task.

The clock is a parameter so tests drive expiry without sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from runql.db import lease_expiry
from runql.db.engine import Database
from runql.db.outages import LogLines
from runql.db.types import utcnow
from runql.observe.metrics import Metrics
from runql.tasks.periodic import PeriodicTask

log = logging.getLogger(__name__)

#: Claims ended per write transaction: keeps each transaction (and the write lock) short.
BATCH_SIZE = 500

LINES = LogLines(
    failed="lease sweep failed: %(cause)s; retrying with backoff (at most every "
    "%(max_delay)gs), further failures are logged at DEBUG until a sweep succeeds",
    failed_again="lease sweep failed again (%(failures)d in a row), retrying in %(delay)gs: "
    "%(cause)s",
    recovered="lease sweep recovered after %(failures)d failed attempt(s)",
    stopped="lease sweeper stopped by an unexpected error (a bug): expired leases are no "
    "longer collected until the server restarts",
)


class LeaseSweeper(PeriodicTask[int]):
    """Requeues jobs whose lease expired, periodically, until stopped (``start``/``stop``,
    ``running``: ``PeriodicTask``'s)."""

    def __init__(
        self,
        db: Database,
        *,
        interval_seconds: float,
        now: Callable[[], dt.datetime] = utcnow,
        batch_size: int = BATCH_SIZE,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(
            "runql-lease-sweeper",
            self._sweep,
            interval_seconds=interval_seconds,
            log=log,
            lines=LINES,
            report=_report,
            on_success=metrics.sweep_succeeded if metrics is not None else None,
            on_failure=metrics.sweep_failed if metrics is not None else None,
        )
        self.db = db
        self.metrics = metrics
        self.now = now
        self.batch_size = batch_size

    async def sweep_once(self) -> int:
        """End every claim whose lease expired by ``now()``; returns how many it ended.
        Counted in the metrics (when on): a sweep, its expired leases, or its failure."""
        return await self.run_once()

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


def _report(ended: int) -> None:
    if ended:
        log.info("lease sweep: ended %d expired claim(s)", ended)


__all__ = ["BATCH_SIZE", "LeaseSweeper"]
