"""When to claim again after a claim that did not fill the free slots.

:class:`LiveIdle` is what ``runql runner`` uses: while its ``jobsReady`` subscription is
up (``runql.clients.runner.waker``), a claim that comes back empty is followed by no other until
the waker's pipe becomes readable (jobs may be ready: the loop claims at once), save a
safety re-check every :data:`RECHECK_SECONDS`. While the subscription is down it is
:class:`PollingIdle`: 50 ms, doubling while claims stay empty, up to 2 s. A completion
never waits on this: the loop claims in the same request as every completion it reports.
"""

from __future__ import annotations

from typing import Protocol

FIRST_SECONDS = 0.05
MAX_SECONDS = 2.0
#: While the waker is live, an idle runner still claims this often: a safety net should
#: a signal ever be lost (docs/live-updates.md suggests keeping a slow poll).
RECHECK_SECONDS = 30.0


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


class Liveness(Protocol):
    @property
    def live(self) -> bool:
        """Whether signals arrive now (the subscription is up)."""
        ...


class LiveIdle:
    """After an empty claim, wait for the waker while it is live (re-check every
    ``recheck`` seconds); otherwise, and after a claim that found jobs, poll."""

    def __init__(
        self,
        waker: Liveness,
        recheck: float = RECHECK_SECONDS,
        polling: PollingIdle | None = None,
    ) -> None:
        self.waker = waker
        self.recheck = recheck
        self.polling = polling or PollingIdle()

    def after_claim(self, claimed: int, asked: int) -> float:
        delay = self.polling.after_claim(claimed, asked)
        if claimed == 0 and self.waker.live:
            return self.recheck
        return delay


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
