"""The loop every periodic background task runs on (``runql.tasks.periodic``): its backoff, and
that a bug (anything but a database error) stops the task loudly instead of being retried
for ever. That a database error is survived is guarded per task, against a database made
to fail for real: ``tests/runner/test_lease_sweeper.py``, ``tests/events/test_event_pruner.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest

from runql.db.engine import Database
from runql.tasks.event_pruner import EventPruner
from runql.tasks.lease_sweeper import LeaseSweeper
from runql.tasks.periodic import MAX_BACKOFF_SECONDS, backoff_seconds
from tests.background import records
from tests.waiting import until


def _broken_clock() -> dt.datetime:
    raise KeyError("not a database error")


def _sweeper(db: Database, now: Callable[[], dt.datetime]) -> LeaseSweeper | EventPruner:
    return LeaseSweeper(db, interval_seconds=0.01, now=now)


def _pruner(db: Database, now: Callable[[], dt.datetime]) -> LeaseSweeper | EventPruner:
    return EventPruner(db, interval_seconds=0.01, retention=dt.timedelta(hours=1), now=now)


@pytest.mark.parametrize(
    ("build", "logger"),
    [(_sweeper, "runql.tasks.lease_sweeper"), (_pruner, "runql.tasks.event_pruner")],
    ids=["lease_sweeper", "event_pruner"],
)
async def test_a_bug_in_a_periodic_task_stops_it_loudly(
    db: Database,
    caplog: pytest.LogCaptureFixture,
    build: Callable[[Database, Callable[[], dt.datetime]], LeaseSweeper | EventPruner],
    logger: str,
) -> None:
    caplog.set_level(logging.INFO, logger=logger)
    task = build(db, _broken_clock)
    task.start()

    async def stopped() -> bool:
        return not task.running

    await until(stopped, "the task to stop")
    await task.stop()
    (record,) = records(caplog, logger, logging.ERROR)
    assert "unexpected error" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_backoff_doubles_from_the_interval_up_to_a_cap() -> None:
    assert [backoff_seconds(5, n) for n in range(1, 7)] == [5, 10, 20, 40, 50, 50]
    assert [backoff_seconds(30, n) for n in (1, 2, 3, 1000)] == [30, 60, 60, MAX_BACKOFF_SECONDS]
    assert backoff_seconds(0.1, 1000) == pytest.approx(1.0)  # ten intervals
    assert backoff_seconds(300, 5) == 300  # never below the interval
