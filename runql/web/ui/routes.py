"""``/ui``: runql's own runs page, served from this folder (docs/ui.md).

One HTML page, one stylesheet and a few JavaScript modules with no build step and nothing
from another host. The page carries the operations it may send (``operations.py``) as
JSON, so the browser needs no extra request to learn them. ``RUNQL_UI=false`` serves none of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from graphql import GraphQLSchema
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from runql.settings import Settings
from runql.web.ui.operations import all_operations

STATIC_DIR = Path(__file__).parent / "static"
PATH = "/ui"
STATIC_PATH = "/ui/static"
#: The page loads only its own files and talks only to its own host (HTTP and WebSocket).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def render_page(schema: GraphQLSchema) -> str:
    """index.html with the UI's operations embedded as JSON."""
    operations = json.dumps(all_operations(), sort_keys=True)
    # "</" cannot end the <script> element early; JSON reads "<\/" as "</".
    embedded = operations.replace("</", "<\\/")
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return template.replace("__OPERATIONS__", embedded)


def ui_routes(settings: Settings, schema: GraphQLSchema) -> list[BaseRoute]:
    """``GET /ui`` (the page) and ``/ui/static/*`` (its files); none when switched off."""
    if not settings.ui:
        return []
    page = render_page(schema)
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=headers)

    async def slash(request: Request) -> Response:
        return RedirectResponse(PATH, status_code=308)

    return [
        Route(PATH, index, methods=["GET"]),
        Route(f"{PATH}/", slash, methods=["GET"]),
        Mount(STATIC_PATH, app=StaticFiles(directory=STATIC_DIR), name="ui-static"),
    ]
