"""GraphQL over HTTP for runql's own clients (the runner, ``runql ps``, ``runql stop``).

Two kinds of failure are told apart because callers treat them differently:
:class:`Unreachable` (no answer, a timeout, a 5xx: try again later; running jobs keep
running) and :class:`ApiError` (the server answered and refused the request as a whole:
a bad token, an invalid document; trying again will not help).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from runql.error_codes import ErrorCode

#: One request per cycle: report finished jobs, then claim for the free slots. Mutations
#: of one document run in order, each in its own transaction (docs/runner.md).
CYCLE = """
mutation Cycle($done: [CompletionInput!]!, $claim: ClaimJobsInput!) {
  completeJobs(input: { completions: $done }) { results { jobId error { code message } } }
  claimJobs(input: $claim) {
    claims { claimToken job { id name replicaNum submissionNum spec run { id } } }
  }
}
"""

COMPLETE = """
mutation Complete($done: [CompletionInput!]!) {
  completeJobs(input: { completions: $done }) { results { jobId error { code message } } }
}
"""

CLAIM = """
mutation Claim($claim: ClaimJobsInput!) {
  claimJobs(input: $claim) {
    claims { claimToken job { id name replicaNum submissionNum spec run { id } } }
  }
}
"""

RENEW = """
mutation Renew($leases: [LeaseInput!]!, $lease: Int) {
  renewLeases(input: { leases: $leases, leaseSeconds: $lease }) {
    results { jobId mustStop error { code message } }
  }
}
"""

RUNS_PAGE = """
query Ps($project: String, $onlyActive: Boolean!, $first: Int, $watch: Boolean! = false) {
  runs(project: $project, filter: { onlyActive: $onlyActive }, first: $first) {
    eventCursor @include(if: $watch)
    edges { node {
      id name status statusMessage submittedAt
      user { name } project { name } jobCounts { done total }
    } }
  }
}
"""

STOP_RUNS = """
mutation Stop($ids: [ID!], $project: String, $names: [String!], $abort: Boolean!) {
  stopRuns(input: { runIds: $ids, project: $project, names: $names, abort: $abort }) {
    results { runId name run { status statusMessage } error { code message } }
  }
}
"""


class ClientError(Exception):
    """Base of the errors a client prints for a person."""


class Unreachable(ClientError):
    """No usable answer: connection refused, timeout, or a server error (5xx)."""


class ApiError(ClientError):
    """The server refused the request as a whole; ``codes`` are its error codes."""

    def __init__(self, message: str, codes: list[str]) -> None:
        super().__init__(message)
        self.codes = codes


def graphql_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/graphql`` both mean the API."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"--url: expected http(s)://host[:port][/graphql], got {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/graphql"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str

    @classmethod
    def from_env(cls, url: str | None, environ: dict[str, str] | None = None) -> Endpoint:
        """The API's URL from ``--url`` or ``RUNQL_URL``; the token only from
        ``RUNQL_TOKEN`` (a flag would show in ``ps``)."""
        env = os.environ if environ is None else environ
        url = url or env.get("RUNQL_URL")
        if not url:
            raise ClientError("no server: pass --url or set RUNQL_URL")
        token = env.get("RUNQL_TOKEN", "").strip()
        if not token:
            raise ClientError("no API token: set RUNQL_TOKEN (runql user create prints one)")
        return cls(graphql_url(url), token)


class Client:
    """A keep-alive HTTP connection to the API; counts the requests it sent and the
    time spent waiting for answers."""

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.requests = 0
        self.seconds = 0.0
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {endpoint.token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of the answer; raises :class:`Unreachable` or :class:`ApiError`."""
        self.requests += 1
        started = time.perf_counter()
        try:
            response = self._http.post(
                self.endpoint.url, json={"query": query, "variables": variables}
            )
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach {self.endpoint.url}: {exc or type(exc).__name__}"
            ) from exc
        finally:
            self.seconds += time.perf_counter() - started
        if response.status_code >= 500:
            raise Unreachable(f"{self.endpoint.url} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                f"{self.endpoint.url}: HTTP {response.status_code}, not a GraphQL answer",
                [],
            ) from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors or not isinstance(body, dict) or body.get("data") is None:
            errors = errors or [{"message": f"HTTP {response.status_code} without data"}]
            codes = [str((e.get("extensions") or {}).get("code", "")) for e in errors]
            text = "; ".join(str(e.get("message")) for e in errors)
            if ErrorCode.UNAUTHENTICATED in codes:
                text = f"the server refused the API token in RUNQL_TOKEN ({text})"
            raise ApiError(text, codes)
        data: dict[str, Any] = body["data"]
        return data
