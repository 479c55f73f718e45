"""Lease renewals: a runner keeps the jobs it holds by extending their leases.

A renewal batch costs two statements whatever its size, three on PostgreSQL, where it
first takes its runs' share locks (``runql.db.locking``: renewals of one run go side by
side, but wait for a stop, completion or sweep of the run at the run). The new expiry is
taken once the locks are held, so a renewal that waited does not hand out a lease partly
spent. Taking back the jobs whose lease lapsed is ``runql.db.lease_expiry``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.claims import JobOutcome, lock_held
from runql.db.enums import JobStatus
from runql.db.locking import locked_jobs
from runql.db.models import Job
from runql.db.types import utcnow
from runql.db.visibility import Viewer
from runql.error_codes import ErrorCode


@dataclass(frozen=True, slots=True)
class LeaseItem:
    job_id: int
    token_hash: str


async def renew_leases(
    session: AsyncSession,
    viewer: Viewer,
    leases: Sequence[LeaseItem],
    *,
    lease: dt.timedelta,
) -> list[JobOutcome]:
    """Extend every lease whose token still holds the job's claim to ``lease`` from now
    (once the locks are held); an outcome per item, in order, a renewed one with the new
    expiry. A job of a stopping run is renewed too (its runner winds it down) and
    answered ``must_stop``. Two statements whatever the batch size, three on PostgreSQL
    (the runs' share locks)."""
    held = await lock_held(session, viewer, leases, locked_jobs, share=True)
    lease_expires_at = utcnow() + lease
    outcomes: list[JobOutcome] = []
    renewed: set[int] = set()
    for row in held:
        if isinstance(row, JobOutcome):
            outcomes.append(row)
        elif row.status not in (JobStatus.RUNNING, JobStatus.TERMINATING):
            outcomes.append(
                JobOutcome(
                    row.id,
                    ErrorCode.INVALID_STATE,
                    f"the job is already finished ({row.status}); nothing to renew",
                    must_stop=True,
                )
            )
        else:
            renewed.add(row.id)
            stopping = row.status == JobStatus.TERMINATING
            outcomes.append(
                JobOutcome(row.id, must_stop=stopping, lease_expires_at=lease_expires_at)
            )
    if renewed:
        await session.execute(
            _renew_statement(), {"job_ids": sorted(renewed), "expires": lease_expires_at}
        )
    return outcomes


@functools.cache
def _renew_statement() -> Any:
    return (
        update(Job)
        .where(Job.id.in_(bindparam("job_ids", expanding=True)))
        .values(lease_expires_at=bindparam("expires"))
        .execution_options(synchronize_session=False)
    )
