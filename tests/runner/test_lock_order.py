"""One lock order for every writer: races that deadlocked before it was kept.

Every write path that waits for row locks takes them runs first, then jobs, each in id
order (``runql.db.locking``'s docstring has the rule); claims wait for nothing. On
PostgreSQL a writer that broke the order met another in a cycle: renewals locked jobs
without their run while a stop, a completion or the lease sweeper held the run and
updated its jobs in plan order, and PostgreSQL aborted one of them with ``deadlock
detected``, about once in six rounds of four renewals and a stop.

Each test races real requests (the resolver functions behind the mutations, and the
sweeper's ``sweep_once``) for many rounds and asserts that no request failed and that the
final state is what the answers say. A round fails at once, naming the round and the
error, so a failure reads ``round 6: 1 request(s) failed: [... deadlock detected]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
from collections import defaultdict
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from runql.db.claims import Claim
from runql.db.engine import Database
from runql.db.enums import CompletionStatus, JobStatus, MemberRole, RunStatus
from runql.db.lifecycle import JobDefinition, insert_run
from runql.db.models import Job, Run
from runql.db.types import utcnow
from runql.db.visibility import Viewer
from runql.resolvers import lifecycle, runner
from runql.resolvers.context import Context
from runql.settings import Settings
from runql.tasks.lease_sweeper import LeaseSweeper
from tests.factories import Factory, ProjectHandle

pytestmark = pytest.mark.slow  # races repeated over rounds: see DEVELOPERS.md, Tests

#: On SQLite one writer runs at a time, so the races cannot deadlock: a few rounds check
#: that the final states come out right there too. On PostgreSQL each test runs enough
#: rounds that the old lock order survives them with a chance below about 1 in 250 (the
#: rates measured before the fix are given per test); a clean round costs 0.05-0.2 s.
SQLITE_ROUNDS = 4


class Race:
    """A user's requests, as the resolvers get them, and the rounds of a race."""

    def __init__(self, db: Database, ctx: Context, project: ProjectHandle) -> None:
        self.db, self.ctx, self.project = db, ctx, project
        self._names = itertools.count()
        self.rng = random.Random(11)
        self.round = 0

    async def runs(self, jobs: Sequence[JobDefinition], n: int) -> list[int]:
        async with self.db.write() as session:
            return [
                (
                    await insert_run(
                        session,
                        project_id=self.project.id,
                        user_id=self.ctx.viewer.user_id,
                        name=f"race-{next(self._names)}",
                        jobs=jobs,
                    )
                ).id
                for _ in range(n)
            ]

    async def claim_all(self) -> dict[int, list[Claim]]:
        """Claim every ready job; the claims grouped by run."""
        claims = await runner.claim_jobs(
            self.ctx, runner_name="racer", limit=1000, project=None, lease_seconds=None
        )
        by_run: dict[int, list[Claim]] = defaultdict(list)
        for claim in claims:
            by_run[claim.job.run_id].append(claim)
        return by_run

    def renew(self, leases: list[runner.Lease]) -> Awaitable[list[runner.JobAnswer]]:
        shuffled = self.rng.sample(leases, len(leases))
        return runner.renew_leases(self.ctx, leases=shuffled, lease_seconds=None)

    def complete(
        self, claims: Sequence[Claim], status: CompletionStatus
    ) -> Awaitable[list[runner.JobAnswer]]:
        items = [
            runner.Completion(str(c.job.id), c.token, status)
            for c in self.rng.sample(list(claims), len(claims))
        ]
        return runner.complete_jobs(self.ctx, completions=items)

    def stop(self, run_ids: Sequence[int]) -> Awaitable[list[lifecycle.RunAnswer]]:
        ids = [str(i) for i in run_ids]
        return lifecycle.stop_runs(self.ctx, run_ids=ids, project=None, names=None, abort=False)

    async def gather(self, *calls: Awaitable[Any]) -> list[Any]:
        """Run ``calls`` at once, started in random order; their answers in call order.
        Fails the test, naming the round and the errors, if any request raised."""
        calls_in_random_order = list(calls)
        self.rng.shuffle(calls_in_random_order)
        answers = await asyncio.gather(*calls_in_random_order, return_exceptions=True)
        by_call = dict(zip(map(id, calls_in_random_order), answers, strict=True))
        ordered = [by_call[id(call)] for call in calls]
        failed = [a for a in ordered if isinstance(a, BaseException)]
        messages = sorted({str(f).splitlines()[0][:160] for f in failed})
        assert not failed, f"round {self.round}: {len(failed)} request(s) failed: {messages}"
        return ordered

    def rounds(self, rounds: int) -> Iterator[int]:
        for n in range(SQLITE_ROUNDS if self.db.is_sqlite else rounds):
            self.round = n
            yield n

    async def jobs(self, run_id: int) -> list[Job]:
        async with self.db.read() as session:
            return list(
                await session.scalars(
                    select(Job)
                    .where(Job.run_id == run_id)
                    .order_by(Job.job_num, Job.replica_num, Job.submission_num)
                )
            )

    async def run(self, run_id: int) -> Run:
        async with self.db.read() as session:
            run = await session.get(Run, run_id)
            assert run is not None
            return run


