"""Live updates: ``runEvents`` and ``jobsReady`` subscriptions (list-then-watch: a runs
page's ``eventCursor`` is made in ``runql.resolvers.pagination``).

``runEvents`` registers with the process's event listener first (every event after the
listener's position from then on is queued for it), then replays from the client's cursor
up to that position with its own reads, then streams the queue, skipping what it already
sent. Both halves read final segments of one ordered log, so the stream has no gap and no
duplicate whatever the commit order (``runql.db.events``).

Each batch of events is shown with the state of its runs and jobs when it is sent, and
only the events whose run the viewer may see now are sent: membership is checked per
batch, so a user removed from a project stops receiving its events at once, even on a
socket opened before. A replay read is the subscription's own (two statements, filtered
by the viewer in SQL). Live events are shared: what one listener read is shown to every
subscription of the process from one read of its runs and jobs and one read of the
memberships of every subscriber's user (``SharedBatch.once``), three statements per batch
however many subscribers; each subscription then filters that by its own viewer.

Cursors are opaque and signed like the pagination cursors, and live with them
(``runql.resolvers.pagination``); one older than the retention (events after it were
pruned) or ahead of the log (another database's, or from before a restore) answers
``CURSOR_EXPIRED`` rather than a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

from runql.db import events as event_log
from runql.db import live as live_queries
from runql.db.enums import EventKind
from runql.db.events import EventRow
from runql.db.models import Job, Run
from runql.error_codes import ErrorCode
from runql.observe import metrics
from runql.resolvers.checks import check_batch, check_text, parse_id
from runql.resolvers.context import Context
from runql.resolvers.errors import ClientError, NotFound, SettingExceeded
from runql.resolvers.pagination import (
    check_not_pruned,
    check_resumable,
    decode_event_cursor,
    encode_event_cursor,
)
from runql.tasks.event_listener import SYSTEM_VIEWER, EventListener, Queued, SharedBatch, Subscriber

#: Events read per replay statement (and so sent per batch while replaying).
REPLAY_BATCH = 200

#: What may make claimable jobs appear: a ``jobsReady`` wake-up follows only these.
READY_KINDS = frozenset(
    {
        EventKind.RUN_SUBMITTED,
        EventKind.JOB_RETRIED,
        EventKind.JOB_UNBLOCKED,
        EventKind.JOB_REQUEUED,
    }
)

#: Least time between two ``jobsReady`` signals of one subscription. The first comes at
#: once; later events within this time make one signal at its end, not one each: a
#: busy pipeline commits hundreds of times a second and each signal costs a count of
#: the ready jobs.
JOBS_READY_SPACING = 0.05

BACKLOG_SETTING = "RUNQL_MAX_EVENT_BACKLOG"


class ListenerDown(ClientError):
    """The process's listener stopped (server shutting down): resume elsewhere."""

    code = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self) -> None:
        super().__init__(
            "live updates are unavailable on this server now; resume from the last cursor"
        )


@dataclass(frozen=True)
class RunEventItem:
    """What ``RunEvent`` shows: the event, its run and job as they are now."""

    cursor: str
    kind: EventKind
    at: dt.datetime
    run: Run
    job: Job | None


@dataclass(frozen=True)
class JobsReadyItem:
    """What ``JobsReady`` shows: how many jobs the viewer could claim now (a hint)."""

    ready: int


# --- runEvents ---------------------------------------------------------------------------


async def _project_ids(ctx: Context, project: str | None) -> list[int] | None:
    if project is None:
        return None
    found = await ctx.loaders.project_by_name.load(check_text(project, "project"))
    if found is None:
        raise NotFound(
            f"project: no project named {project!r} among the projects you are a member of",
            field="project",
        )
    return [found.id]


def _run_ids(ctx: Context, run_ids: Sequence[str] | None) -> list[int] | None:
    if run_ids is None:
        return None
    check_batch("runIds", len(run_ids), ctx.settings.max_batch_size)
    parsed = [parse_id(str(value), f"runIds[{i}]") for i, value in enumerate(run_ids)]
    return sorted({value for value in parsed if value is not None})


