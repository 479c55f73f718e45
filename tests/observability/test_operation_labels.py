"""Operation names become label values only within bounds: a GraphQL name, at most
``MAX_OPERATION_NAME_LENGTH`` characters, among the first ``MAX_OPERATION_NAMES`` a process
saw. Anything else is ``(other)``, so clients cannot create series without end."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from runql.db.engine import Database
from runql.observe import metrics
from runql.settings import Settings
from runql.web.app import create_app
from tests.factories import Factory
from tests.observability.helpers import parse, values


def test_names_past_the_cap_or_malformed_are_other() -> None:
    names = metrics.OperationNames(limit=2)

    seen = [names.label(n, "query") for n in ["A", "B", "C", "A", "B", "C"]]

    assert seen == ["A", "B", "(other)", "A", "B", "(other)"]
    fresh = metrics.OperationNames(limit=10)
    assert fresh.label("x" * metrics.MAX_OPERATION_NAME_LENGTH, "query") != "(other)"
    assert fresh.label("x" * (metrics.MAX_OPERATION_NAME_LENGTH + 1), "query") == "(other)"
    assert fresh.label("bad name", "query") == "(other)"
    assert fresh.label("9lives", "query") == "(other)"
    assert fresh.label("dé", "query") == "(other)"
    assert fresh.label(None, "query") == "(anonymous)"
    assert fresh.label(None, None) == "(none)"
    assert fresh.label("bad name", None) == "(other)"


async def test_requests_beyond_the_cap_share_one_series(
    monkeypatch: pytest.MonkeyPatch, db: Database, settings: Settings, factory: Factory
) -> None:
    monkeypatch.setattr(metrics, "MAX_OPERATION_NAMES", 3)
    app = create_app(dataclasses.replace(settings, metrics="open"), db=db)
    user = await factory.user()
    headers = {"Authorization": f"Bearer {user.token}"}
    bodies = [{"query": f"query Q{i} {{ me {{ name }} }}"} for i in range(6)]
    bodies += [
        {"query": "query %s { me { name } }" % ("L" * 65)},  # too long
        # Names no operation of the document: refused before it runs, like a bad body.
        {"query": "query Q0 { me { name } }", "operationName": "no such name"},
        {"query": "{ me { name } }"},
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as http:
        for body in bodies:
            await http.post("/graphql", json=body, headers=headers)
        samples = parse((await http.get("/metrics")).text)

    counts = {
        dict(key)["operation"]: value
        for key, value in values(samples, "runql_request_duration_seconds_count").items()
    }
    assert counts == {"Q0": 1, "Q1": 1, "Q2": 1, "(other)": 4, "(anonymous)": 1, "(none)": 1}