async def _race(db: Database, factory: Factory, settings: Settings) -> Race:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    ctx = Context(db=db, settings=settings, viewer_or_none=Viewer(user.id, user.name, False))
    return Race(db, ctx, project)


def _leases(claims: Sequence[Claim]) -> list[runner.Lease]:
    return [runner.Lease(str(c.job.id), c.token) for c in claims]


def _answers(results: list[runner.JobAnswer]) -> set[tuple[str | None, bool]]:
    """A renewal's answers as a set of (error code, mustStop): one element when the
    renewal saw every job of a run in the same state."""
    return {(r.error and r.error.code, r.must_stop) for r in results}


async def test_renewals_racing_a_stop_never_deadlock(
    db: Database, factory: Factory, settings: Settings
) -> None:
    """Two renewals of the running jobs of a 30-job run and a stop of it, at once (the
    reported deadlock). The stop updates the jobs in plan order (replica by replica),
    the renewals locked them in id order (job by job): before the fix about one round in
    six deadlocked, so 40 rounds."""
    race = await _race(db, factory, settings)
    jobs = [JobDefinition("a", replicas=15), JobDefinition("b", replicas=15)]
    for _ in race.rounds(40):
        (run_id,) = await race.runs(jobs, 1)
        claims = (await race.claim_all())[run_id]
        await race.complete(claims[:1], CompletionStatus.DONE)  # a finished job: stays DONE
        running = _leases(claims[1:])

        *renewals, stopped = await race.gather(
            race.renew(running), race.renew(running), race.stop([run_id])
        )

        for results in renewals:
            # Before the stop (renewed) or after it (renewed, told to stop), never a mix.
            assert _answers(results) in ({(None, False)}, {(None, True)})
        assert [(r.error, r.run and r.run.status) for r in stopped] == [
            (None, RunStatus.TERMINATING)
        ]
        statuses = [job.status for job in await race.jobs(run_id)]
        assert statuses.count(JobStatus.DONE) == 1
        assert statuses.count(JobStatus.TERMINATING) == 29


async def test_renewals_listing_blocked_jobs_racing_completions_that_unblock_or_abort_them(
    db: Database, factory: Factory, settings: Settings
) -> None:
    """A renewal that lists ``BLOCKED`` jobs (ids below the retries it renews) while a
    completion of those retries unblocks the blocked jobs (``DONE``) or aborts them
    (``FAILED`` for good). Before the fix about one round in two deadlocked, so 15
    rounds."""
    race = await _race(db, factory, settings)
    jobs = [
        JobDefinition("a", replicas=10, retry_limit=1),
        JobDefinition("b", replicas=10, depends_on=("a",)),
    ]
    for round_num in race.rounds(15):
        run_ids = await race.runs(jobs, 2)
        first = await race.claim_all()
        await race.gather(*(race.complete(first[r], CompletionStatus.FAILED) for r in run_ids))
        retries = await race.claim_all()  # the retries of "a": ids above those of "b"
        status = CompletionStatus.DONE if round_num % 2 else CompletionStatus.FAILED
        renewals = []
        forged_ids: set[str] = set()
        for run_id in run_ids:
            blocked = [j for j in await race.jobs(run_id) if j.status == JobStatus.BLOCKED]
            forged = [runner.Lease(str(j.id), "rqc_not-a-claim") for j in blocked]
            forged_ids.update(lease.job_id for lease in forged)
            leases = _leases(retries[run_id]) + forged
            renewals += [race.renew(leases) for _ in range(2)]
        completions = [race.complete(retries[r], status) for r in run_ids]

        answers = await race.gather(*renewals, *completions)

        for results in answers[len(renewals) :]:
            assert {r.error for r in results} == {None}
        for results in answers[: len(renewals)]:
            codes: dict[bool, set[str | None]] = {True: set(), False: set()}
            for r in results:
                codes[r.job_id in forged_ids].add(r.error and r.error.code)
            # The blocked jobs were never claimed; the retries were renewed before the
            # completion or found finished after it, all of them alike.
            assert codes[True] == {"STALE_CLAIM"}
            assert codes[False] in ({None}, {"INVALID_STATE"})
        for run_id in run_ids:
            latest = {(j.name, j.status) for j in await race.jobs(run_id) if j.submission_num}
            blocked = {j.status for j in await race.jobs(run_id) if j.name == "b"}
            if status == CompletionStatus.DONE:
                assert (latest, blocked) == ({("a", JobStatus.DONE)}, {JobStatus.SUBMITTED})
                assert (await race.run(run_id)).status == RunStatus.RUNNING
            else:
                assert (latest, blocked) == ({("a", JobStatus.FAILED)}, {JobStatus.ABORTED})
                assert (await race.run(run_id)).status == RunStatus.FAILED


