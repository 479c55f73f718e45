"""GraphQL over HTTP: media types, GET vs POST, status codes, request ids, CORS, switches,
and the graphql-transport-ws handshake at the same path."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from runql.web.graphql_view import GRAPHQL_RESPONSE_JSON, negotiate
from tests.factories import Factory

GQL_RESPONSE = {"Accept": GRAPHQL_RESPONSE_JSON}
ME = {"query": "{ me { name } }"}

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def alice(factory: Factory) -> dict[str, str]:
    user, _ = await factory.user_in_project()
    return {"Authorization": f"Bearer {user.token}"}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON}", "application/json"),
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        ("text/html, */*;q=0.8", "application/json"),
        ("application/xml", None),
        ("application/json;q=0", None),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def test_post_json_answers_in_the_negotiated_media_type(http, alice) -> None:  # type: ignore[no-untyped-def]
    plain = await http.post("/graphql", json=ME, headers=alice)
    spec = await http.post("/graphql", json=ME, headers={**alice, **GQL_RESPONSE})

    assert (plain.status_code, plain.headers["content-type"]) == (200, "application/json")
    assert (spec.status_code, spec.headers["content-type"]) == (
        200,
        f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    )
    assert plain.json() == spec.json() == {"data": {"me": {"name": "alice"}}}


async def test_unacceptable_accept_is_406(http, alice) -> None:  # type: ignore[no-untyped-def]
    response = await http.post("/graphql", json=ME, headers={**alice, "Accept": "text/csv"})

    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


# (document, variables, code) of requests that fail before execution.
REQUEST_ERRORS = [
    pytest.param("{ me { name }", None, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param("{ me { nope } }", None, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param(
        "query Run($id: ID!) { run(id: $id) { id } }", {}, "BAD_USER_INPUT", id="variables"
    ),
]


@pytest.mark.parametrize(("document", "variables", "code"), REQUEST_ERRORS)
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    http, alice, document: str, variables: dict[str, Any] | None, code: str
) -> None:  # type: ignore[no-untyped-def]
    body = {"query": document, "variables": variables}
    response = await http.post("/graphql", json=body, headers={**alice, **GQL_RESPONSE})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    payload = response.json()
    assert "data" not in payload
    assert [e["extensions"]["code"] for e in payload["errors"]] == [code]


@pytest.mark.parametrize(("document", "variables", "code"), REQUEST_ERRORS)
async def test_request_errors_stay_200_with_null_data_for_application_json(
    http, alice, document: str, variables: dict[str, Any] | None, code: str
) -> None:  # type: ignore[no-untyped-def]
    body = {"query": document, "variables": variables}
    response = await http.post("/graphql", json=body, headers=alice)

    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] is None
    assert [e["extensions"]["code"] for e in payload["errors"]] == [code]


async def test_syntax_and_validation_errors_keep_their_messages(http, alice) -> None:  # type: ignore[no-untyped-def]
    syntax = await http.post("/graphql", json={"query": "{ me { name }"}, headers=alice)
    invalid = await http.post("/graphql", json={"query": "{ me { nope } }"}, headers=alice)

    assert syntax.json()["errors"][0]["message"].startswith("Syntax Error: Expected Name")
    assert invalid.json()["errors"][0]["message"] == (
        "Cannot query field 'nope' on type 'User'. Did you mean 'name' or 'role'?"
    )


async def test_field_errors_are_partial_results_with_200(http, alice) -> None:  # type: ignore[no-untyped-def]
    body = {"query": '{ me { name } run(id: "abc") { id } }'}
    for headers in (alice, {**alice, **GQL_RESPONSE}):
        response = await http.post("/graphql", json=body, headers=headers)
        assert response.status_code == 200
        assert response.json()["data"] == {"me": {"name": "alice"}, "run": None}


async def test_missing_token_is_401_for_graphql_response_json(http) -> None:  # type: ignore[no-untyped-def]
    spec = await http.post("/graphql", json=ME, headers=GQL_RESPONSE)
    legacy = await http.post("/graphql", json=ME)

    assert spec.status_code == 401
    assert spec.headers["www-authenticate"].startswith("Bearer")
    assert "data" not in spec.json()
    assert spec.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert legacy.status_code == 200 and legacy.json()["data"] is None


async def test_get_runs_queries(http, alice) -> None:  # type: ignore[no-untyped-def]
    response = await http.get("/graphql", params={"query": "{ me { name } }"}, headers=alice)

    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"name": "alice"}}}


async def test_get_with_variables_and_operation_name(http, alice) -> None:  # type: ignore[no-untyped-def]
    params = {
        "query": "query A { me { name } } query B($id: ID!) { run(id: $id) { id } }",
        "operationName": "B",
        "variables": '{"id": "12345"}',
    }
    response = await http.get("/graphql", params=params, headers=alice)

    assert response.json() == {"data": {"run": None}}


async def test_mutations_over_get_are_405(http, alice) -> None:  # type: ignore[no-untyped-def]
    document = 'mutation { stopRuns(input: {runIds: ["1"]}) { results { runId } } }'
    for headers in (alice, {**alice, **GQL_RESPONSE}):
        response = await http.get("/graphql", params={"query": document}, headers=headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None],
)
async def test_post_bodies_must_be_json(http, alice, content_type: str | None) -> None:  # type: ignore[no-untyped-def]
    headers = dict(alice)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await http.post("/graphql", content=b'{"query": "{ me { name } }"}', headers=headers)

    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_json_with_utf8_charset_is_accepted(http, alice) -> None:  # type: ignore[no-untyped-def]
    headers = {**alice, "Content-Type": "application/json; charset=utf-8"}
    response = await http.post("/graphql", content=b'{"query": "{ me { name } }"}', headers=headers)

    assert response.json() == {"data": {"me": {"name": "alice"}}}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"query": 3}',
        b'{"variables": {}}',
        b'{"query": "{ me { name } }", "variables": 1}',
    ],
)
async def test_malformed_requests_are_400(http, alice, body: bytes) -> None:  # type: ignore[no-untyped-def]
    headers = {**alice, "Content-Type": "application/json"}
    response = await http.post("/graphql", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_body_size_limit(client_with: ClientFactory, alice) -> None:  # type: ignore[no-untyped-def]
    query = "{ me { name } }"
    just_under = {"query": query + " " * (200 - len(f'{{"query": "{query}"}}') - 1)}
    async with client_with(max_body_bytes=200) as client:
        ok = await client.post("/graphql", json=just_under, headers=alice)
        too_big = await client.post("/graphql", json={"query": query + " " * 200}, headers=alice)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            yield b'{"query": "{ me { name } }'
            yield b" " * 300
            yield b'"}'

        streamed = await client.post(
            "/graphql", content=chunks(), headers={**alice, "Content-Type": "application/json"}
        )

    assert ok.status_code == 200 and ok.json() == {"data": {"me": {"name": "alice"}}}
    for response in (too_big, streamed):
        assert response.status_code == 413
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert "RUNQL_MAX_BODY_BYTES" in error["message"]


async def test_request_id_is_echoed_or_made(http, alice) -> None:  # type: ignore[no-untyped-def]
    given = await http.post("/graphql", json=ME, headers={**alice, "X-Request-Id": "abc-123"})
    made = await http.post("/graphql", json=ME, headers=alice)
    unsafe = await http.post("/graphql", json=ME, headers={**alice, "X-Request-Id": "a b\tc"})

    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] not in ("a b\tc", made.headers["x-request-id"])


async def test_graphiql_can_be_switched_off(client_with: ClientFactory) -> None:
    html = {"Accept": "text/html"}
    async with client_with(graphiql=True) as on, client_with(graphiql=False) as off:
        shown = await on.get("/graphql", headers=html)
        hidden = await off.get("/graphql", headers=html)

    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
    assert hidden.status_code == 404


async def test_introspection_can_be_switched_off(client_with: ClientFactory) -> None:
    async with client_with(introspection=False) as client:
        introspection = await client.post(
            "/graphql", json={"query": "{ __schema { queryType { name } } }"}
        )
        service = await client.post("/graphql", json={"query": "{ _service { sdl } }"})

    error = introspection.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in error["message"].lower()
    assert "type Run" in service.json()["data"]["_service"]["sdl"]


async def test_cors_allows_configured_origins_only(client_with: ClientFactory) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with client_with(cors_origins=("https://ui.example",)) as client:
        allowed = await client.options(
            "/graphql", headers={**preflight, "Origin": "https://ui.example"}
        )
        refused = await client.options(
            "/graphql", headers={**preflight, "Origin": "https://evil.example"}
        )
    async with client_with() as closed:
        default = await closed.post("/graphql", json=ME, headers={"Origin": "https://ui.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in default.headers


def test_graphql_transport_ws_handshake_and_operation(app) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():  # starlette would like httpx2 for its test client
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    client = TestClient(app)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.accepted_subprotocol == "graphql-transport-ws"
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        assert ws.receive_json() == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"__typename": "Query"}},
        }
        assert ws.receive_json() == {"id": "1", "type": "complete"}
