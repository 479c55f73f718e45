"""Prometheus metrics: every series runql exports, declared once, and the helpers that
record them.

One :class:`Metrics` per app (``create_app`` builds it unless ``RUNQL_METRICS=off``), with
its own registry, so an app built in a test starts from zero. The places that count:

* the HTTP view binds the app's metrics for the request (:func:`bind`); the request's log
  line (``runql.observe.logs.request_scope``) records the request, its latency, its SQL
  statements and its error codes (:meth:`Metrics.observe_request`);
* the runner resolvers report their per-item answers through :func:`observe` (one call
  per batch: items are tallied in Python, then one ``inc(n)`` per outcome);
* the lease sweeper reports each sweep (:meth:`Metrics.sweep_succeeded` /
  :meth:`Metrics.sweep_failed`);
* SQLAlchemy's pool events keep the pool gauges (:meth:`Metrics.watch_pool`);
* live updates: the subscription resolvers call :meth:`Metrics.subscription_opened`,
  :meth:`Metrics.subscription_closed` and :meth:`Metrics.delivered`; the event listener
  :meth:`Metrics.listener_up`, :meth:`Metrics.listener_down` and
  :meth:`Metrics.listener_reconnected`.

Label values are bounded: operation names pass :class:`OperationNames` (a GraphQL name of
at most ``MAX_OPERATION_NAME_LENGTH`` characters, among the first ``MAX_OPERATION_NAMES``
distinct ones a process saw; anything else is ``(other)``), error codes are
:class:`~runql.error_codes.ErrorCode` members, outcomes are fixed words.

With ``runql serve --workers N`` every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when
prometheus_client is first imported) and a scrape of any worker adds them all up
(:func:`render`). Gauges say how: ``livesum`` for what every live worker holds (pool
connections, open subscriptions), ``livemax`` for the last successful sweep of any live
worker. ``runql serve`` prepares the directory (:func:`multiprocess_directory`).

docs/operations.md lists every series; a test keeps it complete.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import shutil
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runql.error_codes import ErrorCode

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Distinct operation names a process labels series with; later ones are ``(other)``.
MAX_OPERATION_NAMES = 100
MAX_OPERATION_NAME_LENGTH = 64
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
OTHER = "(other)"  # parentheses: no GraphQL name can collide with these
ANONYMOUS = "(anonymous)"
NONE = "(none)"
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATEMENT_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128)

#: Outcomes of a runner item (``outcome`` label); refusals also carry their ``code``.
APPLIED, DUPLICATE, STALE, REFUSED = "applied", "duplicate", "stale", "refused"


class OperationNames:
    """Turns a client-chosen operation name into a bounded label value."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None, operation_type: str | None) -> str:
        if not name:
            return ANONYMOUS if operation_type else NONE
        if name in self._seen:
            return name
        if (
            len(name) > MAX_OPERATION_NAME_LENGTH
            or len(self._seen) >= self.limit
            or not _GRAPHQL_NAME.fullmatch(name)
        ):
            return OTHER
        self._seen.add(name)
        return name


class RequestFacts(Protocol):
    """What the request's log line knows (``runql.observe.logs.RequestLog``)."""

    operation_name: str | None
    operation_type: str | None
    status: int
    error_codes: list[str]


class ItemAnswer(Protocol):
    """A per-item answer of ``renewLeases``/``completeJobs``
    (``runql.resolvers.runner.JobAnswer``)."""

    @property
    def error(self) -> Any: ...  # ItemError | None: ``.code``

    @property
    def repeated(self) -> bool: ...


