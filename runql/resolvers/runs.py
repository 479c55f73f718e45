"""Resolvers of the runs read path: the runs list, one run, and a run's nested fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runql.db import jobs as job_queries
from runql.db import runs as run_queries
from runql.db.enums import JobStatus
from runql.db.jobs import JobRow
from runql.db.models import Project, Run, User
from runql.db.runs import RunFilter, RunKey
from runql.resolvers.checks import check_text, check_time, parse_id
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, LimitExceeded
from runql.resolvers.loaders import MISSING, LatestJobsKey
from runql.resolvers.pagination import (
    Page,
    WatchedPage,
    decode_cursor,
    encode_cursor,
    list_event_cursor,
    page_size,
)
from runql.resolvers.status_message import needs_latest_terminated, run_status_message

CURSOR_KIND = "runs"
DEFAULT_PAGE_SIZE = 20
MAX_SUBMISSIONS_LIMIT = 100
#: ``Run.jobs``' default, and what ``statusMessage`` is derived from.
LATEST_ONLY: tuple[int, tuple[JobStatus, ...]] = (1, ())


@dataclass(frozen=True)
class PageNeeds:
    """What the rows of a runs page will ask for, read ahead from the query's selection.

    The runs resolver loads it with the page, in the page's session, and primes the
    loaders, so each row's ``jobs`` and ``statusMessage`` resolve from memory without a
    coroutine per row. A hint only: a row that asks for something not listed here
    (or when the look-ahead could not tell) loads it through its loader as before.
    """

    #: ``(submissions_limit, statuses)`` of each distinct ``jobs`` selection.
    latest_jobs: frozenset[tuple[int, tuple[JobStatus, ...]]] = field(default_factory=frozenset)
    status_message: bool = False

    @property
    def latest_job_keys(self) -> frozenset[tuple[int, tuple[JobStatus, ...]]]:
        """Every latest-submissions shape to load: ``statusMessage`` needs the latest one."""
        return self.latest_jobs | {LATEST_ONLY} if self.status_message else self.latest_jobs


def jobs_key(
    submissions_limit: int, statuses: Iterable[JobStatus] | None
) -> tuple[int, tuple[JobStatus, ...]]:
    """The loader's key shape for a ``jobs`` selection (statuses deduplicated, sorted)."""
    return submissions_limit, tuple(sorted(set(statuses or ())))


def _cursor(ctx: Context, run: Run) -> str:
    return encode_cursor(
        ctx.settings.secret_key, CURSOR_KIND, [run.submitted_at.isoformat(), run.id]
    )


def _position(ctx: Context, cursor: str, argument: str) -> RunKey:
    value = decode_cursor(ctx.settings.secret_key, CURSOR_KIND, cursor, argument=argument)
    try:
        submitted_at, run_id = value
        return dt.datetime.fromisoformat(submitted_at), int(run_id)
    except (TypeError, ValueError):
        raise BadInput(argument, "not a valid cursor") from None


async def runs(
    ctx: Context,
    *,
    project: str | None,
    filter: RunFilter | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    needs: PageNeeds | None = None,
    event_cursor: bool = False,
) -> WatchedPage[Run]:
    limit, backwards = page_size(
        first, last, maximum=ctx.settings.max_page_size, default=DEFAULT_PAGE_SIZE
    )
    if project is not None:
        check_text(project, "project")
    filter = _checked(filter or RunFilter())
    after_key = _position(ctx, after, "after") if after is not None else None
    before_key = _position(ctx, before, "before") if before is not None else None
    async with ctx.db.read() as session:
        # Before the page (list-then-watch: no change between the two is missed).
        watch_from = await list_event_cursor(ctx, session) if event_cursor else ""
        page = await run_queries.runs_page(
            session,
            ctx.viewer,
            project_name=project,
            filter=filter,
            limit=limit,
            after=after_key,
            before=before_key,
            backwards=backwards,
        )
        if needs is not None and page.runs:
            await _prime_nested(ctx, session, page.runs, needs)
    for user in page.users.values():
        ctx.loaders.user_by_id.prime(user.id, user)
    for project_row in page.projects.values():
        ctx.loaders.project_by_id.prime(project_row.id, project_row)
    if backwards:
        has_next, has_previous = before is not None, page.has_more
    else:
        has_next, has_previous = page.has_more, after is not None
    return WatchedPage.of(
        Page.build(
            page.runs,
            lambda run: _cursor(ctx, run),
            has_next_page=has_next,
            has_previous_page=has_previous,
        ),
        watch_from,
    )


