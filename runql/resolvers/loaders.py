"""Per-request batch loaders (aiodataloader), named ``<Entity>By<Key>Loader``.

Every resolver that touches the database goes through one of these, so a page of 100 runs
costs one statement per kind of data, never one per run. Each batch opens its own short
read session: sibling fields resolve concurrently and must not share a session.
Loaders are built per request (they bind the running event loop and cache per viewer).

A value already in a loader's cache (primed by the resolver that read a page, or loaded
earlier in the request) is handed out synchronously by :meth:`_DbLoader.value_or_future`:
a page of 50 runs then resolves ``user``, ``statusMessage`` and ``jobs`` without a
coroutine and a future per row, which is most of what GraphQL execution costs on a page.
Only the request body bounds a batch's length (``_entities``, big runs), so the queries
bind each batch as one list parameter, never one parameter per key (``runql.db.key_lists``).
"""

from __future__ import annotations

import functools
from asyncio import Future
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import accounts as account_queries
from runql.db import jobs as job_queries
from runql.db import runs as run_queries
from runql.db.engine import Database
from runql.db.enums import JobStatus, MemberRole
from runql.db.jobs import JobRow
from runql.db.models import Job, Project, Run, User
from runql.db.types import as_object
from runql.db.visibility import Viewer

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


#: What :meth:`_DbLoader.cached` answers for a key the loader does not hold yet.
MISSING: Any = object()


class _DbLoader(DataLoader):
    def __init__(self, db: Database, viewer: Viewer) -> None:
        self._futures: dict[Any, Future[Any]] = {}
        super().__init__(cache_map=self._futures)
        self.db = db
        self.viewer = viewer

    def cached(self, key: Any) -> Any:
        """The value loaded (or primed) for ``key``, or :data:`MISSING`; never loads."""
        future = self._futures.get(key)
        if future is None or not future.done() or future.cancelled():
            return MISSING
        if future.exception() is not None:
            return MISSING
        return future.result()

    def value_or_future(self, key: Any) -> Any:
        """The value itself when it is already loaded, else the future of its load.

        GraphQL resolvers return this as it is: graphql-core completes a plain value at
        once and awaits only a future."""
        value = self.cached(key)
        return self.load(key) if value is MISSING else value


async def _grouped(
    keys: Sequence[K],
    group: Callable[[K], G],
    fetch: Callable[[G, list[K]], Awaitable[dict[K, Any]]],
    default: Callable[[], Any],
) -> list[Any]:
    """Run ``fetch`` once per distinct group of keys (e.g. per limit), answer in key order."""
    groups: dict[G, list[K]] = defaultdict(list)
    for key in keys:
        groups[group(key)].append(key)
    found: dict[K, Any] = {}
    for group_key, members in groups.items():
        found.update(await fetch(group_key, members))
    return [found.get(key, default()) for key in keys]


class _ByKeyLoader(_DbLoader, Generic[K, V]):
    """One value per key from one batched query; keys it does not answer load as None.

    ``query(session, viewer, keys)`` answers a dict, in which the rows the viewer may not
    see (and unknown keys) are simply absent."""

    query: Callable[[AsyncSession, Viewer, Sequence[K]], Awaitable[dict[K, V]]]

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V | None]:
        async with self.db.read() as session:
            found = await self.query(session, self.viewer, keys)
        return [found.get(key) for key in keys]


def _without_viewer(
    query: Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, V]]],
) -> Callable[[AsyncSession, Viewer, Sequence[K]], Awaitable[dict[K, V]]]:
    """``query`` as a ``_ByKeyLoader.query`` for rows already reached through visible ones."""

    async def query_for(session: AsyncSession, _: Viewer, keys: Sequence[K]) -> dict[K, V]:
        return await query(session, keys)

    return query_for


class UserByIdLoader(_ByKeyLoader[int, User]):
    """Users reached through a visible run (``Run.user``, ``me``)."""

    query = staticmethod(_without_viewer(account_queries.users_by_ids))


