"""Wake-ups after a commit that appended events: this process's listener at once, the
other processes through PostgreSQL's ``NOTIFY``, sent after the commit and coalesced.

Why not ``NOTIFY`` inside the writing transaction (which PostgreSQL would deliver at
commit, for free in statements)? Every transaction that notifies takes the notification
queue's lock at commit, one at a time across the cluster, while it still holds its row
locks: on a pipeline whose writers all lock the same run, that serialised commit cost
the write path a measurable share of its throughput (bench/RESULTS.md, issue 14). Sent
afterwards from a background task, one ``NOTIFY`` at a time per process with the newest
id committed meanwhile, the wake-up leaves the write path and costs one short statement
per burst of commits instead of one per transaction.

What it gives up: a process that dies between its commit and its ``NOTIFY`` wakes
nobody elsewhere; the other listeners' idle re-check (``runql.tasks.event_listener``, 1 s)
reads the events then. Nothing is lost: the log is the truth, a wake-up only says "read
it now".

The write session marks what it appended in ``session.info`` (``APPENDED``, set by
``runql.db.events.EventBatch.flush``); ``Database.write()`` calls :meth:`committed`
after a successful commit. ``LOG_OFF`` in a session's info turns the event log off
(``RUNQL_LIVE_UPDATES=off``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from runql.db.outages import LogLines, Outage

log = logging.getLogger(__name__)

#: The channel listeners LISTEN on; the payload is the newest event id committed.
NOTIFY_CHANNEL = "runql_events"

#: ``session.info`` key: the newest event id the transaction appended (0 when unknown).
APPENDED = "runql.events_appended"
#: ``session.info`` key: the event log is off for this session's writes.
LOG_OFF = "runql.event_log_off"

#: How long disposing of a database waits for its last wake-up to be sent.
DRAIN_SECONDS = 2.0

#: Longest wait between two attempts while ``NOTIFY`` fails.
MAX_BACKOFF_SECONDS = 5.0

LINES = LogLines(
    failed="event wake-up (NOTIFY) failed: %(cause)s; retrying with backoff, other servers "
    "see new events at their next check meanwhile",
    failed_again="event wake-up (NOTIFY) failed again (%(failures)d in a row): %(error)s",
    recovered="event wake-ups (NOTIFY) recovered after %(failures)d failure(s)",
)


def backoff_seconds(failures: int) -> float:
    """The wait after the ``failures``-th failed ``NOTIFY`` in a row: 0.1 s, doubling, at
    most ``MAX_BACKOFF_SECONDS`` (short: a wake-up is only worth sending soon)."""
    return min(MAX_BACKOFF_SECONDS, 0.05 * 2 ** min(failures, 32))


_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', :payload)")

#: Called with the newest event id committed (``None`` when unknown, as on SQLite).
LocalWakeup = Callable[[int | None], None]


class EventWakeups:
    """Per :class:`~runql.db.engine.Database`: who to wake when events were committed.

    ``engine`` is the PostgreSQL engine to ``NOTIFY`` through, ``None`` on SQLite (no
    other process can be told; they check the log on an interval).
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine
        self._local: list[LocalWakeup] = []
        self._unsent = 0  # newest id committed and not notified yet; 0: nothing to send
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, LINES, backoff_seconds)

    @property
    def failures(self) -> int:
        """Failed ``NOTIFY`` attempts in a row (0: none failing)."""
        return self._outage.failures

    def add_local(self, wakeup: LocalWakeup) -> None:
        """Call ``wakeup`` after every commit that appended events (the process's
        listener registers itself while it runs)."""
        self._local.append(wakeup)

    def remove_local(self, wakeup: LocalWakeup) -> None:
        with contextlib.suppress(ValueError):
            self._local.remove(wakeup)

    def committed(self, newest_id: int | None) -> None:
        """A transaction that appended events (up to ``newest_id``) has committed."""
        for wakeup in list(self._local):
            wakeup(newest_id)
        if self._engine is None:
            return
        self._unsent = max(self._unsent, newest_id or 0, 1)
        if self._task is None or self._task.done():
            # A fresh context: the NOTIFY is nobody's request (not in its statement count,
            # its trace or its log line).
            self._task = asyncio.get_running_loop().create_task(
                self._send(), name="runql-event-notify", context=contextvars.Context()
            )

    async def _send(self) -> None:
        """Until nothing is left to send: one ``NOTIFY`` with the newest id committed
        since the last one. Errors are logged once with their cause and retried with
        backoff (``runql.db.outages``); a wake-up that never gets through is covered by
        the listeners' idle re-check. Any error is retried, not only the database's: a
        wake-up is never worth a dead sender."""
        assert self._engine is not None
        while self._unsent:
            newest, self._unsent = self._unsent, 0
            try:
                async with self._engine.connect() as connection:
                    await connection.execute(_NOTIFY, {"payload": str(newest)})
                    await connection.commit()
            except Exception as exc:
                self._unsent = max(self._unsent, newest)
                await self._outage.wait_after(exc)
                continue
            self._outage.succeeded()

    async def drain(self) -> None:
        """Wait (at most ``DRAIN_SECONDS``) for the last wake-up to be sent: a short-lived
        process (``runql demo``) tells the servers what it committed before it exits."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), DRAIN_SECONDS)
        except TimeoutError:  # the database is down: ``_send`` logged it
            task.cancel()