async def _prime_nested(ctx: Context, session: Any, runs: list[Run], needs: PageNeeds) -> None:
    """Load what the page's rows will ask for (``needs``) in the page's session, one
    statement per kind as the loaders would, and prime the loaders with it."""
    run_ids = [run.id for run in runs]
    latest = ctx.loaders.latest_jobs_by_run
    for limit, statuses in sorted(needs.latest_job_keys):
        if not 1 <= limit <= MAX_SUBMISSIONS_LIMIT:
            continue  # the field itself answers the error
        rows = await job_queries.latest_submissions(
            session, limit=limit, run_ids=run_ids, statuses=statuses
        )
        for run_id, jobs in _by_run(run_ids, rows).items():
            latest.prime((run_id, limit, statuses), jobs)
    if not needs.status_message:
        return
    waiting = [
        run.id
        for run in runs
        if needs_latest_terminated(run, latest.cached((run.id, *LATEST_ONLY)))
    ]
    if waiting:
        rows = await job_queries.latest_terminated(session, waiting)
        for run_id, jobs in _by_run(waiting, rows).items():
            ctx.loaders.latest_terminated_by_run.prime(run_id, jobs)


def _by_run(run_ids: list[int], rows: list[JobRow]) -> dict[int, list[JobRow]]:
    """``rows`` grouped per run, every run of ``run_ids`` present (maybe empty)."""
    grouped: dict[int, list[JobRow]] = defaultdict(list)
    for row in rows:
        grouped[row.run_id].append(row)
    return {run_id: grouped.get(run_id, []) for run_id in run_ids}


def _checked(filter: RunFilter) -> RunFilter:
    """The filter with its texts checked and its times in UTC."""
    for name, value in (("userName", filter.user_name), ("nameContains", filter.name_contains)):
        if value is not None:
            check_text(value, f"filter.{name}")
    return dataclasses.replace(
        filter,
        submitted_after=check_time(filter.submitted_after, "filter.submittedAfter"),
        submitted_before=check_time(filter.submitted_before, "filter.submittedBefore"),
    )


async def run_by_id(ctx: Context, run_id: str) -> Run | None:
    parsed = parse_id(run_id, "id")
    return None if parsed is None else await ctx.loaders.run_by_id.load(parsed)


async def run_project(ctx: Context, run: Run) -> Project:
    project = await ctx.loaders.project_by_id.load(run.project_id)
    assert project is not None, "a visible run's project is visible"
    return project


def run_user(ctx: Context, run: Run) -> User | Awaitable[User]:
    """The run's user: from memory on a runs page (primed with the page), else loaded.
    Runs reference existing users (a foreign key), so the value is never None."""
    user: User | Awaitable[User] = ctx.loaders.user_by_id.value_or_future(run.user_id)
    return user


def run_jobs(
    ctx: Context, run: Run, submissions_limit: int, statuses: list[JobStatus] | None
) -> list[JobRow] | Awaitable[list[JobRow]]:
    """From memory when the runs page primed this shape (``PageNeeds``), else loaded."""
    if submissions_limit < 1:
        raise BadInput("submissionsLimit", "must be at least 1")
    if submissions_limit > MAX_SUBMISSIONS_LIMIT:
        raise LimitExceeded("submissionsLimit", MAX_SUBMISSIONS_LIMIT, submissions_limit)
    key: LatestJobsKey = (run.id, *jobs_key(submissions_limit, statuses))
    jobs: list[JobRow] | Awaitable[list[JobRow]] = ctx.loaders.latest_jobs_by_run.value_or_future(
        key
    )
    return jobs


def run_status_message_of(ctx: Context, run: Run) -> str | Awaitable[str]:
    """Computed at once when the runs page primed what it needs, else after loading it."""
    latest = ctx.loaders.latest_jobs_by_run.cached((run.id, *LATEST_ONLY))
    if latest is not MISSING:
        if not needs_latest_terminated(run, latest):
            return run_status_message(run, latest)
        terminated = ctx.loaders.latest_terminated_by_run.cached(run.id)
        if terminated is not MISSING:
            return run_status_message(run, latest, terminated)
    return _loaded_status_message(ctx, run)


async def _loaded_status_message(ctx: Context, run: Run) -> str:
    latest = await ctx.loaders.latest_jobs_by_run.load((run.id, *LATEST_ONLY))
    if not needs_latest_terminated(run, latest):
        return run_status_message(run, latest)
    terminated = await ctx.loaders.latest_terminated_by_run.load(run.id)
    return run_status_message(run, latest, terminated)


@dataclass(frozen=True)
class JobCounts:
    """Logical jobs of a run per status of their latest submission, and all of them
    (:meth:`of` counts the total). Also the schema's ``JobCounts`` type."""

    blocked: int = 0
    submitted: int = 0
    running: int = 0
    terminating: int = 0
    terminated: int = 0
    aborted: int = 0
    failed: int = 0
    done: int = 0
    total: int = 0

    @classmethod
    def of(cls, counts: Mapping[JobStatus, int]) -> JobCounts:
        by_status = {status.value.lower(): n for status, n in counts.items()}
        return cls(**by_status, total=sum(counts.values()))


async def run_job_counts(ctx: Context, run: Run) -> JobCounts:
    counts: dict[JobStatus, int] = await ctx.loaders.job_counts_by_run.load(run.id)
    return JobCounts.of(counts)


async def run_column(ctx: Context, run: Run, column: str) -> Any:
    return await ctx.loaders.run_column_by_id.load((run.id, column))