class LiveUpdatesOff(ClientError):
    """``RUNQL_LIVE_UPDATES=off``: this server writes no event log."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self) -> None:
        super().__init__(
            "live updates are turned off on this server (RUNQL_LIVE_UPDATES=false): "
            "list with queries instead",
            setting="RUNQL_LIVE_UPDATES",
        )


def _listener(ctx: Context) -> EventListener:
    if not ctx.settings.live_updates:
        raise LiveUpdatesOff()
    if ctx.events is None or not ctx.events.running:
        raise ListenerDown()
    return ctx.events


@contextlib.contextmanager
def _subscription_slot(ctx: Context) -> Iterator[None]:
    """Counts the subscription in the metrics while it runs. (Its place among its
    socket's subscriptions, ``RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION``, was taken when
    its message arrived: ``runql.resolvers.context.SocketState``.)"""
    app_metrics = metrics.current()
    if app_metrics is not None:
        app_metrics.subscription_opened()
    try:
        yield
    finally:
        if app_metrics is not None:
            app_metrics.subscription_closed()


def _delivered(items: list[RunEventItem]) -> list[RunEventItem]:
    """``items``, counted as delivered in the metrics."""
    app_metrics = metrics.current()
    if app_metrics is not None and items:
        app_metrics.delivered(len(items))
    return items


async def _shown(ctx: Context, events: list[EventRow]) -> list[RunEventItem]:
    """The events with their current run and job, only those the viewer may see now.
    Two statements for the whole batch; nested fields then read through the loaders,
    which the batch's rows are primed into."""
    if not events:
        return []
    ctx.forget_loaded()
    run_ids = sorted({e.run_id for e in events})
    job_ids = sorted({e.job_id for e in events if e.job_id is not None})
    async with ctx.db.read() as session:
        runs = await live_queries.event_runs(session, ctx.viewer, run_ids)
        jobs = await live_queries.event_jobs(session, ctx.viewer, job_ids) if runs else {}
    for run in runs.values():
        ctx.loaders.run_by_id.prime(run.id, run)
    for job in jobs.values():
        ctx.loaders.job_by_id.prime(job.id, job)
    return [
        RunEventItem(
            cursor=encode_event_cursor(ctx, e.position),
            kind=e.kind,
            at=e.at,
            run=runs[e.run_id],
            job=jobs.get(e.job_id) if e.job_id is not None else None,
        )
        for e in events
        if e.run_id in runs and (e.job_id is None or e.job_id in jobs)
    ]


@dataclass(frozen=True)
class _BatchState:
    """A listener batch's runs and jobs as they are now, for every subscriber."""

    runs: dict[int, Run]
    jobs: dict[int, Job]


@dataclass(frozen=True)
class _BatchMembers:
    """Which projects of a listener batch each subscribed user is a member of now."""

    user_ids: frozenset[int]
    projects_of: dict[int, set[int]]


async def _batch_state(ctx: Context, batch: SharedBatch) -> _BatchState:
    run_ids = sorted({e.run_id for e in batch.events})
    job_ids = sorted({e.job_id for e in batch.events if e.job_id is not None})
    async with ctx.db.read() as session:
        runs = await live_queries.event_runs(session, SYSTEM_VIEWER, run_ids)
        jobs = await live_queries.event_jobs(session, SYSTEM_VIEWER, job_ids)
    return _BatchState(runs, jobs)


async def _batch_members(
    ctx: Context, listener: EventListener, batch: SharedBatch
) -> _BatchMembers:
    user_ids = frozenset(s.user_id for s in listener.subscribers if s.user_id is not None)
    project_ids = {e.project_id for e in batch.events}
    async with ctx.db.read() as session:
        pairs = await live_queries.memberships(session, user_ids, project_ids)
    projects_of: dict[int, set[int]] = {}
    for user_id, project_id in pairs:
        projects_of.setdefault(user_id, set()).add(project_id)
    return _BatchMembers(user_ids, projects_of)


async def _visible_in(ctx: Context, listener: EventListener, batch: SharedBatch) -> set[int] | None:
    """The projects of ``batch`` the viewer may see now (``None``: all, an admin)."""
    viewer = ctx.viewer
    if viewer.is_admin:
        return None
    members = await batch.once("members", functools.partial(_batch_members, ctx, listener, batch))
    if viewer.user_id in members.user_ids:
        return members.projects_of.get(viewer.user_id, set())
    # Subscribed after the batch's memberships were read: its own read.
    async with ctx.db.read() as session:
        pairs = await live_queries.memberships(
            session, [viewer.user_id], {e.project_id for e in batch.events}
        )
    return {project_id for _, project_id in pairs}


async def _shown_live(
    ctx: Context, listener: EventListener, queued: list[Queued]
) -> list[RunEventItem]:
    """:func:`_shown` for events the listener queued: the reads are shared with every
    subscription that got the same listener batch."""
    ctx.forget_loaded()
    items: list[RunEventItem] = []
    state: _BatchState | None = None
    visible: set[int] | None = None
    current: SharedBatch | None = None
    for entry in queued:
        event, batch = entry.event, entry.batch
        if batch is not current:
            current = batch
            state = await batch.once("state", functools.partial(_batch_state, ctx, batch))
            visible = await _visible_in(ctx, listener, batch)
        assert state is not None
        run = state.runs.get(event.run_id)
        if run is None or (visible is not None and run.project_id not in visible):
            continue
        job = None
        if event.job_id is not None:
            job = state.jobs.get(event.job_id)
            if job is None:
                continue
            ctx.loaders.job_by_id.prime(job.id, job)
        ctx.loaders.run_by_id.prime(run.id, run)
        items.append(
            RunEventItem(
                cursor=encode_event_cursor(ctx, event.position),
                kind=event.kind,
                at=event.at,
                run=run,
                job=job,
            )
        )
    return items


