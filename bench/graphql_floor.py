"""Scenario 2b: the GraphQL floor of the runs page (no database).

The runs page's document is executed through the same schema (``build_schema(settings)``:
the same extensions, ParserCache and ValidationCache included) with a real ``Context``
and real ``Loaders`` (DataLoader batching and all), but every database read answers from
memory: one real execution records what each query function the page reaches returned
(the ``runs`` page with its joined users and projects, the latest submissions, the latest
terminated submissions), and the measured executions get those very objects back, keyed
by the same arguments, from a ``Database`` stand-in whose sessions never touch a driver.
No token lookup either (the viewer is resolved once). The answer is serialised to JSON as
the HTTP view would. What is left is GraphQL's own cost for this document: parse and
validation cache hits, execution, resolvers, loaders and serialisation.

runql's latency is then reported against the sum of its two floors:
``runql / (raw SQL floor + GraphQL floor)``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.runs_page import RUNS_PAGE, WrongAnswer, check_page
from bench.seed import Seeded
from bench.timing import measure
from runql.db import accounts as account_queries
from runql.db import jobs as job_queries
from runql.db import runs as run_queries
from runql.db.visibility import Viewer
from runql.resolvers.auth import authenticate
from runql.resolvers.context import Context
from runql.schema import build_schema

SCENARIO = "2b GraphQL floor"

#: The query functions a read page can reach (module, attribute). Any other database
#: access in a floor execution fails loudly: the stand-in session has no methods.
QUERY_FUNCTIONS: tuple[tuple[Any, str], ...] = (
    (run_queries, "runs_page"),
    (run_queries, "runs_by_ids"),
    (job_queries, "latest_submissions"),
    (job_queries, "latest_terminated"),
    (job_queries, "job_counts"),
    (account_queries, "users_by_ids"),
    (account_queries, "projects_by_ids"),
    (account_queries, "member_roles"),
)

Recorded = dict[tuple[str, str], Any]


def _key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """The call's arguments without the session (``args[0]``)."""
    return name, repr((args[1:], sorted(kwargs.items())))


@contextlib.contextmanager
def _patched(wrap: Callable[[str, Callable[..., Awaitable[Any]]], Any]) -> Iterator[None]:
    originals = [(module, name, getattr(module, name)) for module, name in QUERY_FUNCTIONS]
    try:
        for module, name, original in originals:
            setattr(module, name, wrap(f"{module.__name__}.{name}", original))
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


@contextlib.contextmanager
def recording(recorded: Recorded) -> Iterator[None]:
    """Run the real queries and keep what each returned."""

    def wrap(name: str, original: Callable[..., Awaitable[Any]]) -> Any:
        async def record(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            recorded[_key(name, args, kwargs)] = result
            return result

        return record

    with _patched(wrap):
        yield


@contextlib.contextmanager
def from_memory(recorded: Recorded) -> Iterator[None]:
    """Answer every query function from ``recorded``; an unrecorded call is an error."""

    def wrap(name: str, original: Callable[..., Awaitable[Any]]) -> Any:
        async def replay(*args: Any, **kwargs: Any) -> Any:
            try:
                return recorded[_key(name, args, kwargs)]
            except KeyError:
                raise WrongAnswer(f"GraphQL floor: {name} called with unrecorded args") from None

        return replay

    with _patched(wrap):
        yield


class MemoryDatabase:
    """What loaders and resolvers see as ``ctx.db``: sessions that are never used (the
    query functions they are handed to answer from memory)."""

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        yield object()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        raise WrongAnswer("GraphQL floor: the runs page must not write")
        yield  # pragma: no cover


def _context(env: BenchEnv, db: Any, viewer: Viewer) -> Context:
    return Context(db=db, settings=env.settings, viewer_or_none=viewer, request_id="bench")


async def measure_graphql_floor(
    env: BenchEnv, seeded: Seeded, config: Config, report: Report
) -> None:
    depth = seeded.depth
    schema = build_schema(env.settings)
    viewer = await authenticate(env.db, f"Bearer {seeded.member.token}")
    assert viewer is not None, "the bench member's token authenticates"
    recorded: Recorded = {}
    with recording(recorded):
        result = await schema.execute(RUNS_PAGE, context_value=_context(env, env.db, viewer))
    if result.errors:
        raise WrongAnswer(f"GraphQL floor: recording failed: {result.errors}")
    memory = MemoryDatabase()

    async def execute() -> str:
        result = await schema.execute(RUNS_PAGE, context_value=_context(env, memory, viewer))
        if result.errors:
            raise WrongAnswer(f"GraphQL floor: {result.errors}")
        return json.dumps({"data": result.data})

    with from_memory(recorded):
        timing = await measure(execute, repeats=config.repeats, warmup=config.warmup)
    data = json.loads(timing.result)["data"]
    check_page([edge["node"] for edge in data["runs"]["edges"]], seeded)
    report.timing(
        env.backend, SCENARIO, f"in memory D={depth}", timing, key=f"graphql_floor.d{depth}"
    )
    runql = report.median(env.backend, f"runs_page.d{depth}")
    sql = report.median(env.backend, f"raw_floor.d{depth}")
    graphql = timing.median_ms
    ratio = None if runql is None or sql is None else runql / (sql + graphql)
    report.figure(env.backend, f"graphql_floor.runql_over_floors_d{depth}", ratio, "x")