class VisibleUserByIdLoader(_ByKeyLoader[int, User]):
    """Users by id, filtered by who the viewer may see (federation entity lookups)."""

    query = staticmethod(account_queries.visible_users_by_ids)


class ProjectByIdLoader(_ByKeyLoader[int, Project]):
    query = staticmethod(account_queries.projects_by_ids)


class ProjectByNameLoader(_ByKeyLoader[str, Project]):
    query = staticmethod(account_queries.projects_by_names)


class RunByIdLoader(_ByKeyLoader[int, Run]):
    query = staticmethod(run_queries.runs_by_ids)


class JobByIdLoader(_ByKeyLoader[int, Job]):
    query = staticmethod(job_queries.jobs_by_ids)


class ViewerRoleByProjectLoader(_ByKeyLoader[int, MemberRole]):
    """The viewer's role in each project (None where not a member): one statement for a
    whole page of runs, e.g. for ``Run.viewerCanStop``."""

    query = staticmethod(account_queries.member_roles)


#: ``(run_id, submissions_limit, statuses)``
LatestJobsKey = tuple[int, int, tuple[JobStatus, ...]]


class LatestJobsByRunLoader(_DbLoader):
    """The latest N submissions of each logical job of a run (for visible runs only:
    callers pass ids of runs they already resolved)."""

    async def batch_load_fn(self, keys: Sequence[LatestJobsKey]) -> list[list[JobRow]]:
        async def fetch(
            group: tuple[int, tuple[JobStatus, ...]], members: list[LatestJobsKey]
        ) -> dict[LatestJobsKey, list[JobRow]]:
            limit, statuses = group
            async with self.db.read() as session:
                rows = await job_queries.latest_submissions(
                    session, limit=limit, run_ids=[k[0] for k in members], statuses=statuses
                )
            by_run: dict[int, list[JobRow]] = defaultdict(list)
            for job in rows:
                by_run[job.run_id].append(job)
            return {key: by_run.get(key[0], []) for key in members}

        return await _grouped(keys, lambda k: (k[1], k[2]), fetch, list)


class LatestTerminatedByRunLoader(_DbLoader):
    """Per run, the newest terminated submission of each logical job (status messages)."""

    async def batch_load_fn(self, run_ids: Sequence[int]) -> list[list[JobRow]]:
        async with self.db.read() as session:
            rows = await job_queries.latest_terminated(session, run_ids)
        by_run: dict[int, list[JobRow]] = defaultdict(list)
        for job in rows:
            by_run[job.run_id].append(job)
        return [by_run.get(run_id, []) for run_id in run_ids]


class JobCountsByRunLoader(_DbLoader):
    async def batch_load_fn(self, run_ids: Sequence[int]) -> list[dict[JobStatus, int]]:
        async with self.db.read() as session:
            counts = await job_queries.job_counts(session, run_ids)
        return [counts.get(run_id, {}) for run_id in run_ids]


class UpstreamNamesByRunLoader(_DbLoader):
    """Per run, ``job_num`` -> the names of the jobs it waits for (``Job.dependsOn``);
    reached only through visible jobs, so it reads no visibility itself."""

    async def batch_load_fn(self, run_ids: Sequence[int]) -> list[dict[int, list[str]]]:
        async with self.db.read() as session:
            upstream = await job_queries.upstream_names(session, run_ids)
        return [dict(upstream.get(run_id, {})) for run_id in run_ids]


#: ``(run_id, replica_num, job_num, first)``
SubmissionsKey = tuple[int, int, int, int]


