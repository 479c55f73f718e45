"""The log line of an unexpected database error names the statement, never its bound values
(runql.db.engine: ``hide_parameters=True``).

Bound values are what users sent or what the service guards: run specs, termination
messages, token hashes. The ERROR line with the traceback goes to whatever collects logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from runql.db.enums import MemberRole
from runql.db.visibility import Viewer
from runql.observe.logs import JsonFormatter
from runql.resolvers.loaders import RunByIdLoader
from tests.factories import Factory, GraphQLClient

SECRET = "rql_secret-looking-value-0123456789"
STATEMENT = "SELECT id FROM no_such_table WHERE token_hash = "


@pytest.fixture
def failing_run_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run loader's query runs a statement the database rejects, with a secret bound
    to it."""

    async def runs_by_ids(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> Any:
        await session.execute(text(STATEMENT + ":token_hash"), {"token_hash": SECRET})

    monkeypatch.setattr(RunByIdLoader, "query", staticmethod(runs_by_ids))


@pytest.mark.usefixtures("failing_run_lookup")
async def test_a_failed_statement_is_logged_without_its_parameters(
    factory: Factory, gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    run_id = await factory.run(project, user)

    with caplog.at_level(logging.ERROR, logger="runql.errors"):
        body = await gql(
            "query($id: ID!) { run(id: $id) { name } }",
            {"id": str(run_id)},
            token=user.token,
            expect_errors=True,
        )

    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    request_id = error["extensions"]["requestId"]
    [record] = [r for r in caplog.records if r.name == "runql.errors"]
    line = JsonFormatter().format(record)
    assert json.loads(line)["request_id"] == request_id
    assert STATEMENT in line  # the statement is there to debug with
    assert SECRET not in line
    assert SECRET not in caplog.text


@pytest.mark.usefixtures("failing_run_lookup")
async def test_a_failed_batch_is_logged_once_not_once_per_key(
    factory: Factory, gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """One loader batch fails for every key it held: each field answers its own masked
    error, the traceback is written once."""
    user = await factory.user()
    project = await factory.project(members=[(user, MemberRole.USER)])
    ids = [str(await factory.run(project, user)) for _ in range(5)]
    query = "query {" + " ".join(f'r{i}: run(id: "{id_}") {{ name }}' for i, id_ in enumerate(ids))
    query += "}"

    with caplog.at_level(logging.ERROR, logger="runql.errors"):
        body = await gql(query, token=user.token, expect_errors=True)

    assert len(body["errors"]) == 5
    assert {e["extensions"]["code"] for e in body["errors"]} == {"INTERNAL_SERVER_ERROR"}
    assert len([r for r in caplog.records if r.name == "runql.errors"]) == 1