async def test_the_lease_sweeper_racing_renewals_completions_and_stops(
    db: Database, factory: Factory, settings: Settings
) -> None:
    """The sweeper ends expired claims (aborting blocked jobs with lower ids) while
    renewals list those blocked jobs, a completion and a stop take runs too. Before the
    fix about one round in four deadlocked, so 20 rounds."""
    race = await _race(db, factory, settings)
    later = utcnow() + dt.timedelta(days=1)  # every lease of the test has expired by then
    sweeper = LeaseSweeper(db, interval_seconds=1, now=lambda: later)
    jobs = [
        JobDefinition("a", replicas=10, retry_on_lease_expiry=False),
        JobDefinition("b", replicas=10, depends_on=("a",)),
    ]
    for _ in race.rounds(20):
        swept, completed, stopped = await race.runs(jobs, 3)
        claims = await race.claim_all()
        calls: list[Awaitable[Any]] = []
        for run_id in (swept, completed, stopped):
            blocked = [j for j in await race.jobs(run_id) if j.status == JobStatus.BLOCKED]
            forged = [runner.Lease(str(j.id), "rqc_not-a-claim") for j in blocked]
            calls += [race.renew(_leases(claims[run_id]) + forged) for _ in range(2)]
        calls += [
            sweeper.sweep_once(),
            race.complete(claims[completed], CompletionStatus.DONE),
            race.stop([stopped]),
        ]

        await race.gather(*calls)
        await sweeper.sweep_once()  # what the first sweep skipped (runs locked elsewhere)

        swept_jobs = {(j.name, j.status, j.termination_reason) for j in await race.jobs(swept)}
        assert swept_jobs == {
            ("a", JobStatus.FAILED, "LEASE_EXPIRED"),
            ("b", JobStatus.ABORTED, "UPSTREAM_FAILED"),
        }
        assert (await race.run(swept)).status == RunStatus.FAILED
        # The completion came first (b unblocked, then claimable) or the sweep did (the
        # completion was stale, b aborted): never half of each.
        completed_jobs = {(j.name, j.status) for j in await race.jobs(completed)}
        assert completed_jobs in (
            {("a", JobStatus.DONE), ("b", JobStatus.SUBMITTED)},
            {("a", JobStatus.FAILED), ("b", JobStatus.ABORTED)},
        )
        stopped_jobs = {(j.name, j.status) for j in await race.jobs(stopped)}
        assert stopped_jobs in (
            {("a", JobStatus.TERMINATED), ("b", JobStatus.TERMINATED)},  # stop, then sweep
            {("a", JobStatus.FAILED), ("b", JobStatus.ABORTED)},  # sweep, then stop refused
        )
        assert (await race.run(stopped)).status in (RunStatus.TERMINATED, RunStatus.FAILED)


async def test_completions_spanning_runs_racing_each_other_and_a_stop(
    db: Database, factory: Factory, settings: Settings
) -> None:
    """Two completions that each finish half of the jobs of the same runs (listed in
    opposite orders), renewals of every job and a stop of all the runs. Completions and
    stops took their runs first before the fix too (this guards that they keep doing
    so: a completion that locked its jobs first deadlocked with the stop); the renewals
    among them made some rounds deadlock."""
    race = await _race(db, factory, settings)
    for _ in race.rounds(30):
        run_ids = await race.runs([JobDefinition("shard", replicas=10)], 2)
        claims = await race.claim_all()
        halves: list[list[Claim]] = [[], []]
        for run_id in run_ids:
            halves[0] += claims[run_id][::2]
            halves[1] += claims[run_id][1::2]
        every_lease = _leases([c for r in run_ids for c in claims[r]])

        answers = await race.gather(
            race.complete(halves[0], CompletionStatus.DONE),
            race.complete(halves[1][::-1], CompletionStatus.DONE),
            race.stop(run_ids[::-1]),
            race.renew(every_lease),
            race.renew(every_lease),
        )

        for results in answers[:2]:
            assert {r.error for r in results} == {None}
        stopped = {r.run_id: r for r in answers[2]}
        for run_id in run_ids:
            run = await race.run(run_id)
            statuses = {job.status for job in await race.jobs(run_id)}
            if run.status == RunStatus.DONE:  # both completions before the stop
                assert statuses == {JobStatus.DONE}
                assert stopped[str(run_id)].error is not None
            else:  # stopped in between: what was completed after it ended TERMINATED
                assert run.status == RunStatus.TERMINATED
                assert statuses <= {JobStatus.DONE, JobStatus.TERMINATED}
                assert JobStatus.TERMINATED in statuses
