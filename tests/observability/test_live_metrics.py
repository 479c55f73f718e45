"""Live updates in ``/metrics``: open subscriptions, events delivered, the listener."""

from __future__ import annotations

import dataclasses

import httpx

from runql.db.engine import Database
from runql.settings import Settings
from tests.factories import Factory
from tests.inloop import serving
from tests.live.helpers import RUN_EVENTS, SUBMIT, submit_input
from tests.observability.helpers import labels, parse
from tests.waiting import DEADLINE, until
from tests.wsclient import socket


async def _scrape(http_url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=http_url, timeout=DEADLINE) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = parse(response.text)
    names = (
        "runql_subscriptions_open",
        "runql_events_delivered_total",
        "runql_event_listener_connected",
    )
    return {name: samples.get((name, labels()), 0.0) for name in names}


async def test_subscriptions_and_delivered_events_are_counted(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    served = serving(dataclasses.replace(settings, metrics="open"), db)
    async with served as server, socket(server.ws_url, alice.token) as ws:
        op = await ws.subscribe(RUN_EVENTS, {"project": "vision"})

        async def opened() -> bool:
            return (await _scrape(server.http_url))["runql_subscriptions_open"] == 1

        await until(opened, "the subscription to count")
        await server.gql(alice.token, SUBMIT, submit_input("vision", {"name": "a"}))
        (event,) = await ws.events(op, 1)
        assert event["kind"] == "RUN_SUBMITTED"

        scraped = await _scrape(server.http_url)
        assert scraped["runql_events_delivered_total"] == 1
        assert scraped["runql_event_listener_connected"] == 1

        await ws.complete(op)

        async def closed() -> bool:
            return (await _scrape(server.http_url))["runql_subscriptions_open"] == 0

        await until(closed, "the closed subscription to go")
