"""GraphQL over WebSockets (graphql-transport-ws), spoken to a real uvicorn server.

Every operation over a socket is a request of its own: fresh loaders, the connection's
token authenticated again, the HTTP body limit, its own request id and log line. A socket
that stays open must never answer from what it read or who the caller was an operation ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import delete, func, select, update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runql.db.engine import Database
from runql.db.enums import MemberRole, RunStatus
from runql.db.models import Member, Run, User
from runql.settings import Settings
from runql.web.app import create_app
from runql.web.websocket import max_frame_bytes
from tests.factories import Factory, GraphQLClient, ProjectHandle, UserHandle

PROTOCOL = "graphql-transport-ws"
RUN_STATUS = "query($id: ID!) { run(id: $id) { status } }"
STOP = "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { run { status } } } }"
PROJECT = 'query { project(name: "vision") { name } }'
SUBMIT = """mutation($input: SubmitRunInput!) {
  submitRun(input: $input) { run { id name } }
}"""
ME = "query Me { me { name } }"


@contextlib.asynccontextmanager
async def serving(settings: Settings, db: Database) -> AsyncIterator[str]:
    """runql under uvicorn on a free 127.0.0.1 port, in this event loop; yields its ws URL."""
    app = create_app(settings, db=db)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        ws_max_size=max_frame_bytes(settings.max_body_bytes),  # as `runql serve` does
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


class Socket:
    """One graphql-transport-ws connection: ``await socket.execute(query, variables)``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def init(self, payload: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.ws.send(json.dumps(message))
        assert json.loads(await self.ws.recv()) == {"type": "connection_ack"}

    async def send(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Sends a subscribe message; returns its id."""
        op_id = str(next(self._ids))
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def result(self, op_id: str) -> dict[str, Any]:
        """The operation's single result: the ``next`` payload, or ``{"errors": ...}`` for
        an ``error`` message. Checks the operation then ends."""
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert message["id"] == op_id, message
        if message["type"] == "error":
            return {"errors": message["payload"]}
        assert message["type"] == "next", message
        assert json.loads(await asyncio.wait_for(self.ws.recv(), 10)) == {
            "id": op_id,
            "type": "complete",
        }
        payload: dict[str, Any] = message["payload"]
        return payload

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.result(await self.send(query, variables))


@contextlib.asynccontextmanager
async def socket(
    url: str, *, header_token: str | None = None, init: dict[str, Any] | None = None
) -> AsyncIterator[Socket]:
    headers = {"Authorization": f"Bearer {header_token}"} if header_token else None
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        sock = Socket(ws)
        await sock.init(init)
        yield sock


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def _member(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user = await factory.user("alice")
    project = await factory.project("vision", [(user, MemberRole.USER)])
    return user, project


async def _run_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Run)) or 0)


def _submit(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "input": {"project": "vision", "name": name, "spec": spec or {}, "jobs": [{"name": "a"}]}
    }


async def test_queries_and_mutations_execute_over_the_socket(
    db: Database, settings: Settings, factory: Factory
) -> None:
    user, _ = await _member(factory)
    async with serving(settings, db) as url, socket(url, header_token=user.token) as sock:
        me = await sock.execute(ME)
        submitted = await sock.execute(SUBMIT, _submit("over-ws"))

    assert me == {"data": {"me": {"name": "alice"}}}
    assert submitted["data"]["submitRun"]["run"]["name"] == "over-ws"
    assert await _run_count(db) == 1


async def test_a_run_read_again_on_the_same_socket_shows_its_new_state(
    db: Database, settings: Settings, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await _member(factory)
    run_id = await factory.run(project, user, status=RunStatus.RUNNING)
    variables = {"id": str(run_id)}

    async with serving(settings, db) as url, socket(url, header_token=user.token) as sock:
        before = await sock.execute(RUN_STATUS, variables)
        await gql(STOP, variables, token=user.token)
        over_http = await gql(RUN_STATUS, variables, token=user.token)
        after = await sock.execute(RUN_STATUS, variables)

    assert before == {"data": {"run": {"status": "RUNNING"}}}
    assert over_http["data"]["run"]["status"] != "RUNNING"
    assert after == over_http


async def test_a_viewer_removed_from_the_project_loses_it_on_the_open_socket(
    db: Database, settings: Settings, factory: Factory
) -> None:
    user, project = await _member(factory)
    run_id = await factory.run(project, user)
    variables = {"id": str(run_id)}

    async with serving(settings, db) as url, socket(url, header_token=user.token) as sock:
        assert (await sock.execute(RUN_STATUS, variables))["data"]["run"] is not None
        assert await sock.execute(PROJECT) == {"data": {"project": {"name": "vision"}}}
        async with db.write() as session:
            await session.execute(delete(Member).where(Member.user_id == user.id))
        run = await sock.execute(RUN_STATUS, variables)
        submitted = await sock.execute(SUBMIT, _submit("after-removal"))

    assert run == {"data": {"run": None}}
    assert codes(submitted) == ["NOT_FOUND"]
    assert await _run_count(db) == 1


async def test_a_message_over_the_body_limit_is_refused_and_nothing_runs(
    db: Database, settings: Settings, factory: Factory
) -> None:
    limit = 4_000
    small = dataclasses.replace(settings, max_body_bytes=limit)
    user, _ = await _member(factory)
    big = _submit("too-big", {"blob": "x" * 2 * limit})  # well under max_json_bytes

    async with serving(small, db) as url, socket(url, header_token=user.token) as sock:
        refused = await sock.execute(SUBMIT, big)
        still_open = await sock.execute(ME)

    [error] = refused["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == limit
    assert error["extensions"]["setting"] == "RUNQL_MAX_BODY_BYTES"
    assert str(limit) in error["message"] and "RUNQL_MAX_BODY_BYTES" in error["message"]
    assert await _run_count(db) == 0
    assert still_open == {"data": {"me": {"name": "alice"}}}


@pytest.mark.parametrize("where", ["header", "connection_init"])
async def test_the_token_is_checked_for_every_operation(
    db: Database, settings: Settings, factory: Factory, where: str
) -> None:
    user, _ = await _member(factory)
    async with serving(settings, db) as url:
        if where == "header":
            opened = socket(url, header_token=user.token)
        else:
            opened = socket(url, init={"Authorization": f"Bearer {user.token}"})
        async with opened as sock:
            valid = await sock.execute(ME)
            async with db.write() as session:  # the token is revoked while the socket is open
                await session.execute(
                    update(User).where(User.id == user.id).values(token_hash="revoked")
                )
            first = await sock.execute(ME)
            second = await sock.execute(SUBMIT, _submit("revoked"))

    assert valid == {"data": {"me": {"name": "alice"}}}
    assert codes(first) == codes(second) == ["UNAUTHENTICATED"]
    assert await _run_count(db) == 0


async def test_an_invalid_token_gets_unauthenticated_per_operation(
    db: Database, settings: Settings, factory: Factory
) -> None:
    await _member(factory)
    async with (
        serving(settings, db) as url,
        socket(url, init={"Authorization": "Bearer nope"}) as sock,
    ):
        answers = [await sock.execute(ME) for _ in range(2)]
        public = await sock.execute("{ __typename }")

    assert [codes(a) for a in answers] == [["UNAUTHENTICATED"], ["UNAUTHENTICATED"]]
    assert public == {"data": {"__typename": "Query"}}


async def test_connection_init_token_wins_over_the_handshake_header(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await _member(factory)
    bob = await factory.user("bob")
    async with (
        serving(settings, db) as url,
        socket(
            url, header_token=bob.token, init={"Authorization": f"Bearer {alice.token}"}
        ) as sock,
    ):
        me = await sock.execute(ME)

    assert me == {"data": {"me": {"name": "alice"}}}


async def test_every_operation_has_its_own_request_id_and_log_line(
    db: Database, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    user, _ = await _member(factory)
    with caplog.at_level(logging.INFO, logger="runql.request"):
        async with serving(settings, db) as url, socket(url, header_token=user.token) as sock:
            await sock.execute(ME)
            await sock.execute(ME)

    lines = [r for r in caplog.records if r.name == "runql.request"]
    assert [(r.operation_name, r.path) for r in lines] == [  # type: ignore[attr-defined]
        ("Me", "/graphql"),
        ("Me", "/graphql"),
    ]
    assert len({r.request_id for r in lines}) == 2  # type: ignore[attr-defined]


async def _closed(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "valid JSON", id="nested-too-deeply"),
        pytest.param("[]", "JSON object", id="not-an-object"),
    ],
)
async def test_a_message_that_cannot_be_decoded_closes_the_socket_as_the_protocol_says(
    db: Database, settings: Settings, factory: Factory, message: str, reason: str
) -> None:
    user, _ = await _member(factory)
    async with serving(settings, db) as url, socket(url, header_token=user.token) as sock:
        await sock.ws.send(message)
        code, why = await _closed(sock.ws)

    assert code == 4400
    assert reason in why


async def test_a_message_far_over_the_limit_is_not_read(
    db: Database, settings: Settings, factory: Factory
) -> None:
    limit = 4_000
    small = dataclasses.replace(settings, max_body_bytes=limit)
    user, _ = await _member(factory)
    huge = _submit("huge", {"blob": "x" * max_frame_bytes(limit)})

    async with serving(small, db) as url, socket(url, header_token=user.token) as sock:
        await sock.send(SUBMIT, huge)
        code, _ = await _closed(sock.ws)

    assert code == 1009  # message too big
    assert await _run_count(db) == 0


async def test_the_legacy_graphql_ws_protocol_has_the_same_limit_and_a_log_line_per_operation(
    db: Database, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """graphql-ws carries subscriptions only (strawberry refuses queries and mutations
    there): each ``start`` is still a request of its own, held to the body limit."""
    limit = 4_000
    small = dataclasses.replace(settings, max_body_bytes=limit)
    user, _ = await _member(factory)
    headers = {"Authorization": f"Bearer {user.token}"}

    async def start(ws: ClientConnection, op_id: str, query: str, variables: Any) -> Any:
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": op_id, "type": "start", "payload": payload}))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))

    with caplog.at_level(logging.INFO, logger="runql.request"):
        async with (
            serving(small, db) as url,
            connect(url, subprotocols=["graphql-ws"], additional_headers=headers) as ws,  # type: ignore[list-item]
        ):
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            query = await start(ws, "1", ME, None)
            refused = await start(ws, "2", SUBMIT, _submit("big", {"blob": "x" * 2 * limit}))

    assert (query["type"], query["payload"]["message"]) == ("error", "queries are not allowed")
    assert refused["type"] == "error"
    assert refused["payload"]["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "limit": limit,
        "actual": refused["payload"]["extensions"]["actual"],
        "setting": "RUNQL_MAX_BODY_BYTES",
    }
    assert await _run_count(db) == 0
    lines = [r for r in caplog.records if r.name == "runql.request"]
    assert len({r.request_id for r in lines}) == len(lines) == 2  # type: ignore[attr-defined]
    assert lines[1].error_codes == ["LIMIT_EXCEEDED"]  # type: ignore[attr-defined]


async def test_an_operation_meets_the_same_context_and_limits_over_http_and_the_socket(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """Both transports build an operation's context with one function
    (``runql.resolvers.context.operation_context``): over HTTP and over a socket of the
    same server, a document sees the same viewer and meets the same limits (an argument
    limit and a document limit)."""
    limited = dataclasses.replace(settings, max_page_size=3, max_query_depth=4)
    user, _ = await _member(factory)
    over_page = "{ runs(first: 4) { edges { node { name } } } }"
    too_deep = "{ runs { edges { node { project { name } } } } }"
    answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    async with serving(limited, db) as url, socket(url, header_token=user.token) as sock:
        base = url.replace("ws://", "http://").removesuffix("/graphql")
        async with httpx.AsyncClient(base_url=base) as http:
            for query in (ME, over_page, too_deep):
                response = await http.post(
                    "/graphql",
                    json={"query": query},
                    headers={"Authorization": f"Bearer {user.token}"},
                )
                answers[query] = (response.json(), await sock.execute(query))
    for query, (over_http, over_ws) in answers.items():
        # (over HTTP a request error still carries ``data: null``, as JSON clients expect)
        assert over_http.get("errors") == over_ws.get("errors"), query
        assert over_http.get("data") == over_ws.get("data"), query
    assert answers[ME][1] == {"data": {"me": {"name": "alice"}}}
    assert codes(answers[over_page][1]) == codes(answers[too_deep][1]) == ["LIMIT_EXCEEDED"]
