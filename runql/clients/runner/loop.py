"""The runner's cycle: report finished jobs and claim for the free slots in one request,
renew leases at a third of the lease, stop what must stop, drain on shutdown.

One thread, one ``select``: it wakes when a job's process exits (its pidfd becomes
readable), when a signal arrives (``signal.set_wakeup_fd``), when the ``jobsReady``
waker says jobs may be ready (its pipe, ``runql.clients.runner.waker``: claim at once), or when a
timer is due (a renewal, a claim after an idle back-off, a job's timeout, a kill after
the grace period). A child's exit is reported, together with a claim for the slot it
freed, as soon as the loop sees it: there is no sleep between a completion and the next
claim, and completions never wait on the waker. The jobs themselves (processes, timeouts,
kills, their completions) are ``runql.clients.runner.jobs``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from runql.clients import api
from runql.clients.api import ApiError, Client, Unreachable
from runql.clients.runner.idle import Backoff, IdlePolicy, PollingIdle
from runql.clients.runner.jobs import Jobs, Running
from runql.clients.runner.journal import Journal
from runql.clients.runner.status import Status
from runql.clients.runner.waker import Waker
from runql.error_codes import ErrorCode

#: Exit statuses of ``runql runner`` (docs/runner.md, "Exit status").
EXIT_OK = 0  # stopped on request; every job finished and was reported
EXIT_FATAL = 1  # the server refused the runner (token, documents) or the state dir is busy
EXIT_USAGE = 2  # bad command line (argparse)
EXIT_UNSENT = 3  # stopped with completions left in the journal (server unreachable)
EXIT_JOBS_STOPPED = 4  # stopped on request; jobs still running after the drain were stopped
EXIT_AT_ONCE = 130  # a second SIGINT/SIGTERM: jobs killed, completions left in the journal

BATCH = 1000  # the server's largest completions / leases per call
#: After the last job is gone on shutdown, how long unsent completions are retried.
DELIVERY_SECONDS = 10.0
#: The selector's key data of the waker's pipe (job pidfds carry the job id, the signal
#: pipe None).
WAKER = "waker"


@dataclass(frozen=True)
class Options:
    name: str
    slots: int
    project: str | None
    lease_seconds: int
    state_dir: Path
    log_dir: Path
    drain_seconds: float
    grace_seconds: float


class StopNow(Exception):
    """A second SIGINT/SIGTERM: stop at once."""


@dataclass
class _Signals:
    count: int = 0
    names: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        client: Client,
        options: Options,
        journal: Journal,
        status: Status,
        idle: IdlePolicy | None = None,
        waker: Waker | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.journal = journal
        self.status = status
        self.idle = idle or PollingIdle()
        self.waker = waker
        self.idle_announced = False  # runner.idle logged since the last claim that found jobs
        self.offline = Backoff()
        self.selector = selectors.DefaultSelector()
        self.jobs = Jobs(
            status,
            self.selector,
            log_dir=options.log_dir,
            results_dir=options.state_dir / "results",
            grace_seconds=options.grace_seconds,
        )
        self.signals = _Signals()
        self.next_claim_at = 0.0
        self.next_renew_at = 0.0
        self.send_after = 0.0
        self.draining_since: float | None = None
        self.last_job_gone_at: float | None = None
        self.fatal: str | None = None  # why the server refused the runner

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        self.jobs.results_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        old_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        if self.waker is not None:
            self.selector.register(self.waker.fileno(), selectors.EVENT_READ, WAKER)
            self.waker.start()
        if self.journal.pending:
            self.status.event("journal.resend", completions=len(self.journal.pending))
        self.status.event(
            "runner.started",
            name=self.options.name,
            slots=self.options.slots,
            url=self.client.endpoint.url,
            project=self.options.project,
        )
        code = EXIT_FATAL
        try:
            code = self._loop(wake_r)
        except StopNow:
            code = self._stop_now("a second signal")
        except ApiError as exc:
            self.fatal = str(exc)
            self.status.event("runner.refused", level="error", error=str(exc), codes=exc.codes)
            self._stop_now("the server refused the runner")
            code = EXIT_FATAL
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            if self.waker is not None:
                self.selector.unregister(self.waker.fileno())
                self.waker.close()
            os.close(wake_r)
            os.close(wake_w)
            self.status.close()
            self.status.event(
                "runner.stopped",
                exit=code,
                done=self.status.done,
                failed=self.status.failed,
                requests=self.client.requests,
                request_seconds=round(self.client.seconds, 3),
                unsent=len(self.journal.pending),
            )
        return code

    def _loop(self, wake_r: int) -> int:
        while True:
            now = time.monotonic()
            if self.signals.count and self.draining_since is None:
                self.draining_since = now
                self.status.event(
                    "runner.draining",
                    signal=self.signals.names[0],
                    running=len(self.jobs.running),
                    drain_seconds=self.options.drain_seconds,
                )
            drain_over = (
                self.draining_since is not None
                and now >= self.draining_since + self.options.drain_seconds
            )
            self.jobs.timers(now, drain_over=drain_over)
            if self.jobs.running and now >= self.next_renew_at and now >= self.send_after:
                self._renew()
            if self._should_send(time.monotonic()):
                self._cycle()
            if self.draining_since is not None and not self.jobs.running:
                now = time.monotonic()
                if self.last_job_gone_at is None:
                    self.last_job_gone_at = now
                if not self.journal.pending:
                    return EXIT_JOBS_STOPPED if self.jobs.stopped_on_shutdown else EXIT_OK
                if now - self.last_job_gone_at >= DELIVERY_SECONDS:
                    self.status.event(
                        "runner.unsent",
                        level="warning",
                        completions=len(self.journal.pending),
                        journal=str(self.journal.path),
                    )
                    return EXIT_UNSENT
            self._wait(wake_r)

    def _claiming(self) -> int:
        """Slots to claim for now (0 while draining)."""
        if self.draining_since is not None:
            return 0
        return max(0, self.options.slots - len(self.jobs.running))

    def _should_send(self, now: float) -> bool:
        if now < self.send_after:
            return False
        if self.journal.pending:
            return True
        return self._claiming() > 0 and now >= self.next_claim_at

    def _wait(self, wake_r: int) -> None:
        now = time.monotonic()
        due = [now + self.idle_cap()]
        if self.journal.pending or self._claiming():
            due.append(max(self.send_after, self.next_claim_at if not self.journal.pending else 0))
        if self.jobs.running:
            due.append(max(self.next_renew_at, self.send_after))
        due += self.jobs.due(now)
        if self.draining_since is not None:
            due.append(self.draining_since + self.options.drain_seconds)
            if self.last_job_gone_at is not None:
                due.append(self.last_job_gone_at + DELIVERY_SECONDS)
        timeout = max(0.0, min(due) - now)
        if self.status.tty:
            timeout = min(timeout, 0.25)
        exited: list[str] = []
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            elif key.data == WAKER:
                self._woken()
            else:
                exited.append(key.data)
        exited += self.jobs.unwatched()
        self.journal.add(self.jobs.reap(exited))
        self.status.tick(len(self.jobs.running), "draining" if self.draining_since else "")

    def _woken(self) -> None:
        """The waker's pipe: log what it noted; claim now if jobs may be ready (or it just
        went down, and polling takes over)."""
        assert self.waker is not None
        claim_now, notes = self.waker.take()
        for note in notes:
            if note.event == "live.connected":
                self.idle_announced = False  # say again when the runner waits on it
            self.status.event(note.event, level=note.level, **note.fields)
        if claim_now:
            self.next_claim_at = 0.0

    def idle_cap(self) -> float:
        return 2.0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.count += 1
        self.signals.names.append(signal.Signals(signum).name)
        if self.signals.count >= 2:
            raise StopNow

    def _stop_now(self, why: str) -> int:
        """Kill every job's group, journal their completions (sent by the next start)."""
        completions = self.jobs.kill_all(why)
        self.journal.add(completions)
        self.status.event(
            "runner.stopped_at_once", level="warning", why=why, killed=len(completions)
        )
        return EXIT_AT_ONCE

    # -- requests -----------------------------------------------------------------------

    def _cycle(self) -> None:
        done = list(self.journal.pending.values())[:BATCH]
        limit = self._claiming()
        claim = {
            "runnerName": self.options.name,
            "limit": max(limit, 1),
            "project": self.options.project,
            "leaseSeconds": self.options.lease_seconds,
        }
        try:
            if done and limit:
                data = self.client.execute(api.CYCLE, {"done": done, "claim": claim})
            elif done:
                data = self.client.execute(api.COMPLETE, {"done": done})
            else:
                data = self.client.execute(api.CLAIM, {"claim": claim})
        except Unreachable as exc:
            self._unreachable(exc)
            return
        self._reachable()
        if done:
            self._acknowledge(done, data["completeJobs"]["results"])
        if limit:
            claims = data["claimJobs"]["claims"]
            now = time.monotonic()
            if claims and not self.jobs.running:
                self.next_renew_at = now + self.options.lease_seconds / 3
            self.journal.add(self.jobs.start(claims))
            delay = self.idle.after_claim(len(claims), limit)
            self.next_claim_at = now + delay
            self._announce_idle(len(claims), delay)

    def _announce_idle(self, claimed: int, delay: float) -> None:
        """``runner.idle`` once when claims start coming back empty: what the runner
        waits for (the ``jobsReady`` waker, or polling)."""
        if claimed:
            self.idle_announced = False
        elif not self.idle_announced and not self.jobs.running:
            self.idle_announced = True
            live = self.waker is not None and self.waker.live
            self.status.event(
                "runner.idle",
                waiting="jobsReady" if live else "polling",
                recheck_seconds=round(delay, 3) if live else None,
            )

    def _acknowledge(self, done: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        acknowledged: list[str] = []
        for completion, result in zip(done, results, strict=True):
            job_id = str(completion["jobId"])
            error = result.get("error")
            if error is None:
                acknowledged.append(job_id)
                continue
            code, message = error.get("code"), error.get("message")
            if code in (ErrorCode.BAD_USER_INPUT, ErrorCode.LIMIT_EXCEEDED) and completion.get(
                "result"
            ):
                # The result was refused: report the job without it, saying why.
                retry = {
                    **completion,
                    "status": "FAILED",
                    "result": None,
                    "message": f"result refused by the server: {message}",
                }
                self.journal.replace(retry)
                continue
            self.status.event(
                "completion.dropped", level="warning", job=job_id, code=code, message=message
            )
            acknowledged.append(job_id)
        self.journal.acknowledge(acknowledged)

    def _renew(self) -> None:
        jobs = [j for j in self.jobs.running.values() if not j.abandoned]
        now = time.monotonic()
        try:
            for start in range(0, len(jobs), BATCH):
                chunk = jobs[start : start + BATCH]
                leases = [{"jobId": j.job_id, "claimToken": j.token} for j in chunk]
                data = self.client.execute(
                    api.RENEW, {"leases": leases, "lease": self.options.lease_seconds}
                )
                for job, result in zip(chunk, data["renewLeases"]["results"], strict=True):
                    self._renewed(job, result, now)
        except Unreachable as exc:
            self._unreachable(exc)
            return
        self._reachable()
        self.next_renew_at = now + self.options.lease_seconds / 3

    def _renewed(self, job: Running, result: dict[str, Any], now: float) -> None:
        error = result.get("error")
        if error is None:
            if result.get("mustStop"):
                if job.stop_reason is None:
                    self.status.event("job.stopping", job=job.job_id, name=job.name)
                self.jobs.stop(job, "stopped: the run is stopping", now)
            return
        if error.get("code") in (ErrorCode.STALE_CLAIM, ErrorCode.NOT_FOUND):
            self.status.event(
                "job.lost",
                level="warning",
                job=job.job_id,
                code=error.get("code"),
                message=error.get("message"),
            )
            self.jobs.abandon(job)

    def _unreachable(self, exc: Unreachable) -> None:
        delay = self.offline.next()
        if self.offline.failures == 1:
            self.status.event("server.unreachable", level="warning", error=str(exc))
        self.send_after = time.monotonic() + delay

    def _reachable(self) -> None:
        failures = self.offline.reset()
        if failures:
            self.status.event("server.reachable", failed_attempts=failures)
        self.send_after = 0.0
