"""The per-process reader of the event log that wakes every subscription of the process.

One task per server process reads the log (``runql.db.events``) after the position it
last read and hands each new event to the subscriptions it concerns. Subscriptions never
poll the database themselves: 100 subscribers cost one read per wake-up, not 100.

What wakes it:

* This process's commits: ``Database.write()`` calls :meth:`EventListener.notify` right
  after a commit that appended events (``runql.db.wakeups``), on both backends.
* PostgreSQL, other processes' commits: one dedicated asyncpg connection per process,
  ``LISTEN runql_events``. Every process sends ``NOTIFY runql_events, '<max id>'`` after
  its commits that appended events (coalesced): a wake-up only, the log is the truth.
  When that connection drops (server restart, ``pg_terminate_backend``, a network cut)
  the listener reconnects with backoff and re-reads from its last position, so what was
  committed meanwhile is delivered late, never lost. An event that is committed but not
  yet final (an older transaction is still in flight: ``runql.db.events`` reads only
  below the oldest one) is read on a short re-check (``poll_seconds``) while a notified
  id is still unread, and a slow re-check (``idle_check_seconds``) covers a lost
  notification (a process that died between its commit and its ``NOTIFY``).
* SQLite, other processes' commits: no notifications exist; the log is checked every
  ``poll_seconds``. Writers in another worker process are seen within that interval.

While no subscription exists the listener reads no events: it only moves its position to
``safe_position()`` on each wake-up, so the first subscriber does not inherit a backlog.

A subscription's queue is bounded (``max_backlog``): a consumer that falls that far behind
(a client that stopped reading its socket) is cut off with ``overflowed`` set and its queue
freed; it ends with an error and resumes from its last cursor. Memory never grows with a
slow client.

Errors: like the lease sweeper, a database error does not end the task. It is logged
once with its cause, retried with backoff, and logged once more on recovery
(``runql.db.outages.Outage``); ``state`` says ``ok``, ``connecting`` or ``degraded`` for
``/readyz``. Anything else is a bug: logged with its traceback, the task ends and
``state`` says ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from runql.db import events as event_log
from runql.db import wakeups
from runql.db.engine import Database
from runql.db.enums import EventKind
from runql.db.events import EventPosition, EventRow
from runql.db.outages import EXPECTED_ERRORS, LogLines, Outage
from runql.db.visibility import Viewer
from runql.observe.metrics import Metrics
from runql.tasks.periodic import backoff_seconds

log = logging.getLogger(__name__)

#: The listener reads every project's events; each subscription checks its viewer's
#: visibility itself (``runql.resolvers.events``), against current membership.
SYSTEM_VIEWER = Viewer(user_id=0, name="runql-event-listener", is_admin=True)

#: ``application_name`` of the LISTEN connection (find it in ``pg_stat_activity``).
APPLICATION_NAME = "runql-event-listener"

#: Events read per statement while catching up.
READ_BATCH = 500

#: While only coalesced (``jobsReady``) subscribers exist, the least time between two
#: reads of the log: the same as the signals' spacing (``runql.resolvers.events``).
COALESCED_READ_SECONDS = 0.05

#: How long the idle check of the LISTEN connection may take before it counts as dead.
PING_TIMEOUT_SECONDS = 5.0

#: How long a failed connect or read waits before the next try, at most.
MAX_BACKOFF_SECONDS = 30.0

LINES = LogLines(
    failed="event listener failed: %(cause)s; retrying with backoff, further failures "
    "are logged at DEBUG until it recovers",
    failed_again="event listener failed again (%(failures)d in a row): %(error)s",
    recovered="event listener recovered after %(failures)d failed attempt(s)",
)


T = TypeVar("T")


class SharedBatch:
    """One read of the log as handed to every subscription of the process, with what is
    computed from it once for all of them (:meth:`once`): 100 subscriptions of one event
    read its run and job once, not 100 times (``runql.resolvers.events``)."""

    __slots__ = ("_memo", "events")

    def __init__(self, events: Sequence[EventRow]) -> None:
        self.events = events
        self._memo: dict[str, asyncio.Task[Any]] = {}

    async def once(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()``'s result, computed by the first caller with this ``key``; later
        callers await the same result. It runs as its own task (in a fresh context: it is
        no one subscription's work), so a caller that is cancelled does not cancel it for
        the others."""
        task = self._memo.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                _awaited(compute), name=f"runql-shared-{key}", context=contextvars.Context()
            )
            # Its callers see a failure; this keeps one whose callers all went away from
            # being reported as never retrieved.
            task.add_done_callback(_retrieve)
            self._memo[key] = task
        result: T = await asyncio.shield(task)
        return result


