"""When to claim again after a claim that did not fill the free slots.

This is the seam where live updates plug in: today :class:`PollingIdle` backs off from
50 ms to 2 s while nothing is ready; a ``jobsReady`` subscription (the live-updates
issue) will replace it with a waker whose file descriptor becomes readable when jobs are
ready, so an idle runner claims at once and otherwise sends nothing. A completion never
waits on this: the loop claims in the same request as every completion it reports.
"""

from __future__ import annotations

from typing import Protocol

FIRST_SECONDS = 0.05
MAX_SECONDS = 2.0


class IdlePolicy(Protocol):
    def after_claim(self, claimed: int, asked: int) -> float:
        """Seconds to wait before the next claim that no completion prompts."""
        ...


class PollingIdle:
    """Claim again after 50 ms, doubling while claims come back empty, up to 2 s."""

    def __init__(self, first: float = FIRST_SECONDS, longest: float = MAX_SECONDS) -> None:
        self.first = first
        self.longest = longest
        self._delay = 0.0

    def after_claim(self, claimed: int, asked: int) -> float:
        if claimed >= asked:
            self._delay = 0.0
        elif claimed > 0:  # drained what was ready: look again soon
            self._delay = self.first
        else:
            self._delay = min(self.longest, max(self.first, self._delay * 2))
        return self._delay


class Backoff:
    """Retry delays for an unreachable server: ``first`` doubling up to ``longest``."""

    def __init__(self, first: float = 0.2, longest: float = 5.0) -> None:
        self.first = first
        self.longest = longest
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        delay: float = min(self.longest, self.first * 2 ** (self.failures - 1))
        return delay

    def reset(self) -> int:
        """Forget the failures; returns how many there were."""
        failures, self.failures = self.failures, 0
        return failures