class SubmissionsByLogicalJobLoader(_DbLoader):
    """One logical job's history, newest first, for ``Job.submissions(first)``.

    A page of 100 runs of up to 5,000 jobs batches 500,000 keys into one call: the query
    takes them as a joined list of fixed parameter count (``runql.db.key_lists``)."""

    async def batch_load_fn(self, keys: Sequence[SubmissionsKey]) -> list[list[JobRow]]:
        async def fetch(first: int, members: list[SubmissionsKey]) -> dict[SubmissionsKey, Any]:
            async with self.db.read() as session:
                rows = await job_queries.latest_submissions(
                    session, limit=first, keys=[k[:3] for k in members]
                )
            by_key: dict[tuple[int, int, int], list[JobRow]] = defaultdict(list)
            for job in rows:
                by_key[(job.run_id, job.replica_num, job.job_num)].append(job)
            return {key: by_key.get(key[:3], []) for key in members}

        return await _grouped(keys, lambda k: k[3], fetch, list)


class _ColumnLoader(_DbLoader):
    """Heavy JSON columns, selected only when a query asks for the field.

    Keys are ``(id, column)``; one statement reads every requested column of every
    requested row. Values always come back as JSON objects.
    """

    fetch_columns: Callable[..., Awaitable[dict[int, dict[str, Any]]]]
    nullable: frozenset[str] = frozenset()

    async def batch_load_fn(self, keys: Sequence[tuple[int, str]]) -> list[Any]:
        ids = list(dict.fromkeys(k[0] for k in keys))
        columns = sorted({k[1] for k in keys})
        async with self.db.read() as session:
            rows = await type(self).fetch_columns(session, ids, columns)
        result = []
        for row_id, column in keys:
            value = rows.get(row_id, {}).get(column)
            result.append(None if value is None and column in self.nullable else as_object(value))
        return result


class RunColumnByIdLoader(_ColumnLoader):
    fetch_columns = staticmethod(run_queries.run_columns)
    nullable = frozenset({"summary", "system_metrics"})


class JobColumnByIdLoader(_ColumnLoader):
    fetch_columns = staticmethod(job_queries.job_columns)
    nullable = frozenset({"result"})


class Loaders:
    """All loaders of one request, each made on first use: a request uses two or three of
    them, and a subscription makes a fresh set per batch of events it sends."""

    def __init__(self, db: Database, viewer: Viewer) -> None:
        self._db = db
        self._viewer = viewer

    @functools.cached_property
    def user_by_id(self) -> UserByIdLoader:
        return UserByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def visible_user_by_id(self) -> VisibleUserByIdLoader:
        return VisibleUserByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def project_by_id(self) -> ProjectByIdLoader:
        return ProjectByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def project_by_name(self) -> ProjectByNameLoader:
        return ProjectByNameLoader(self._db, self._viewer)

    @functools.cached_property
    def run_by_id(self) -> RunByIdLoader:
        return RunByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def job_by_id(self) -> JobByIdLoader:
        return JobByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def latest_jobs_by_run(self) -> LatestJobsByRunLoader:
        return LatestJobsByRunLoader(self._db, self._viewer)

    @functools.cached_property
    def latest_terminated_by_run(self) -> LatestTerminatedByRunLoader:
        return LatestTerminatedByRunLoader(self._db, self._viewer)

    @functools.cached_property
    def job_counts_by_run(self) -> JobCountsByRunLoader:
        return JobCountsByRunLoader(self._db, self._viewer)

    @functools.cached_property
    def upstream_names_by_run(self) -> UpstreamNamesByRunLoader:
        return UpstreamNamesByRunLoader(self._db, self._viewer)

    @functools.cached_property
    def submissions_by_logical_job(self) -> SubmissionsByLogicalJobLoader:
        return SubmissionsByLogicalJobLoader(self._db, self._viewer)

    @functools.cached_property
    def run_column_by_id(self) -> RunColumnByIdLoader:
        return RunColumnByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def job_column_by_id(self) -> JobColumnByIdLoader:
        return JobColumnByIdLoader(self._db, self._viewer)

    @functools.cached_property
    def viewer_role_by_project(self) -> ViewerRoleByProjectLoader:
        return ViewerRoleByProjectLoader(self._db, self._viewer)