async def _awaited(compute: Callable[[], Awaitable[T]]) -> T:
    return await compute()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True, slots=True)
class Queued:
    """An event in a subscriber's queue, with the listener read it came from."""

    event: EventRow
    batch: SharedBatch


@dataclass(eq=False)
class Subscriber:
    """One subscription's view of the stream: the events after ``start`` that match its
    filter, queued until it takes them. ``coalesce``: keep only "something happened"
    (jobsReady), not the events themselves."""

    project_ids: frozenset[int] | None
    run_ids: frozenset[int] | None
    max_backlog: int
    #: Whose visibility the subscription checks (``None``: an admin, who sees all); the
    #: live path reads the memberships of every subscriber's user at once.
    user_id: int | None = None
    coalesce: bool = False
    kinds: frozenset[EventKind] | None = None
    #: The listener's position when the subscriber registered: every later event is
    #: queued (or, coalesced, signalled); the subscriber replays what came before itself.
    start: EventPosition = event_log.START
    overflowed: bool = False
    touched_projects: set[int] = field(default_factory=set)
    _queue: deque[Queued] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: EventRow) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.project_ids is not None and event.project_id not in self.project_ids:
            return False
        return self.run_ids is None or event.run_id in self.run_ids

    def offer(self, events: Sequence[EventRow], batch: SharedBatch | None = None) -> None:
        """Queue the ``events`` this subscriber wants (``batch``: the listener read they
        came from, shared with the other subscribers)."""
        if self.overflowed:
            return
        if batch is None:
            batch = SharedBatch(events)
        if self.coalesce:
            touched = {e.project_id for e in events if self.wants(e)}
            if touched:
                self.touched_projects |= touched
                self._wake.set()
            return
        before = len(self._queue)
        self._queue.extend(Queued(e, batch) for e in events if self.wants(e))
        if len(self._queue) > self.max_backlog:
            self.overflowed = True
            self._queue.clear()
        if len(self._queue) != before or self.overflowed:
            self._wake.set()

    def wake(self) -> None:
        """Wakes the consumer without an event (the listener is stopping)."""
        self._wake.set()

    async def wait(self) -> None:
        """Until something was queued (or signalled) since the last ``take``."""
        await self._wake.wait()

    def take(self) -> list[Queued]:
        """Everything queued, oldest first."""
        events = list(self._queue)
        self._queue.clear()
        self._wake.clear()
        return events

    def take_touched(self) -> set[int]:
        """Coalesced subscribers: the projects with events since the last call."""
        touched, self.touched_projects = self.touched_projects, set()
        self._wake.clear()
        return touched

    @property
    def backlog(self) -> int:
        return len(self._queue)


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a DSN asyncpg's own ``connect`` takes."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class EventListener:
    """Reads the event log once per wake-up and fans the events out to subscribers."""

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float,
        idle_check_seconds: float = 1.0,
        coalesced_read_seconds: float = COALESCED_READ_SECONDS,
        connect: Callable[[str], Any] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.idle_check_seconds = idle_check_seconds
        self.coalesced_read_seconds = coalesced_read_seconds
        #: Statements that read events (``read_events``) so far.
        self.reads = 0
        self._read_at = float("-inf")
        self._urgent = asyncio.Event()
        self._connect = connect or (
            lambda dsn: asyncpg.connect(dsn, server_settings={"application_name": APPLICATION_NAME})
        )
        self.position: EventPosition | None = None
        self.subscribers: set[Subscriber] = set()
        self.state = "stopped"
        self.reconnects = 0
        self._outage = Outage(
            log,
            LINES,
            lambda failures: min(backoff_seconds(self.poll_seconds, failures), MAX_BACKOFF_SECONDS),
        )
        self._wake = asyncio.Event()
        self._notified_id = 0
        self._read_id = 0
        self._connection: Any = None
        self._connection_lost = False
        self._connected_once = False
        self._task: asyncio.Task[None] | None = None

    # --- subscribers --------------------------------------------------------------------

    async def subscribe(
        self,
        *,
        project_ids: Collection[int] | None,
        run_ids: Collection[int] | None,
        max_backlog: int,
        user_id: int | None = None,
        coalesce: bool = False,
        kinds: Collection[EventKind] | None = None,
    ) -> Subscriber:
        """Registers a subscriber; every event after ``subscriber.start`` reaches it."""
        if not self.running:
            raise RuntimeError("the event listener is not running")
        if self.position is None:  # before the first read: start from what is final now
            async with self.db.read() as session:
                position = await event_log.safe_position(session)
            if self.position is None:
                self.position = position
        subscriber = Subscriber(
            project_ids=None if project_ids is None else frozenset(project_ids),
            run_ids=None if run_ids is None else frozenset(run_ids),
            max_backlog=max_backlog,
            user_id=user_id,
            coalesce=coalesce,
            kinds=None if kinds is None else frozenset(kinds),
            start=self.position or event_log.START,
        )
        self.subscribers.add(subscriber)
        self.read_now()  # a position taken while idle may be stale: read from it now
        if not coalesce:
            self._urgent.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    # --- the loop -----------------------------------------------------------------------

    def notify(self, max_id: int | None = None) -> None:
        """A wake-up: the log may have grown (up to ``max_id`` when known). Without
        subscribers nothing needs reading now: the idle re-check moves the position on,
        and a new subscriber wakes the loop itself (so a busy write path does not make an
        idle listener read once per commit)."""
        if max_id is not None:
            self._notified_id = max(self._notified_id, max_id)
        if self.subscribers:
            self._wake.set()

    def read_now(self) -> None:
        """Read the log (or, idle, move to the final position) now, subscribers or not."""
        self._wake.set()

    async def _catch_up(self) -> None:
        """Read everything final after ``position`` and hand it out."""
        if self.position is None or not self.subscribers:
            notified = self._notified_id
            async with self.db.read() as session:
                position = await event_log.safe_position(session)
            # A subscriber that registered meanwhile starts from the position it saw.
            if self.position is None or not self.subscribers:
                self.position = position
                self._read_id = max(self._read_id, notified)
            return
        while True:
            async with self.db.read() as session:
                events = await event_log.read_events(
                    session, SYSTEM_VIEWER, after=self.position, limit=READ_BATCH
                )
            self.reads += 1
            self._read_at = asyncio.get_running_loop().time()
            if not events:
                return
            self.position = events[-1].position
            self._read_id = max(self._read_id, max(e.position.id for e in events))
            batch = SharedBatch(events)
            for subscriber in list(self.subscribers):
                subscriber.offer(events, batch)
            if len(events) < READ_BATCH:
                return

    def _pending(self) -> bool:
        """A notified event is not read yet (an older transaction holds it back)."""
        return self._notified_id > self._read_id

    async def _ensure_connection(self) -> None:
        if self.db.is_sqlite or (self._connection is not None and not self._connection_lost):
            return
        await self._close_connection()
        self.state = "connecting"
        connection = await self._connect(asyncpg_dsn(self.db.url))
        self._connection_lost = False
        if self._connected_once:
            self.reconnects += 1
            if self.metrics is not None:
                self.metrics.listener_reconnected()
            log.info("event listener reconnected; reading from its last position")
        self._connected_once = True

        def on_notify(conn: Any, pid: int, channel: str, payload: str) -> None:
            self.notify(int(payload) if payload.isdigit() else None)

        def on_lost(conn: Any) -> None:
            if conn is self._connection:  # not one this listener closed and replaced
                self._connection_lost = True
                self._wake.set()

        connection.add_termination_listener(on_lost)
        await connection.add_listener(wakeups.NOTIFY_CHANNEL, on_notify)
        self._connection = connection

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*EXPECTED_ERRORS):
                await connection.close(timeout=2)

    def _interval(self) -> float:
        if self.db.is_sqlite or self._pending():
            return self.poll_seconds
        return self.idle_check_seconds

    @property
    def last_error(self) -> str | None:
        """The cause of the outage going on, if any (``/readyz``)."""
        return self._outage.cause

    async def run(self) -> None:
        """Until cancelled; see the module docstring for errors."""
        idle = False
        while True:
            try:
                if idle and self._connection is not None and not self._connection_lost:
                    # Nothing woke it for a while: make sure the LISTEN socket is alive
                    # (a silent network cut shows only when something is sent).
                    await self._connection.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
                await self._ensure_connection()
                self._wake.clear()
                await self._catch_up()
            except EXPECTED_ERRORS as exc:
                self.state = "degraded"
                if self.metrics is not None:
                    self.metrics.listener_down()
                delay = self._outage.failed(exc)
                await self._close_connection()
                self._connection_lost = True
                await asyncio.sleep(delay)
                continue
            except Exception:
                self.state = "stopped"
                if self.metrics is not None:
                    self.metrics.listener_down()
                log.exception(
                    "event listener stopped by an unexpected error (a bug): subscriptions "
                    "get no events until the server restarts"
                )
                for subscriber in list(self.subscribers):
                    subscriber.wake()
                return
            self._outage.succeeded()
            self.state = "ok"
            if self.metrics is not None:
                self.metrics.listener_up()
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval())
                idle = False
            except TimeoutError:
                idle = True
            await self._space_reads()

    async def _space_reads(self) -> None:
        """While every subscriber is coalesced (``jobsReady``), read at most once per
        ``coalesced_read_seconds``: they signal at most that often anyway, and a busy
        pipeline commits hundreds of times a second. A ``runEvents`` subscriber that
        registers meanwhile ends the wait (it wants events at once)."""
        subscribers = self.subscribers
        if not subscribers or not all(s.coalesce for s in subscribers):
            return
        delay = self._read_at + self.coalesced_read_seconds - asyncio.get_running_loop().time()
        if delay > 0:
            self._urgent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), delay)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Run in the background (the app's lifespan calls this); a no-op when running."""
        if self._task is None:
            self.state = "starting"
            self._task = asyncio.create_task(self.run(), name="runql-event-listener")
            self.db.wakeups.add_local(self.notify)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.db.wakeups.remove_local(self.notify)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_connection()
        self.state = "stopped"
        for subscriber in list(self.subscribers):
            subscriber.wake()

    def health(self) -> dict[str, Any]:
        """What ``/readyz`` shows of the listener."""
        report: dict[str, Any] = {
            "state": self.state,
            "subscribers": len(self.subscribers),
            "mode": "poll" if self.db.is_sqlite else "listen",
        }
        if self.last_error:
            report["error"] = self.last_error
        return report


__all__ = [
    "APPLICATION_NAME",
    "SYSTEM_VIEWER",
    "EventListener",
    "Queued",
    "SharedBatch",
    "Subscriber",
    "asyncpg_dsn",
]
