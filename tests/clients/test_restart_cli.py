"""``runql restart`` with a real ``runql runner``: a run a -> b whose a fails for good
(no retries) is restarted from the command line and runs to DONE with a re-run of a
only, on SQLite and PostgreSQL; per-run results and the exit status of the command."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.clients.helpers import client_env, finished, start_runner, statuses
from tests.processes import Server
from tests.waiting import until


def runql(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = client_env(server)
    return subprocess.run(
        [sys.executable, "-m", "runql.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_a_failed_run_restarted_from_the_command_line_runs_to_done(
    server: Server, new_project: Any, tmp_path: Path
) -> None:
    project = await new_project(server)
    flag = tmp_path / "upstream-ready"
    jobs = [
        {"name": "a", "spec": {"cmd": ["test", "-f", str(flag)]}},  # fails until the flag
        {"name": "b", "dependsOn": ["a"], "spec": {"cmd": ["true"]}},
    ]
    runner = start_runner(server, tmp_path, name="r1", project=project, slots=2)
    try:
        run_id = await server.submit(project, jobs, name="fails-once")
        failed = await until(lambda: finished(server, run_id), "the run to fail")
        assert (failed["status"], statuses(failed)) == (
            "FAILED",
            {("a", 0, 0): "FAILED", ("b", 0, 0): "ABORTED"},
        )
        flag.touch()

        restarted = await asyncio.to_thread(runql, server, "restart", run_id, "999999")
        by_name = await asyncio.to_thread(
            runql, server, "restart", "--project", project, "fails-once"
        )
        run = await until(lambda: finished(server, run_id), "the restarted run to finish")
        runner.signal(signal.SIGTERM)
        code = await runner.exit_code()
    finally:
        runner.kill()

    assert restarted.returncode == 1, restarted.stderr  # the unknown run
    mine, unknown = restarted.stdout.splitlines()
    assert mine == f"fails-once ({run_id}): SUBMITTED, attempt 1 (restarted by robot)"
    assert unknown.startswith("999999: NOT_FOUND: ")
    # Restarted already: not finished (or, if the runner was quick, DONE: nothing failed).
    assert by_name.returncode == 1
    assert by_name.stdout.startswith(f"fails-once ({run_id}): INVALID_STATE: ")
    assert (run["status"], statuses(run)) == (
        "DONE",
        {
            ("a", 0, 0): "FAILED",
            ("a", 0, 1): "DONE",
            ("b", 0, 0): "ABORTED",
            ("b", 0, 1): "DONE",
        },
    )
    assert code == 0, runner.output()


async def test_restart_refuses_a_name_without_project(server: Server) -> None:
    refused = await asyncio.to_thread(runql, server, "restart", "fails-once")

    assert (refused.returncode, refused.stdout) == (2, "")
    assert "pass --project" in refused.stderr