class NotOverWebSocket(ClientError):
    """A subscription sent over HTTP (``runql.schema.extensions.transport`` refuses it)."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self) -> None:
        super().__init__(
            "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql, "
            "not over HTTP"
        )


async def run_events(
    ctx: Context, *, project: str | None, run_ids: Sequence[str] | None, after: str | None
) -> AsyncIterator[RunEventItem]:
    """The subscription: replay after ``after`` (or start now), then live."""
    viewer = ctx.viewer
    start = decode_event_cursor(ctx, after, "after") if after is not None else None
    project_ids = await _project_ids(ctx, project)
    wanted_runs = _run_ids(ctx, run_ids)
    listener = _listener(ctx)
    with _subscription_slot(ctx):
        subscriber = await listener.subscribe(
            project_ids=project_ids,
            run_ids=wanted_runs,
            max_backlog=ctx.settings.max_event_backlog,
            user_id=None if viewer.is_admin else viewer.user_id,
        )
        try:
            async with ctx.db.read() as session:
                if start is None:
                    last = await event_log.safe_position(session)
                else:
                    await check_resumable(session, start)
                    last = start
            while last < subscriber.start:  # replay what the listener read before us
                async with ctx.db.read() as session:
                    events = await event_log.read_events(
                        session,
                        viewer,
                        after=last,
                        project_ids=project_ids,
                        run_ids=wanted_runs,
                        limit=REPLAY_BATCH,
                    )
                    await check_not_pruned(session, last)  # after the read: see docs
                if subscriber.overflowed:
                    # Live events piled up while a long replay was sent: drop the queue
                    # and register again; the replay now runs up to the new start.
                    listener.unsubscribe(subscriber)
                    subscriber = await listener.subscribe(
                        project_ids=project_ids,
                        run_ids=wanted_runs,
                        max_backlog=ctx.settings.max_event_backlog,
                        user_id=None if viewer.is_admin else viewer.user_id,
                    )
                mine = [e for e in events if e.position <= subscriber.start]
                if mine:
                    last = mine[-1].position
                    for item in _delivered(await _shown(ctx, mine)):
                        yield item
                if len(mine) < REPLAY_BATCH:
                    break
            while True:
                await subscriber.wait()
                if subscriber.overflowed:
                    raise _backlog_exceeded(ctx)
                if not listener.running:
                    raise ListenerDown()
                queued = [q for q in subscriber.take() if q.event.position > last]
                if not queued:
                    continue
                last = queued[-1].event.position
                for item in _delivered(await _shown_live(ctx, listener, queued)):
                    yield item
        finally:
            listener.unsubscribe(subscriber)


def _backlog_exceeded(ctx: Context) -> SettingExceeded:
    limit = ctx.settings.max_event_backlog
    return SettingExceeded(
        f"this subscription fell more than {limit} events behind (the client reads too "
        "slowly); subscribe again with the last cursor received",
        BACKLOG_SETTING,
        limit,
    )


# --- jobsReady ---------------------------------------------------------------------------


async def jobs_ready(ctx: Context, *, project: str | None) -> AsyncIterator[JobsReadyItem]:
    """A wake-up for idle runners: at once when jobs are ready, then whenever an event
    may have made jobs claimable in a project the viewer sees (coalesced: events that
    arrive while one wake-up is being sent make one more, not one each)."""
    viewer = ctx.viewer
    project_ids = await _project_ids(ctx, project)
    project_id = project_ids[0] if project_ids else None
    listener = _listener(ctx)
    with _subscription_slot(ctx):
        subscriber = await listener.subscribe(
            project_ids=project_ids,
            run_ids=None,
            max_backlog=ctx.settings.max_event_backlog,
            coalesce=True,
            kinds=READY_KINDS,
        )
        try:
            touched: set[int] | None = None  # None: every project (the first signal)
            loop = asyncio.get_running_loop()
            signalled_at = -JOBS_READY_SPACING
            while True:
                async with ctx.db.read() as session:
                    total, in_touched = await live_queries.ready_job_counts(
                        session, viewer, project_id=project_id, touched_project_ids=touched
                    )
                if in_touched:
                    signalled_at = loop.time()
                    yield JobsReadyItem(ready=total)
                await subscriber.wait()
                if not listener.running:
                    raise ListenerDown()
                # Events go on arriving while runners are busy (every completion unblocks
                # or finishes something): one count per spacing, not one per commit.
                await asyncio.sleep(max(0.0, signalled_at + JOBS_READY_SPACING - loop.time()))
                touched = subscriber.take_touched()
        finally:
            listener.unsubscribe(subscriber)


__all__ = [
    "JobsReadyItem",
    "RunEventItem",
    "Subscriber",
    "jobs_ready",
    "run_events",
]
