"""``runql runner`` and the processes it runs: stopping a run kills its process groups
(SIGTERM once a renewal says the run is stopping, SIGKILL a grace period later); a spec
without ``cmd`` fails that job, not the runner; output with NUL bytes and invalid UTF-8
makes a clean message; a job's ``timeoutSeconds`` stops it."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.clients.helpers import STOP, finished, start_runner, statuses
from tests.processes import Server
from tests.waiting import until

pytestmark = pytest.mark.slow  # real runql serve and runner processes: see DEVELOPERS.md, Tests


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie left for an init that does not reap counts as
    gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def pids(directory: Path, *names: str) -> list[int] | None:
    files = [directory / n for n in names]
    if not all(f.exists() and f.read_text().strip() for f in files):
        return None
    return [int(f.read_text()) for f in files]


async def test_stopping_a_run_kills_its_jobs_process_groups(
    sqlite_server: Server, new_project: Any, tmp_path: Path
) -> None:
    server = sqlite_server
    project = await new_project(server)
    # Each job's shell starts a `sleep 600` child (it outlives every wait of the test) and
    # waits for it: the stop must reach the whole group. The second job ignores SIGTERM
    # (and so does its child): SIGKILL after the grace period.
    polite = f"sleep 600 & echo $! > {tmp_path}/polite.child; echo $$ > {tmp_path}/polite; wait"
    stubborn = (
        f"trap '' TERM; sleep 600 & echo $! > {tmp_path}/stubborn.child; "
        f"echo $$ > {tmp_path}/stubborn; wait"
    )
    runner = start_runner(server, tmp_path, name="stopper", project=project)
    try:
        run_id = await server.submit(
            project,
            [{"name": "polite", "spec": {"cmd": polite}},
             {"name": "stubborn", "spec": {"cmd": stubborn}}],
        )  # fmt: skip
        processes = await until(
            lambda: pids(tmp_path, "polite", "polite.child", "stubborn", "stubborn.child"),
            "both jobs to start",
        )
        stop = await server.gql(STOP, {"ids": [run_id]})
        assert stop["stopRuns"]["results"][0]["error"] is None

        # Renewals come every lease third; then SIGTERM, and SIGKILL a grace period later.
        # (How soon is the runner's promise, not a pass/fail timing: a loaded machine
        # stretches it. The children sleep far longer than the wait.)
        await until(lambda: all(map(gone, processes)), "the jobs' processes to go")
        run = await until(lambda: finished(server, run_id), "the run to end")
    finally:
        runner.kill()
        for pid in pids(tmp_path, "polite", "polite.child", "stubborn", "stubborn.child") or []:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)

    assert sorted(e["name"] for e in runner.events("job.stopping")) == ["polite", "stubborn"]
    assert statuses(run) == {("polite", 0, 0): "TERMINATED", ("stubborn", 0, 0): "TERMINATED"}
    assert run["status"] == "TERMINATED"
    messages = {j["name"]: j["terminationMessage"] for j in run["jobs"]}
    assert messages["polite"].startswith("stopped: the run is stopping: killed by SIGTERM")
    assert messages["stubborn"].startswith("stopped: the run is stopping: killed by SIGKILL")


async def test_bad_specs_and_bad_bytes_fail_their_job_not_the_runner(
    sqlite_server: Server, new_project: Any, tmp_path: Path
) -> None:
    server = sqlite_server
    project = await new_project(server)
    noisy = "printf 'out\\000\\377' ; printf 'bad\\000\\377\\376 utf8 \\033[31mred\\n' >&2; exit 1"
    runner = start_runner(server, tmp_path, name="specs", project=project)
    try:
        run_id = await server.submit(
            project,
            [
                {"name": "no-cmd", "spec": {"image": "x"}},
                {"name": "bad-cmd", "spec": {"cmd": 5}},
                {"name": "bad-env", "spec": {"cmd": "true", "env": {"A": [1]}}},
                {"name": "missing", "spec": {"cmd": ["/nonexistent/program"]}},
                {"name": "no-dir", "spec": {"cmd": ["true"], "cwd": "/nonexistent/dir"}},
                {"name": "noisy", "spec": {"cmd": noisy}},
                {"name": "slow", "spec": {"cmd": ["sleep", "60"], "timeoutSeconds": 0.5}},
                {"name": "bad-result", "spec": {"cmd": 'echo "[1]" > "$RUNQL_RESULT_FILE"'}},
            ],
        )
        run = await until(lambda: finished(server, run_id), "the run to finish")
        # The runner is still serving: a good run after the bad one is done.
        good = await server.submit(project, [{"name": "fine", "spec": {"cmd": ["true"]}}])
        after = await until(lambda: finished(server, good), "the next run")
        runner.signal(signal.SIGTERM)
        code = await runner.exit_code()
    finally:
        runner.kill()

    jobs = {j["name"]: (j["status"], j["exitStatus"], j["terminationMessage"]) for j in run["jobs"]}
    assert jobs == {
        "no-cmd": (
            "FAILED", None,
            "spec.cmd: missing: give an argv list of strings or a string for /bin/sh -c",
        ),
        "bad-cmd": ("FAILED", None, "spec.cmd: expected an argv list or a string, got int"),
        "bad-env": (
            "FAILED", None, "spec.env.A: expected a string, number or boolean, got list"
        ),
        "missing": (
            "FAILED", 127,
            "cannot start: spec.cmd[0]: no such file or directory: /nonexistent/program",
        ),
        "no-dir": (
            "FAILED", 127, "cannot start: spec.cwd: no such file or directory: /nonexistent/dir"
        ),
        "noisy": ("FAILED", 1, "exit status 1: bad\ufffd\ufffd\ufffd utf8 \ufffd[31mred"),
        "slow": ("FAILED", 143, "timed out after 0.5 s (spec.timeoutSeconds): killed by SIGTERM"),
        "bad-result": ("FAILED", 0, "RUNQL_RESULT_FILE: expected a JSON object, got list"),
    }, run["jobs"]  # fmt: skip
    assert after["status"] == "DONE"
    assert code == 0, runner.output()
    noisy_id = next(j["id"] for j in run["jobs"] if j["name"] == "noisy")
    logs = runner.state_dir / "logs"
    assert (logs / f"job-{noisy_id}.out").read_bytes() == b"out\x00\xff"  # kept as written
    assert (logs / f"job-{noisy_id}.err").read_bytes() == b"bad\x00\xff\xfe utf8 \x1b[31mred\n"
