"""GraphQL over WebSockets (graphql-transport-ws), spoken to a real uvicorn server.

Every operation over a socket is a request of its own: fresh loaders, the connection's
token authenticated again, the HTTP body limit, its own request id and log line. A socket
that stays open must never answer from what it read or who the caller was an operation ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from websockets.asyncio.client import ClientConnection, connect

from runql.db.engine import Database
from runql.db.enums import RunStatus
from runql.db.models import Member, Run, User
from runql.settings import Settings
from runql.web.websocket import max_frame_bytes
from tests.factories import Factory, GraphQLClient
from tests.inloop import serving
from tests.waiting import DEADLINE
from tests.wsclient import Socket, codes, socket

RUN_STATUS = "query($id: ID!) { run(id: $id) { status } }"
STOP = "mutation($id: ID!) { stopRuns(input: {runIds: [$id]}) { results { run { status } } } }"
PROJECT = 'query { project(name: "vision") { name } }'
SUBMIT = """mutation($input: SubmitRunInput!) {
  submitRun(input: $input) { run { id name } }
}"""
ME = "query Me { me { name } }"
#: The body limit of the tests of limits: small, so that a message can be over it.
LIMIT = 4_000


async def _run_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Run)) or 0)


@contextlib.asynccontextmanager
async def _connected(settings: Settings, db: Database, token: str) -> AsyncIterator[Socket]:
    """A socket to runql under uvicorn, ``token`` in the handshake's Authorization."""
    async with serving(settings, db) as server, socket(server.ws_url, header_token=token) as sock:
        yield sock


def _submit(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "input": {"project": "vision", "name": name, "spec": spec or {}, "jobs": [{"name": "a"}]}
    }


async def test_queries_and_mutations_execute_over_the_socket(
    db: Database, settings: Settings, factory: Factory
) -> None:
    user, _ = await factory.user_in_project()
    async with _connected(settings, db, user.token) as sock:
        me = await sock.execute(ME)
        submitted = await sock.execute(SUBMIT, _submit("over-ws"))

    assert me == {"data": {"me": {"name": "alice"}}}
    assert submitted["data"]["submitRun"]["run"]["name"] == "over-ws"
    assert await _run_count(db) == 1


async def test_a_run_read_again_on_the_same_socket_shows_its_new_state(
    db: Database, settings: Settings, factory: Factory, gql: GraphQLClient
) -> None:
    user, project = await factory.user_in_project()
    run_id = await factory.run(project, user, status=RunStatus.RUNNING)
    variables = {"id": str(run_id)}

    async with _connected(settings, db, user.token) as sock:
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
    user, project = await factory.user_in_project()
    run_id = await factory.run(project, user)
    variables = {"id": str(run_id)}

    async with _connected(settings, db, user.token) as sock:
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
    small = dataclasses.replace(settings, max_body_bytes=LIMIT)
    user, _ = await factory.user_in_project()
    big = _submit("too-big", {"blob": "x" * 2 * LIMIT})  # well under max_json_bytes

    async with _connected(small, db, user.token) as sock:
        refused = await sock.execute(SUBMIT, big)
        still_open = await sock.execute(ME)

    [error] = refused["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == LIMIT
    assert error["extensions"]["setting"] == "RUNQL_MAX_BODY_BYTES"
    assert str(LIMIT) in error["message"] and "RUNQL_MAX_BODY_BYTES" in error["message"]
    assert await _run_count(db) == 0
    assert still_open == {"data": {"me": {"name": "alice"}}}


@pytest.mark.parametrize("where", ["header", "connection_init"])
async def test_the_token_is_checked_for_every_operation(
    db: Database, settings: Settings, factory: Factory, where: str
) -> None:
    user, _ = await factory.user_in_project()
    async with serving(settings, db) as server:
        if where == "header":
            opened = socket(server.ws_url, header_token=user.token)
        else:
            opened = socket(server.ws_url, user.token)
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
    await factory.user_in_project()
    async with (
        serving(settings, db) as server,
        socket(server.ws_url, "nope") as sock,
    ):
        answers = [await sock.execute(ME) for _ in range(2)]
        public = await sock.execute("{ __typename }")

    assert [codes(a) for a in answers] == [["UNAUTHENTICATED"], ["UNAUTHENTICATED"]]
    assert public == {"data": {"__typename": "Query"}}


async def test_connection_init_token_wins_over_the_handshake_header(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    bob = await factory.user("bob")
    async with (
        serving(settings, db) as server,
        socket(server.ws_url, alice.token, header_token=bob.token) as sock,
    ):
        me = await sock.execute(ME)

    assert me == {"data": {"me": {"name": "alice"}}}


async def test_every_operation_has_its_own_request_id_and_log_line(
    db: Database, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    user, _ = await factory.user_in_project()
    with caplog.at_level(logging.INFO, logger="runql.request"):
        async with _connected(settings, db, user.token) as sock:
            await sock.execute(ME)
            await sock.execute(ME)

    lines = [r for r in caplog.records if r.name == "runql.request"]
    assert [(r.operation_name, r.path) for r in lines] == [  # type: ignore[attr-defined]
        ("Me", "/graphql"),
        ("Me", "/graphql"),
    ]
    assert len({r.request_id for r in lines}) == 2  # type: ignore[attr-defined]


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
    user, _ = await factory.user_in_project()
    async with _connected(settings, db, user.token) as sock:
        await sock.ws.send(message)
        code, why = await sock.closed()

    assert code == 4400
    assert reason in why


async def test_a_message_far_over_the_limit_is_not_read(
    db: Database, settings: Settings, factory: Factory
) -> None:
    small = dataclasses.replace(settings, max_body_bytes=LIMIT)
    user, _ = await factory.user_in_project()
    huge = _submit("huge", {"blob": "x" * max_frame_bytes(LIMIT)})

    async with _connected(small, db, user.token) as sock:
        await sock.subscribe(SUBMIT, huge)
        code, _ = await sock.closed()

    assert code == 1009  # message too big
    assert await _run_count(db) == 0


async def test_the_legacy_graphql_ws_protocol_has_the_same_limit_and_a_log_line_per_operation(
    db: Database, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """graphql-ws carries subscriptions only (strawberry refuses queries and mutations
    there): each ``start`` is still a request of its own, held to the body limit."""
    small = dataclasses.replace(settings, max_body_bytes=LIMIT)
    user, _ = await factory.user_in_project()
    headers = {"Authorization": f"Bearer {user.token}"}

    async def start(ws: ClientConnection, op_id: str, query: str, variables: Any) -> Any:
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": op_id, "type": "start", "payload": payload}))
        return json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))

    with caplog.at_level(logging.INFO, logger="runql.request"):
        async with (
            serving(small, db) as server,
            connect(server.ws_url, subprotocols=["graphql-ws"], additional_headers=headers) as ws,  # type: ignore[list-item]
        ):
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            query = await start(ws, "1", ME, None)
            refused = await start(ws, "2", SUBMIT, _submit("big", {"blob": "x" * 2 * LIMIT}))

    assert (query["type"], query["payload"]["message"]) == ("error", "queries are not allowed")
    assert refused["type"] == "error"
    assert refused["payload"]["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "limit": LIMIT,
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
    user, _ = await factory.user_in_project()
    over_page = "{ runs(first: 4) { edges { node { name } } } }"
    too_deep = "{ runs { edges { node { project { name } } } } }"
    answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    async with (
        serving(limited, db) as server,
        socket(server.ws_url, header_token=user.token) as sock,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
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
