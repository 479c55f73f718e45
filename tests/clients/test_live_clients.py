"""``runql runner`` and ``runql ps --watch`` follow live updates instead of polling.

Their ``graphql-transport-ws`` client answers each ``next`` payload, ``None`` on a
timeout, and a refused operation or a closed socket as the clients' error types.

An idle runner holds a ``jobsReady`` subscription and sends no claim until it signals
(the server's own claim counter over a quiet period says so; the safety re-check is
raised out of the way, and polling would claim at least every 2 s), then claims a job
submitted after it went idle. Against a server that cannot upgrade to WebSocket, it says
why once and falls back to polling. ``ps --watch`` redraws when a run is submitted or
stopped with its polling interval at an hour, so only events can have redrawn it; SIGINT
or SIGTERM ends it while it waits on a quiet stream, also when it was started the way a
script starts a background job (SIGINT ignored), with status 0 and nothing on stderr.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from runql.clients.api import ApiError, Endpoint, Unreachable, graphql_url
from runql.clients.commands import EXIT_STOPPED
from runql.clients.runner.idle import MAX_SECONDS
from runql.clients.runner.live import JOBS_READY, RUN_EVENTS, LiveSocket
from runql.error_codes import ErrorCode
from tests.clients.helpers import STOP, RunnerProcess, client_env, finished, start_runner
from tests.observability.helpers import parse, values
from tests.processes import Process, Server, running, start
from tests.waiting import DEADLINE, until

pytestmark = pytest.mark.slow  # real serve, runner and ps processes: see DEVELOPERS.md, Tests

#: How long an idle runner is watched for claims: longer than polling's longest gap.
QUIET_SECONDS = MAX_SECONDS + 1.0
#: The runner's safety re-check, raised so that only a signal can wake it in a test.
NO_RECHECK = ("--recheck-seconds", "3600")
JOB = [{"name": "a", "spec": {"cmd": ["true"]}}]


async def claim_calls(server: Server) -> float:
    """claimJobs calls the server has answered, claimed or empty (``/metrics``)."""
    return sum(values(parse(await server.metrics()), "runql_claim_calls_total").values())


async def stopped(runner: RunnerProcess) -> int:
    runner.signal(signal.SIGTERM)
    return await runner.exit_code()


async def test_an_idle_runner_claims_nothing_until_jobs_ready_signals(
    server: Server, new_project: Any, tmp_path: Path
) -> None:
    project = await new_project(server)
    runner = start_runner(server, tmp_path, name="live", project=project, extra=NO_RECHECK)
    try:
        await until(
            lambda: any(e["waiting"] == "jobsReady" for e in runner.events("runner.idle")),
            "the runner to wait on jobsReady",
        )
        before = await claim_calls(server)
        await asyncio.sleep(QUIET_SECONDS)  # polling would claim at least once meanwhile
        after_quiet = await claim_calls(server)

        run_id = await server.submit(project, JOB)
        run = await until(lambda: finished(server, run_id), "the run to finish")
        code = await stopped(runner)
    finally:
        runner.kill()

    assert after_quiet == before, runner.output()
    assert [(j["status"], j["runnerName"]) for j in run["jobs"]] == [("DONE", "live")]
    assert code == 0, runner.output()
    assert [e["project"] for e in runner.events("live.connected")] == [project]
    assert runner.events("live.unavailable") == []


async def test_without_websockets_the_runner_says_why_and_polls(
    server: Server, new_project: Any, tmp_path: Path
) -> None:
    project = await new_project(server)
    plain = Server(
        server.database_url, server.token, tmp_path / "plain.log", server.settings,
        websockets=False,
    )  # fmt: skip
    async with running(plain):
        runner = start_runner(plain, tmp_path, name="polling", project=project, extra=NO_RECHECK)
        try:
            await until(lambda: runner.events("live.unavailable"), "live.unavailable")
            run_id = await server.submit(project, JOB)
            run = await until(lambda: finished(server, run_id), "the run to finish")
            code = await stopped(runner)
        finally:
            runner.kill()

    assert [(j["status"], j["runnerName"]) for j in run["jobs"]] == [("DONE", "polling")]
    assert code == 0, runner.output()
    [unavailable] = runner.events("live.unavailable")  # once, with its cause
    assert "no WebSocket here (HTTP 400 to the upgrade)" in unavailable["error"], unavailable
    assert unavailable["fallback"] == "polling"
    assert runner.events("live.connected") == []


def last_table(path: Path) -> str:
    """What ``ps --watch`` drew last (tables are separated by blank lines)."""
    return path.read_text().split("\n\n")[-1]


async def subscriptions_open(server: Server, count: int) -> bool:
    """Whether the server holds ``count`` subscriptions now (``/metrics``)."""
    samples = values(parse(await server.metrics()), "runql_subscriptions_open")
    return sum(samples.values()) == count


def start_watch(
    server: Server, project: str, directory: Path, sigint_ignored: bool = False
) -> tuple[Process, Path, Path]:
    """``runql ps --watch`` of ``project``; its polling interval is an hour, so only
    events can redraw it within a test."""
    out, err = directory / "watch.out", directory / "watch.err"
    watch = start(
        client_env(server), "ps", "--watch", "--project", project, "--interval", "3600",
        log=out, stderr=err, sigint_ignored=sigint_ignored,
    )  # fmt: skip
    return watch, out, err


async def test_ps_watch_follows_run_events(
    server: Server, new_project: Any, tmp_path: Path
) -> None:
    project = await new_project(server)
    watch, out, err = start_watch(server, project, tmp_path)
    try:
        await until(lambda: "no runs" in last_table(out), "the first table")
        run_id = await server.submit(project, JOB, name="watched")
        await until(lambda: "watched" in last_table(out), "the submitted run")
        await server.gql(STOP, {"ids": [run_id]})
        # A stopped run leaves the active list.
        await until(lambda: "no runs" in last_table(out), "the stopped run to go")
        watch.signal(signal.SIGINT)
        code = await until(lambda: watch.returncode, "ps --watch to exit")
    finally:
        watch.kill()
    assert code == EXIT_STOPPED
    assert err.read_text() == ""  # no fallback to polling, no traceback


@pytest.mark.parametrize(
    ("sig", "sigint_ignored"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT-in-a-background-job", "SIGTERM"],
)
async def test_a_signal_ends_ps_watch_waiting_on_a_quiet_stream(
    server: Server,
    new_project: Any,
    tmp_path: Path,
    sig: signal.Signals,
    sigint_ignored: bool,
) -> None:
    project = await new_project(server)  # no runs: nothing changes while it waits
    # Other tests' subscriptions are gone, so the next one is ps's.
    await until(lambda: subscriptions_open(server, 0), "no subscriptions")
    watch, out, err = start_watch(server, project, tmp_path, sigint_ignored)
    try:
        await until(lambda: "no runs" in last_table(out), "the first table")
        await until(lambda: subscriptions_open(server, 1), "its subscription")
        watch.signal(sig)
        code = await until(lambda: watch.returncode, f"ps --watch to exit on {sig.name}")
    finally:
        watch.kill()
    assert code == EXIT_STOPPED
    assert err.read_text() == ""  # no traceback


def live_socket(server: Server, token: str | None = None) -> LiveSocket:
    return LiveSocket.connect(Endpoint(graphql_url(server.url), token or server.token))


def refusal(socket: LiveSocket, query: str, variables: dict[str, Any]) -> ApiError:
    socket.subscribe(query, variables)
    with pytest.raises(ApiError) as refused:
        socket.receive(DEADLINE)
    return refused.value


async def test_the_live_client_answers_signals_timeouts_and_errors(
    server: Server, new_project: Any
) -> None:
    project = await new_project(server)
    socket = await asyncio.to_thread(live_socket, server)
    try:
        socket.subscribe(JOBS_READY, {"project": project})
        assert await asyncio.to_thread(socket.receive, 0.3) is None  # nothing is ready
        await server.submit(project, JOB)
        signal = await asyncio.to_thread(socket.receive, DEADLINE)
        forged = await asyncio.to_thread(refusal, socket, RUN_EVENTS, {"after": "forged"})
        unknown = await asyncio.to_thread(refusal, socket, JOBS_READY, {"project": "nope"})
    finally:
        socket.close()
    with pytest.raises(Unreachable, match="closed"):
        socket.receive(DEADLINE)
    stranger = await asyncio.to_thread(live_socket, server, "rql_wrong")
    try:
        refused = await asyncio.to_thread(refusal, stranger, JOBS_READY, {})
    finally:
        stranger.close()

    assert signal == {"jobsReady": {"ready": 1}}
    assert forged.codes == [ErrorCode.BAD_USER_INPUT]
    assert unknown.codes == [ErrorCode.NOT_FOUND]
    assert refused.codes == [ErrorCode.UNAUTHENTICATED]
    assert "refused the API token in RUNQL_TOKEN" in str(refused)
