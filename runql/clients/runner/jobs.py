"""The jobs a runner runs: each claimed job's process started, watched (its pidfd in the
loop's selector), stopped on a timeout or a shutdown (SIGTERM, then SIGKILL after the
grace period), reaped, and turned into the completion the journal keeps until the server
acknowledges it. No requests here: the loop (``runql.clients.runner.loop``) sends what
these methods return.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runql.clients.runner.process import JobInfo, JobProcess, Outcome, StartError
from runql.clients.runner.spec import SpecError, parse
from runql.clients.runner.status import Status


@dataclass
class Running:
    job_id: str
    token: str
    name: str
    run_id: str
    process: JobProcess
    started: float
    timeout: float | None = None  # spec.timeoutSeconds
    deadline: float | None = None  # when it runs out
    stop_reason: str | None = None  # why the runner stopped it (reported as FAILED)
    kill_at: float | None = None  # SIGKILL after the grace period
    abandoned: bool = False  # no longer ours (STALE_CLAIM, NOT_FOUND): never completed


class Jobs:
    """The running jobs by id. Methods that end jobs return their completions."""

    def __init__(
        self,
        status: Status,
        selector: selectors.BaseSelector,
        *,
        log_dir: Path,
        results_dir: Path,
        grace_seconds: float,
    ) -> None:
        self.status = status
        self.selector = selector
        self.log_dir = log_dir
        self.results_dir = results_dir
        self.grace_seconds = grace_seconds
        self.base_env = dict(os.environ)
        self.running: dict[str, Running] = {}
        self.stopped_on_shutdown = False  # a job still ran when the drain ran out

    def start(self, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Start each claimed job; the completions of those that could not start."""
        failed: list[dict[str, Any]] = []
        now = time.monotonic()
        for claim in claims:
            job = claim["job"]
            job_id, token = str(job["id"]), claim["claimToken"]
            info = JobInfo(job_id, str(job["run"]["id"]), int(job["submissionNum"]))
            try:
                command = parse(job.get("spec"))
                process = JobProcess.start(
                    command,
                    info,
                    log_dir=self.log_dir,
                    result_dir=self.results_dir,
                    base_env=self.base_env,
                )
            except SpecError as exc:
                failed.append(completion(job_id, token, Outcome("FAILED", None, str(exc))))
                self._log_finished(job, job_id, failed[-1], 0.0)
                continue
            except StartError as exc:
                failed.append(completion(job_id, token, exc.outcome))
                self._log_finished(job, job_id, failed[-1], 0.0)
                continue
            deadline = now + command.timeout_seconds if command.timeout_seconds else None
            running = Running(
                job_id,
                token,
                job["name"],
                info.run_id,
                process,
                now,
                timeout=command.timeout_seconds,
                deadline=deadline,
            )
            self.running[job_id] = running
            if process.pidfd is not None:
                self.selector.register(process.pidfd, selectors.EVENT_READ, job_id)
        return failed

    def reap(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """Forget the jobs of ``job_ids`` that exited; their completions (none for an
        abandoned job)."""
        completions: list[dict[str, Any]] = []
        now = time.monotonic()
        for job_id in job_ids:
            job = self.running.get(job_id)
            if job is None or job.process.poll() is None:
                continue
            del self.running[job_id]
            if job.process.pidfd is not None:
                self.selector.unregister(job.process.pidfd)
            job.process.close()
            if job.abandoned:
                self.status.event("job.abandoned", job=job_id, name=job.name, run=job.run_id)
                continue
            outcome = job.process.outcome(job.stop_reason)
            completions.append(completion(job_id, job.token, outcome))
            self._log_finished(
                {"name": job.name, "run": {"id": job.run_id}},
                job_id,
                completions[-1],
                now - job.started,
            )
        return completions

    def _log_finished(
        self, job: dict[str, Any], job_id: str, completion: dict[str, Any], seconds: float
    ) -> None:
        ok = completion["status"] == "DONE"
        self.status.finished(ok)
        self.status.event(
            "job.finished",
            level="info" if ok else "warning",
            job=job_id,
            name=job["name"],
            run=job["run"]["id"],
            status=completion["status"],
            exitStatus=completion.get("exitStatus"),
            seconds=round(seconds, 3),
            message=completion.get("message"),
        )

    def stop(self, job: Running, reason: str, now: float) -> None:
        """SIGTERM to the job's group now, SIGKILL after the grace period."""
        if job.stop_reason is None:
            job.stop_reason = reason
            job.kill_at = now + self.grace_seconds
            job.process.signal_group(signal.SIGTERM)

    def abandon(self, job: Running) -> None:
        """The job is no longer ours: kill it, and never report it."""
        job.abandoned = True
        job.process.signal_group(signal.SIGKILL)

    def timers(self, now: float, *, drain_over: bool) -> None:
        """What is due: kills after a grace period, timeouts, and (``drain_over``) the
        stop of every job still running when the shutdown's drain ran out."""
        for job in list(self.running.values()):
            if job.kill_at is not None and now >= job.kill_at:
                job.process.signal_group(signal.SIGKILL)
                job.kill_at = None
            elif job.deadline is not None and now >= job.deadline:
                job.deadline = None
                self.stop(job, f"timed out after {job.timeout:g} s (spec.timeoutSeconds)", now)
            elif drain_over and job.stop_reason is None:
                self.stopped_on_shutdown = True
                self.stop(job, "stopped: the runner shut down", now)

    def due(self, now: float) -> list[float]:
        """When :meth:`timers` has work next (and soon, for a job without a pidfd)."""
        due: list[float] = []
        for job in self.running.values():
            due += [t for t in (job.deadline, job.kill_at) if t is not None]
            if job.process.pidfd is None:
                due.append(now + 0.01)
        return due

    def unwatched(self) -> list[str]:
        """Jobs without a pidfd: polled on every turn of the loop."""
        return [j.job_id for j in self.running.values() if j.process.pidfd is None]

    def kill_all(self, why: str) -> list[dict[str, Any]]:
        """Kill every job's group at once; their completions (sent by the next start)."""
        for job in self.running.values():
            job.process.signal_group(signal.SIGKILL)
        completions = []
        for job_id, job in list(self.running.items()):
            with contextlib.suppress(ChildProcessError):
                job.process.popen.wait()
            job.process.close()
            if not job.abandoned:
                outcome = job.process.outcome(job.stop_reason or f"stopped: {why}")
                completions.append(completion(job_id, job.token, outcome))
            del self.running[job_id]
        return completions


def completion(job_id: str, token: str, outcome: Outcome) -> dict[str, Any]:
    """A ``CompletionInput`` for ``completeJobs``, as the journal keeps it."""
    item: dict[str, Any] = {"jobId": job_id, "claimToken": token, "status": outcome.status}
    if outcome.exit_status is not None:
        item["exitStatus"] = outcome.exit_status
    if outcome.message:
        item["message"] = outcome.message
    if outcome.result is not None:
        item["result"] = outcome.result
    return item
