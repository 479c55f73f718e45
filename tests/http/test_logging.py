"""One structured log line per request: request id, operation, status, duration, SQL count."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from runql.observe.logs import JsonFormatter
from tests.factories import Factory


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "runql.request"]


async def test_request_line(
    http: httpx.AsyncClient, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await factory.user("alice")
    headers = {"Authorization": f"Bearer {alice.token}", "X-Request-Id": "req-1"}

    with caplog.at_level(logging.INFO, logger="runql.request"):
        await http.post("/graphql", json={"query": "query Me { me { name } }"}, headers=headers)
        await http.post("/graphql", json={"query": "{ me { name } }"}, headers=headers)

    named, anonymous = (json.loads(JsonFormatter().format(r)) for r in _request_lines(caplog))
    assert named["request_id"] == "req-1"
    assert named["operation_name"] == "Me"
    assert (named["method"], named["path"], named["status"]) == ("POST", "/graphql", 200)
    assert named["sql_statements"] == 2  # token lookup, the user
    assert isinstance(named["duration_ms"], float) and named["duration_ms"] >= 0
    assert named["error_codes"] == []
    assert anonymous["operation_name"] is None


async def test_request_line_of_a_refused_request(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="runql.request"):
        await http.post(
            "/graphql",
            json={"query": "{ me { name }"},
            headers={"Accept": "application/graphql-response+json"},
        )

    [record] = _request_lines(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert (line["status"], line["sql_statements"]) == (400, 0)
    assert line["error_codes"] == ["GRAPHQL_PARSE_FAILED"]
