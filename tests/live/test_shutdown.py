"""Stopping ``runql serve`` (SIGTERM) while WebSocket subscribers are connected and events
are flowing: the sockets closing under their subscriptions is expected, so it writes no
traceback, and whatever the server does write to stderr is a JSON log line (libraries'
warnings and uvicorn's included: ``runql.observe.logs.configure_logging``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect as StarletteDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteGone
from strawberry.http.exceptions import WebSocketDisconnected as StrawberryDisconnected

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.migrate import upgrade
from runql.observe.logs import JsonFormatter
from runql.web.websocket import GraphQLWSHandler, SocketClosed, TransportWSHandler
from tests.conftest import BACKENDS
from tests.factories import Factory
from tests.live.helpers import JOBS_READY, RUN_EVENTS, SUBMIT, Socket, socket, submit_input
from tests.processes import STOP_SECONDS, fresh_database, serving_process

STARTUP_SECONDS = 30.0
SOCKETS = 4
SUBSCRIPTIONS_EACH = 30  # runEvents on each, plus a jobsReady


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def _ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            assert process.returncode is None, _text(log)
            with contextlib.suppress(httpx.TransportError):
                ready = await client.get("/readyz")
                if ready.status_code == 200 and ready.json()["eventListener"]["state"] == "ok":
                    return
            assert time.monotonic() < deadline, _text(log)
            await asyncio.sleep(0.1)


async def _submitting(url: str, token: str) -> None:
    """Submits runs until cancelled (and on through the server going away): events keep
    flowing to the subscribers while the server stops."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            body = {"query": SUBMIT, "variables": submit_input("ml")}
            try:
                await client.post("/graphql", json=body, headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stopping_with_subscribers_writes_only_json_lines(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "shutdown") as database_url:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "RUNQL_DATABASE_URL": database_url,
            "RUNQL_SECRET_KEY": "shutdown-test",
            "RUNQL_EVENT_POLL_SECONDS": "0.02",
            "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION": "100",
        }
        db = Database(database_url)
        try:
            await upgrade(db)
            factory = Factory(db)
            alice = await factory.user("alice", admin=True)
            await factory.project("ml", [(alice, MemberRole.ADMIN)])
        finally:
            await db.dispose()
        stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
        async with serving_process(env, stdout, workers=1, stderr=stderr) as (url, process):
            await _ready(url, process, stderr)
            ws_url = url.replace("http://", "ws://") + "/graphql"
            async with contextlib.AsyncExitStack() as sockets:
                opened: list[tuple[Socket, str]] = []
                for _ in range(SOCKETS):
                    ws = await sockets.enter_async_context(socket(ws_url, alice.token))
                    await ws.subscribe(JOBS_READY)
                    opened += [
                        (ws, await ws.subscribe(RUN_EVENTS)) for _ in range(SUBSCRIPTIONS_EACH)
                    ]
                submitters = [asyncio.create_task(_submitting(url, alice.token)) for _ in range(8)]
                try:
                    for ws, op in opened:  # every subscription is live and streaming
                        assert (await ws.next(op))["runEvents"]["kind"] == "RUN_SUBMITTED"
                    process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), STOP_SECONDS)
                    except TimeoutError:
                        tail = "\n".join(_text(stderr).splitlines()[-15:])
                        pytest.fail(f"runql serve did not stop within {STOP_SECONDS} s:\n{tail}")
                finally:
                    for submitter in submitters:
                        submitter.cancel()
                    await asyncio.gather(*submitters, return_exceptions=True)
        lines = stderr.read_text(errors="replace").splitlines()
    assert any('"WS"' in line for line in lines)  # the subscriptions' own log lines
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not_json == [], "\n".join(not_json[:40])
    # A socket closed under a subscription is no error: no traceback through a send. (An
    # unrelated failure, say the busy shared PostgreSQL refusing a connection, may still
    # log one: as JSON, which is the point above.)
    entries = [json.loads(line) for line in lines]
    closed = [e for e in entries if "send_message" in e.get("traceback", "")]
    assert closed == [], "\n".join(f"{e['message']}\n{e['traceback']}" for e in closed[:2])
    assert not [e for e in entries if e["message"] == "Exception in worker task"]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class _GoneSocket:
    """A socket adapter whose every send fails the way ``error`` says it closed."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def send_json(self, message: object) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        StarletteDisconnect(code=1006),  # starlette saw the server's send fail
        StarletteGone('Cannot call "send" once a close message has been sent.'),
        StrawberryDisconnected(),
        ConnectionResetError("the server dropped the connection"),
    ],
    ids=["disconnect", "after-close", "strawberry", "os-error"],
)
async def test_a_send_on_a_closed_socket_ends_the_operation_quietly(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """The mechanism under the test above, for each way a closed socket shows: the send
    raises ``SocketClosed``, which strawberry's hook does not log."""
    for handler_class in (TransportWSHandler, GraphQLWSHandler):
        handler: Any = handler_class.__new__(handler_class)
        handler.websocket = _GoneSocket(error)
        with pytest.raises(SocketClosed):
            await handler.send_message({"type": "next", "id": "1", "payload": {"data": {}}})
        with caplog.at_level(logging.DEBUG):
            await handler.handle_task_exception(SocketClosed("gone"))
        assert caplog.records == []


async def test_an_unexpected_operation_error_is_one_json_line_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler: Any = TransportWSHandler.__new__(TransportWSHandler)
    with caplog.at_level(logging.ERROR, logger="runql.web.websocket"):
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            await handler.handle_task_exception(bug)
    [record] = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert line["logger"] == "runql.web.websocket" and line["level"] == "ERROR"
    assert "KeyError: 'a bug'" in line["traceback"]