class Metrics:
    """Every series of one app. ``registry``: where to register (a fresh one by default)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_operation_names: int | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.operation_names = OperationNames(max_operation_names or MAX_OPERATION_NAMES)
        r = self.registry
        # --- requests --------------------------------------------------------------------
        self.requests = Counter(
            "runql_requests",
            "HTTP requests to /graphql, by operation name, operation type and outcome "
            "(error: the answer had errors, an HTTP status of 400 or more, or none).",
            ["operation", "type", "outcome"],
            registry=r,
        )
        self.request_duration = Histogram(
            "runql_request_duration_seconds",
            "Time from receiving a /graphql request to its answer being ready, by operation.",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_statements = Histogram(
            "runql_request_sql_statements",
            "SQL statements one /graphql request issued, by operation type.",
            ["type"],
            buckets=STATEMENT_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "runql_graphql_errors",
            "Errors in /graphql answers (top-level errors and HTTP refusals), by code.",
            ["code"],
            registry=r,
        )
        # --- runner API ------------------------------------------------------------------
        self.jobs_claimed = Counter(
            "runql_jobs_claimed", "Jobs handed to runners by claimJobs.", registry=r
        )
        self.claim_calls = Counter(
            "runql_claim_calls",
            "claimJobs calls that handed out jobs (claimed) or found none (empty).",
            ["outcome"],
            registry=r,
        )
        self.completions = Counter(
            "runql_completions",
            "completeJobs items by outcome: applied, duplicate (a repeat answered again, not "
            "applied twice), stale (STALE_CLAIM), refused (code: why).",
            ["outcome", "code"],
            registry=r,
        )
        self.renewals = Counter(
            "runql_renewals",
            "renewLeases items by outcome: applied, stale (STALE_CLAIM), refused (code: why).",
            ["outcome", "code"],
            registry=r,
        )
        # --- lease sweeper ---------------------------------------------------------------
        self.leases_expired = Counter(
            "runql_leases_expired",
            "Claims the lease sweeper ended because their lease expired (the job is retried "
            "or fails, as its policy says).",
            registry=r,
        )
        self.sweeps = Counter(
            "runql_lease_sweeps",
            "Lease sweeps, by outcome (ok, failed: a database error; the sweeper retries).",
            ["outcome"],
            registry=r,
        )
        self.sweep_last_success = Gauge(
            "runql_lease_sweep_last_success_timestamp_seconds",
            "Unix time of the last successful lease sweep (of any live worker).",
            registry=r,
            multiprocess_mode="livemax",
        )
        # --- database pool ---------------------------------------------------------------
        self.pool_size = Gauge(
            "runql_db_pool_size",
            "Connections the database pools keep open (all live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_max_overflow = Gauge(
            "runql_db_pool_max_overflow",
            "Connections the pools may open beyond their size under load (all live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "runql_db_pool_checked_out",
            "Connections in use by a request or the sweeper right now (all live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        # --- live updates (issue 14: the event listener and subscriptions) ---------------
        self.subscriptions_open = Gauge(
            "runql_subscriptions_open",
            "GraphQL subscriptions open now (all live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.events_delivered = Counter(
            "runql_events_delivered",
            "Events sent to subscribers (one per subscription an event reached).",
            registry=r,
        )
        self.listener_connected = Gauge(
            "runql_event_listener_connected",
            "Workers whose database event listener is connected (0 when it is down).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.listener_reconnects = Counter(
            "runql_event_listener_reconnects",
            "Times an event listener lost its database connection and connected again.",
            registry=r,
        )

    # --- requests ------------------------------------------------------------------------

    def observe_request(self, facts: RequestFacts, seconds: float, statements: int) -> None:
        """One /graphql request: its count, latency, SQL statements and error codes."""
        kind = facts.operation_type if facts.operation_type in OPERATION_TYPES else "none"
        operation = self.operation_names.label(facts.operation_name, facts.operation_type)
        # status 0: no answer was made (an exception escaped the view): an error too
        failed = bool(facts.error_codes) or not 0 < facts.status < 400
        self.requests.labels(operation, kind, "error" if failed else "ok").inc()
        self.request_duration.labels(operation, kind).observe(seconds)
        self.request_statements.labels(kind).observe(statements)
        if facts.error_codes:
            for code, n in Tally(facts.error_codes).items():
                self.errors.labels(code if code in ErrorCode.__members__ else OTHER).inc(n)

    # --- runner API ----------------------------------------------------------------------

    def claimed(self, claims: list[Any]) -> None:
        """A claimJobs answer (its list of claims)."""
        if claims:
            self.jobs_claimed.inc(len(claims))
            self.claim_calls.labels("claimed").inc()
        else:
            self.claim_calls.labels("empty").inc()

    def completed(self, answers: list[Any]) -> None:
        """A completeJobs answer (its per-item answers)."""
        _count(self.completions, answers)

    def renewed(self, answers: list[Any]) -> None:
        """A renewLeases answer (its per-item answers)."""
        _count(self.renewals, answers)

    # --- lease sweeper -------------------------------------------------------------------

    def sweep_succeeded(self) -> None:
        self.sweeps.labels("ok").inc()
        self.sweep_last_success.set(time.time())

    def sweep_failed(self) -> None:
        self.sweeps.labels("failed").inc()

    # --- database pool -------------------------------------------------------------------

    def watch_pool(self, engine: Any) -> None:
        """Keep the pool gauges of ``engine`` (an ``AsyncEngine``): its size now, its
        checked-out connections from the pool's checkout/checkin events (one gauge update
        each, no polling). SQLite's pool is a queue pool too (file databases), so both
        backends report the same series; its size is SQLAlchemy's default (5, overflow
        10), connections being cheap file handles there."""
        from sqlalchemy import event

        pool = engine.sync_engine.pool
        size = getattr(pool, "size", None)
        self.pool_size.set(size() if callable(size) else 0)
        self.pool_max_overflow.set(max(getattr(pool, "_max_overflow", 0), 0))
        gauge = self.pool_checked_out
        event.listen(pool, "checkout", lambda *_: gauge.inc())
        event.listen(pool, "checkin", lambda *_: gauge.dec())

    # --- live updates (issue 14) ---------------------------------------------------------

    def subscription_opened(self) -> None:
        self.subscriptions_open.inc()

    def subscription_closed(self) -> None:
        self.subscriptions_open.dec()

    def delivered(self, events: int = 1) -> None:
        self.events_delivered.inc(events)

    def listener_up(self) -> None:
        self.listener_connected.set(1)

    def listener_down(self) -> None:
        self.listener_connected.set(0)

    def listener_reconnected(self) -> None:
        self.listener_reconnects.inc()

    # --- exposition ----------------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition: this app's series, or every worker's in multiprocess mode."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _count(counter: Counter, answers: Iterable[Any]) -> None:
    """Tally per-item answers in Python, then one ``inc(n)`` per distinct outcome."""
    tally: Tally[tuple[str, str]] = Tally()
    for answer in answers:
        error = answer.error
        if error is None:
            tally[(DUPLICATE if answer.repeated else APPLIED, "")] += 1
        elif error.code == ErrorCode.STALE_CLAIM:
            tally[(STALE, error.code)] += 1
        else:
            tally[(REFUSED, str(error.code))] += 1
    for (outcome, code), n in tally.items():
        counter.labels(outcome, code).inc(n)


# --- the metrics of the current request -------------------------------------------------

_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar(
    "runql_metrics", default=None
)


def current() -> Metrics | None:
    """The metrics of the app serving this request (None: metrics are off)."""
    return _current.get()


@contextlib.contextmanager
def bind(metrics: Metrics | None) -> Iterator[None]:
    """Make ``metrics`` the current request's (and its tasks') for the block."""
    token = _current.set(metrics)
    try:
        yield
    finally:
        _current.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def observe(
    record: Callable[[Metrics, Any], None],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorates a resolver so ``record(metrics, its answer)`` runs after it returns, when
    metrics are on: ``@metrics.observe(Metrics.completed)``. The resolver's body stays as
    it is (the runner hot path is tuned elsewhere); a resolver that raises records
    nothing here (its error is counted with the request)."""

    def decorate(resolver: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(resolver)
        async def observed(*args: P.args, **kwargs: P.kwargs) -> R:
            answer = await resolver(*args, **kwargs)
            metrics = _current.get()
            if metrics is not None:
                record(metrics, answer)
            return answer

        return observed

    return decorate


# --- multiprocess mode (runql serve --workers N) ------------------------------------------


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


@contextlib.contextmanager
def multiprocess_directory(workers: int) -> Iterator[str | None]:
    """Around ``runql serve``: the directory every worker writes its values to.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` is used when set (created if missing) and
    emptied first: files of an earlier server would be added to this one's. Otherwise,
    with more than one worker, a fresh temporary directory, removed at exit. One worker
    needs none (its registry is the whole story)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        yield given
        return
    if workers <= 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="runql-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def mark_dead(pids: Iterable[int]) -> None:
    """Forget the live gauges of worker processes that exited (restarted or stopped)."""
    if multiprocess_mode():
        for pid in pids:
            prometheus_multiprocess.mark_process_dead(pid)


__all__ = [
    "CONTENT_TYPE",
    "MAX_OPERATION_NAMES",
    "Metrics",
    "OperationNames",
    "bind",
    "current",
    "mark_dead",
    "multiprocess_directory",
    "multiprocess_mode",
    "observe",
]
