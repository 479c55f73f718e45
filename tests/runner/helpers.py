"""GraphQL documents and small helpers shared by the runner API tests (tests/runner/)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from runql.db.engine import Database
from runql.db.models import Job, Run
from tests.factories import GraphQLClient

CLAIM = """
mutation Claim($input: ClaimJobsInput!) {
  claimJobs(input: $input) {
    claims { claimToken leaseExpiresAt
      job { id name jobNum replicaNum submissionNum status runnerName startedAt spec } }
  }
}
"""

RENEW = """
mutation Renew($input: RenewLeasesInput!) {
  renewLeases(input: $input) {
    results { jobId mustStop leaseExpiresAt job { id status } error { code message } }
  }
}
"""

COMPLETE = """
mutation Complete($input: CompleteJobsInput!) {
  completeJobs(input: $input) {
    results { jobId job { id status terminationReason terminationMessage exitStatus }
      error { code message } }
  }
}
"""

RUN = """
query($id: ID!) {
  run(id: $id) {
    status statusMessage terminationReason finishedAt
    jobs(submissionsLimit: 10) {
      name replicaNum jobNum submissionNum status terminationReason terminationMessage
    }
  }
}
"""


async def claim(
    gql: GraphQLClient, token: str, limit: int = 10, *, runner: str = "r1", **extra: Any
) -> list[dict[str, Any]]:
    body = await gql(CLAIM, {"input": {"runnerName": runner, "limit": limit, **extra}}, token=token)
    claims: list[dict[str, Any]] = body["data"]["claimJobs"]["claims"]
    return claims


def completion(c: dict[str, Any], status: str = "DONE", **extra: Any) -> dict[str, Any]:
    """A completion item for a claim returned by ``claimJobs``."""
    return {"jobId": c["job"]["id"], "claimToken": c["claimToken"], "status": status, **extra}


async def complete(
    gql: GraphQLClient, token: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    body = await gql(COMPLETE, {"input": {"completions": items}}, token=token)
    results: list[dict[str, Any]] = body["data"]["completeJobs"]["results"]
    return results


async def renew(
    gql: GraphQLClient, token: str, claims: list[dict[str, Any]], **extra: Any
) -> list[dict[str, Any]]:
    leases = [{"jobId": c["job"]["id"], "claimToken": c["claimToken"]} for c in claims]
    body = await gql(RENEW, {"input": {"leases": leases, **extra}}, token=token)
    results: list[dict[str, Any]] = body["data"]["renewLeases"]["results"]
    return results


async def run_state(gql: GraphQLClient, token: str, run_id: int) -> dict[str, Any]:
    body = await gql(RUN, {"id": str(run_id)}, token=token)
    run: dict[str, Any] = body["data"]["run"]
    return run


async def job_rows(db: Database, run_id: int) -> list[Job]:
    """Every submission of a run, in (job_num, replica_num, submission_num) order."""
    async with db.read() as session:
        rows = await session.scalars(
            select(Job)
            .where(Job.run_id == run_id)
            .order_by(Job.job_num, Job.replica_num, Job.submission_num)
        )
        return list(rows)


async def run_row(db: Database, run_id: int) -> Run:
    async with db.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        return run
