"""Stopping ``runql serve`` (SIGTERM) while WebSocket subscribers are connected and events
are flowing: the sockets closing under their subscriptions is expected, so it writes no
traceback, and whatever the server does write to stderr is a JSON log line (libraries'
warnings and uvicorn's included: ``runql.observe.logs.configure_logging``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect as StarletteDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteGone
from strawberry.http.exceptions import WebSocketDisconnected as StrawberryDisconnected

from runql.observe.logs import JsonFormatter
from runql.web.websocket import GraphQLWSHandler, SocketClosed, TransportWSHandler
from tests.conftest import BACKENDS
from tests.live.helpers import JOBS_READY, RUN_EVENTS, SUBMIT, submit_input
from tests.processes import Server, fresh_database, prepare_database
from tests.waiting import DEADLINE, until
from tests.wsclient import Socket, socket

#: How long a stopping server may take with its sockets closing (room for a loaded machine).
STOP_SECONDS = DEADLINE
SOCKETS = 4
SUBSCRIPTIONS_EACH = 30  # runEvents on each, plus a jobsReady


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


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
        token = await prepare_database(database_url, "ml", user="alice")
        stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
        settings = {
            "RUNQL_LOG_LEVEL": "INFO",  # the subscriptions' own lines too
            "RUNQL_EVENT_POLL_SECONDS": "0.02",
            "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION": "100",
        }
        server = Server(database_url, token, stdout, settings, stderr=stderr)
        await server.start()
        try:
            async with contextlib.AsyncExitStack() as sockets:
                opened: list[tuple[Socket, str]] = []
                for _ in range(SOCKETS):
                    ws = await sockets.enter_async_context(socket(server.ws_url, token))
                    await ws.subscribe(JOBS_READY)
                    opened += [
                        (ws, await ws.subscribe(RUN_EVENTS)) for _ in range(SUBSCRIPTIONS_EACH)
                    ]
                submitters = [asyncio.create_task(_submitting(server.url, token)) for _ in range(8)]
                try:
                    for ws, op in opened:  # every subscription is live and streaming
                        assert (await ws.next(op))["runEvents"]["kind"] == "RUN_SUBMITTED"
                    assert server.process is not None
                    server.process.signal(signal.SIGTERM)
                    try:
                        await until(
                            lambda: server.process and server.process.returncode is not None,
                            "runql serve to stop",
                            within=STOP_SECONDS,
                        )
                    except AssertionError:
                        tail = "\n".join(_text(stderr).splitlines()[-15:])
                        pytest.fail(f"runql serve did not stop within {STOP_SECONDS} s:\n{tail}")
                finally:
                    for submitter in submitters:
                        submitter.cancel()
                    await asyncio.gather(*submitters, return_exceptions=True)
        finally:
            await server.stop()
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
