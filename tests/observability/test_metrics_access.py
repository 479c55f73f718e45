"""Who may read ``/metrics`` is ``RUNQL_METRICS``: off (no endpoint), open, or a token."""

from __future__ import annotations

import pytest

from runql.settings import Settings

TOKEN = "scrape-token-0123456789"


async def test_off_by_default_there_is_no_endpoint(client_with) -> None:  # type: ignore[no-untyped-def]
    assert Settings().metrics == "off"
    async with client_with() as client:
        assert (await client.get("/metrics")).status_code == 404
        assert client._transport.app.state.metrics is None  # type: ignore[attr-defined]


async def test_open_answers_anyone(client_with) -> None:  # type: ignore[no-untyped-def]
    async with client_with(metrics="open") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE runql_requests_total counter" in response.text


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
async def test_a_token_refuses_requests_without_it(client_with, authorization: str | None) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": authorization} if authorization else {}
    async with client_with(metrics=TOKEN) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="runql-metrics"'
    assert "runql_" not in response.text


async def test_a_token_admits_requests_with_it(client_with) -> None:  # type: ignore[no-untyped-def]
    async with client_with(metrics=TOKEN) as client:
        response = await client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert "runql_requests_total" in response.text


@pytest.mark.parametrize("value", ["short", "has a space in it 0123", "tökén-0123456789abc", ""])
def test_a_weak_or_malformed_token_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="RUNQL_METRICS: must be off, open, or a bearer token"):
        Settings.from_env({"RUNQL_METRICS": value})
