"""Medians after a warm-up, with the SQL statements and bytes each call cost.

Statements are counted with runql's own recorder (``runql.db.engine.record_statements``),
so the figure is the one the statement-count tests guard. Bytes are what the database
driver handed back: the sum of the sizes of the rows in the adapted cursor's buffer
right after each statement ran (text and JSON as their UTF-8 length, numbers and times
as 8 bytes). That is the data that crossed from the database into the service.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from runql.db.engine import record_statements


@dataclass
class Timing:
    """One measured case: per-call wall times in ms, statements and bytes of the last call."""

    samples_ms: list[float]
    statements: int
    bytes_read: int = 0
    #: What the last measured call returned (for checking the answer after timing it).
    result: Any = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def n(self) -> int:
        return len(self.samples_ms)


async def measure(call: Callable[[], Awaitable[Any]], *, repeats: int, warmup: int = 1) -> Timing:
    """Run ``call`` ``warmup`` times unmeasured, then ``repeats`` times measured.

    Garbage left by seeding (or by the naive baseline's 200,000 objects) is collected
    first, so one scenario's garbage is not paid for in the next one's figures."""
    gc.collect()
    for _ in range(warmup):
        await call()
    samples: list[float] = []
    statements = 0
    read = 0
    result = None
    for _ in range(repeats):
        with record_statements() as recorder, count_bytes() as counter:
            start = time.perf_counter()
            result = await call()
            samples.append((time.perf_counter() - start) * 1000)
        statements = recorder.count
        read = counter.total
    return Timing(samples, statements, read, result)


# --- bytes read from the database ---------------------------------------------------------


@dataclass
class ByteCounter:
    total: int = 0
    rows: int = 0


_counters: contextvars.ContextVar[tuple[ByteCounter, ...]] = contextvars.ContextVar(
    "bench_byte_counters", default=()
)


@contextlib.contextmanager
def count_bytes() -> Iterator[ByteCounter]:
    counter = ByteCounter()
    token = _counters.set((*_counters.get(), counter))
    try:
        yield counter
    finally:
        _counters.reset(token)


def _value_size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, int | float | bool | dt.datetime | dt.date):
        return 8
    return len(str(value).encode())


def _after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    counters = _counters.get()
    if not counters:
        return
    # SQLAlchemy's async adapters (asyncpg, aiosqlite) buffer the whole result here.
    rows = getattr(cursor, "_rows", None) or ()
    size = sum(_value_size(value) for row in rows for value in row)
    for counter in counters:
        counter.total += size
        counter.rows += len(rows)


def watch_bytes(engine: AsyncEngine) -> None:
    """Make :func:`count_bytes` see the rows ``engine`` returns."""
    event.listen(engine.sync_engine, "after_cursor_execute", _after_execute)
