"""``runql runner`` runs a DAG of real processes to its end state through ``runql serve``,
on SQLite and PostgreSQL: two runner processes, ``true``, ``sh -c 'exit 3'`` with
retries, jobs that write ``RUNQL_RESULT_FILE``, and the downstream effects of each."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.clients.helpers import finished, start_runner, statuses
from tests.processes import Server
from tests.waiting import until

pytestmark = pytest.mark.slow  # real runql serve and runner processes: see DEVELOPERS.md, Tests

RESULT = (
    'printf \'{"accuracy": 0.9, "job": "%s", "run": "%s", "submission": %s, "token": "%s"}\' '
    '"$RUNQL_JOB_ID" "$RUNQL_RUN_ID" "$RUNQL_SUBMISSION_NUM" "${RUNQL_TOKEN-unset}" '
    '> "$RUNQL_RESULT_FILE"'
)


def dag() -> list[dict[str, Any]]:
    return [
        {"name": "setup", "spec": {"cmd": ["true"]}},
        {"name": "flaky", "dependsOn": ["setup"], "retry": {"limit": 2},
         "spec": {"cmd": ["sh", "-c", "echo boom >&2; exit 3"]}},
        {"name": "after-flaky", "dependsOn": ["flaky"], "spec": {"cmd": "true"}},
        {"name": "score", "replicas": 2, "dependsOn": ["setup"], "spec": {"cmd": RESULT}},
        {"name": "report", "dependsOn": ["score"],
         "spec": {"cmd": 'test "$GREETING" = hello', "env": {"GREETING": "hello"}}},
    ]  # fmt: skip


async def test_a_dag_of_real_processes_runs_to_its_end_state(
    server: Server, new_project: Any, tmp_path: Path
) -> None:
    project = await new_project(server)
    runners = [
        start_runner(server, tmp_path, name=f"r{i}", project=project, slots=2) for i in (1, 2)
    ]
    try:
        run_id = await server.submit(project, dag())
        run = await until(lambda: finished(server, run_id), "the run to finish")
        for runner in runners:
            runner.signal(signal.SIGTERM)
        codes = [await runner.exit_code() for runner in runners]
    finally:
        for runner in runners:
            runner.kill()

    assert statuses(run) == {
        ("setup", 0, 0): "DONE",
        ("flaky", 0, 0): "FAILED",
        ("flaky", 0, 1): "FAILED",
        ("flaky", 0, 2): "FAILED",
        ("after-flaky", 0, 0): "ABORTED",
        ("score", 0, 0): "DONE",
        ("score", 1, 0): "DONE",
        ("report", 0, 0): "DONE",
    }, run
    assert (run["status"], run["terminationReason"]) == ("FAILED", "JOB_FAILED")
    jobs = {(j["name"], j["replicaNum"], j["submissionNum"]): j for j in run["jobs"]}
    for n in range(3):
        flaky = jobs["flaky", 0, n]
        assert (flaky["exitStatus"], flaky["terminationMessage"]) == (3, "exit status 3: boom")
    for replica in (0, 1):
        score = jobs["score", replica, 0]
        assert score["result"] == {
            "accuracy": 0.9,
            "job": score["id"],
            "run": run_id,
            "submission": 0,
            "token": "unset",  # the runner's token is not the job's
        }
    assert {j["runnerName"] for j in run["jobs"] if j["status"] != "ABORTED"} <= {"r1", "r2"}
    assert codes == [0, 0], [r.output() for r in runners]
    for runner in runners:
        assert '"level": "error"' not in runner.output()
