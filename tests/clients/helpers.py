"""The runner's side of the client tests: ``runql runner`` started against a ``runql
serve`` process (tests/processes.py) with short leases, and what to read off a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.processes import Process, Server, base_env, start

LEASE_SECONDS = 3  # renewals every second
GRACE_SECONDS = 1.0
#: What the client tests' servers run with: quick lease sweeps, leases as short as the
#: runners ask for, ``/metrics`` open.
SERVER_SETTINGS = {
    "RUNQL_LEASE_SWEEP_SECONDS": "0.5",
    "RUNQL_MIN_LEASE_SECONDS": "1",
    "RUNQL_METRICS": "open",
}
STOP = """mutation($ids: [ID!]!) { stopRuns(input: { runIds: $ids }) {
  results { error { code } run { status } } } }"""


@dataclass
class RunnerProcess(Process):
    """A ``runql runner``; its journal in ``state_dir``."""

    state_dir: Path


def client_env(server: Server, token: str | None = None) -> dict[str, str]:
    """What a client command (runner, ps, stop) gets: the server's URL and a token."""
    return {
        **base_env(),
        "RUNQL_URL": server.url,
        "RUNQL_TOKEN": server.token if token is None else token,
    }


def start_runner(
    server: Server,
    tmp_path: Path,
    *,
    name: str,
    project: str,
    slots: int = 4,
    lease_seconds: int = LEASE_SECONDS,
    extra: tuple[str, ...] = (),
    state_dir: Path | None = None,
) -> RunnerProcess:
    state_dir = state_dir or tmp_path / f"state-{name}"
    process = start(
        client_env(server),
        "runner", "--name", name, "--slots", str(slots), "--project", project,
        "--lease-seconds", str(lease_seconds), "--state-dir", str(state_dir),
        "--grace-seconds", str(GRACE_SECONDS), *extra,
        log=tmp_path / f"runner-{name}.log", cwd=tmp_path,
    )  # fmt: skip
    return RunnerProcess(process.process, process.log, state_dir)


def statuses(run: dict[str, Any]) -> dict[tuple[str, int, int], str]:
    """(job name, replica, submission) -> status, for every submission of a run."""
    return {(j["name"], j["replicaNum"], j["submissionNum"]): j["status"] for j in run["jobs"]}


async def finished(server: Server, run_id: str) -> dict[str, Any] | None:
    """The run, once it has ended (``None`` before)."""
    run = await server.run(run_id)
    return run if run["status"] in ("DONE", "FAILED", "TERMINATED") else None
