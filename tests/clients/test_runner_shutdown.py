"""``runql runner`` never loses a completion, and shuts down as documented.

* The server goes away while jobs finish: the completions wait in the journal; the runner
  keeps trying with back-off (and delivers when the server is back), or is killed with
  ``SIGKILL`` and a new runner on the same ``--state-dir`` delivers them: every completion
  arrives exactly once (no job runs twice, nothing is retried, downstream runs once).
* ``SIGTERM`` drains: no new claims, running jobs get ``--drain-seconds``, then are
  stopped and reported (exit status 4). A second signal stops at once (130); what was
  killed is reported by the next start.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from runql.clients.runner.journal import FILE_NAME, read_pending
from tests.clients.helpers import SERVER_SETTINGS, finished, start_runner, statuses
from tests.processes import Server, serving
from tests.waiting import until

pytestmark = pytest.mark.slow  # real runql serve and runner processes: see DEVELOPERS.md, Tests

WAITERS = 4


def gated(tmp_path: Path, tag: str = "$RUNQL_JOB_ID") -> str:
    """A job that runs until ``go`` exists, then notes that it ran."""
    return f'while [ ! -e {tmp_path}/go ]; do sleep 0.05; done; echo "{tag}" >> {tmp_path}/ran'


async def running_jobs(server: Server, run_id: str, count: int) -> bool:
    run = await server.run(run_id)
    return sum(j["status"] == "RUNNING" for j in run["jobs"]) == count


@pytest.mark.parametrize(
    ("backend", "crash"),
    [("sqlite", False), ("postgresql", True)],
    ids=["sqlite-outage", "postgresql-sigkill"],
)
async def test_every_completion_arrives_exactly_once_across_an_outage(
    backend: str, crash: bool, tmp_path: Path
) -> None:
    async with serving(backend, tmp_path, "outage", settings=SERVER_SETTINGS) as server:
        runner = start_runner(
            server, tmp_path, name="first", project="outage", slots=WAITERS,
            lease_seconds=600,  # the outage must not outlast a lease, however slow
        )  # fmt: skip
        try:
            run_id = await server.submit(
                "outage",
                [{"name": "wait", "replicas": WAITERS, "spec": {"cmd": gated(tmp_path)}},
                 {"name": "after", "dependsOn": ["wait"],
                  "spec": {"cmd": gated(tmp_path, "after")}}],
            )  # fmt: skip
            await until(lambda: running_jobs(server, run_id, WAITERS), "claims")

            await server.stop()
            (tmp_path / "go").touch()
            journal = runner.state_dir / FILE_NAME
            await until(lambda: len(read_pending(journal)) == WAITERS, "completions journalled")
            assert runner.process.poll() is None, runner.output()  # waits, backing off
            if crash:
                runner.kill()
                assert len(read_pending(journal)) == WAITERS

            await server.start()  # same database, same port
            if crash:
                runner = start_runner(
                    server, tmp_path, name="second", project="outage", slots=WAITERS,
                    state_dir=runner.state_dir,
                )  # fmt: skip
            run = await until(lambda: finished(server, run_id), "the run to finish")
            runner.signal(signal.SIGTERM)
            code = await runner.exit_code()
        finally:
            runner.kill()

    assert statuses(run) == {
        **{("wait", r, 0): "DONE" for r in range(WAITERS)},
        ("after", 0, 0): "DONE",
    }, run
    ran = (tmp_path / "ran").read_text().split()
    assert sorted(ran) == sorted([j["id"] for j in run["jobs"] if j["name"] == "wait"] + ["after"])
    assert code == 0, runner.output()
    output = runner.output()
    assert "completion.dropped" not in output
    assert ('"event": "journal.resend", "completions": 4' in output) == crash
    assert '"event": "server.unreachable"' in output or crash
    assert read_pending(runner.state_dir / FILE_NAME) == {}


async def test_sigterm_drains_then_stops_what_still_runs(
    sqlite_server: Server, new_project: Any, tmp_path: Path
) -> None:
    server = sqlite_server
    project = await new_project(server)
    runner = start_runner(
        server, tmp_path, name="drainer", project=project, extra=("--drain-seconds", "3")
    )
    try:
        run_id = await server.submit(
            project,
            [{"name": "finishes", "spec": {"cmd": gated(tmp_path)}},
             {"name": "outlasts", "spec": {"cmd": ["sleep", "60"]}}],
        )  # fmt: skip
        await until(lambda: running_jobs(server, run_id, 2), "claims")
        runner.signal(signal.SIGTERM)
        await until(lambda: "runner.draining" in runner.output(), "the drain")
        (tmp_path / "go").touch()  # at once: the job's finish must fall inside the drain
        late = await server.submit(project, [{"name": "late", "spec": {"cmd": ["true"]}}])
        code = await runner.exit_code()
        run = await until(lambda: finished(server, run_id), "the run to end")
        late_run = await server.run(late)
    finally:
        runner.kill()

    assert code == 4, runner.output()  # drained, but a job had to be stopped
    jobs = {j["name"]: (j["status"], j["terminationMessage"]) for j in run["jobs"]}
    assert jobs == {
        "finishes": ("DONE", None),
        "outlasts": ("FAILED", "stopped: the runner shut down: killed by SIGTERM"),
    }
    assert statuses(late_run) == {("late", 0, 0): "SUBMITTED"}  # nothing claimed after SIGTERM


async def test_a_second_signal_stops_at_once_and_the_next_start_reports(
    sqlite_server: Server, new_project: Any, tmp_path: Path
) -> None:
    server = sqlite_server
    project = await new_project(server)
    runner = start_runner(server, tmp_path, name="hasty", project=project)
    try:
        run_id = await server.submit(project, [{"name": "long", "spec": {"cmd": "sleep 60"}}])
        await until(lambda: running_jobs(server, run_id, 1), "the claim")
        runner.signal(signal.SIGINT)
        await until(lambda: "runner.draining" in runner.output(), "the drain")
        runner.signal(signal.SIGINT)
        code = await runner.exit_code()
        pending = read_pending(runner.state_dir / FILE_NAME)
        again = start_runner(
            server, tmp_path, name="again", project=project, state_dir=runner.state_dir
        )
        try:
            run = await until(lambda: finished(server, run_id), "the report")
        finally:
            again.kill()
    finally:
        runner.kill()

    assert code == 130, runner.output()
    assert [c["status"] for c in pending.values()] == ["FAILED"]
    [job] = run["jobs"]
    assert (job["status"], job["exitStatus"], job["terminationMessage"]) == (
        "FAILED",
        137,
        "stopped: a second signal: killed by SIGKILL",
    )
