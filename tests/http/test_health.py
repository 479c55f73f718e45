"""/healthz says the process is alive; /readyz that the database answers and is migrated."""

from __future__ import annotations

from pathlib import Path

import httpx

from runql.db.engine import Database
from runql.settings import Settings
from runql.web.app import create_app


async def _get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://runql.test") as client:
        return await client.get(path)


async def test_healthz_and_readyz(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    ready = await http.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readyz_reports_pending_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    db = Database(url)
    try:
        response = await _get(create_app(Settings(database_url=url), db=db), "/readyz")
        health = await _get(create_app(Settings(database_url=url), db=db), "/healthz")
    finally:
        await db.dispose()

    assert (response.status_code, response.json()) == (503, {"status": "migrations pending"})
    assert health.status_code == 200


async def test_readyz_reports_an_unreachable_database() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    db = Database(url)
    try:
        response = await _get(create_app(Settings(database_url=url), db=db), "/readyz")
    finally:
        await db.dispose()

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
