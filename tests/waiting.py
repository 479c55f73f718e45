"""Waiting in tests: for a condition, never for an amount of time.

CI runs the suite on two cores shared with everything else, with pytest-xdist's four
workers besides: a server may take many seconds to start, an event many seconds to arrive.
So a test that waits polls for the condition it needs (``until``) and gives up only after
``DEADLINE``, a bound meant to be reached only by a broken build, never by a slow machine.
A wait that must find that something does *not* happen (no message, no claim) is a fixed
quiet period instead: a slow machine can only make such a check pass, never fail.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds every wait of the suite may take before it fails: a ``runql serve`` process to
#: be ready, a process to exit, an event to arrive, a background task to act. Generous on
#: purpose (on PostgreSQL a delivery also waits for every older writing transaction of the
#: whole cluster, another suite's included); a passing test never waits this long.
DEADLINE = 60.0


async def until(
    check: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    what: str = "the condition",
    *,
    within: float = DEADLINE,
    every: float = 0.02,
) -> T:
    """Poll ``check`` (sync or async) every ``every`` seconds until it returns something
    other than ``None`` or ``False``, and return that; fail naming ``what`` (and the last
    answer) after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        last: Any = check()
        if inspect.isawaitable(last):
            last = await last
        if last is not None and last is not False:
            return last  # type: ignore[no-any-return]
        if loop.time() >= deadline:
            raise AssertionError(f"gave up after {within} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(every)
