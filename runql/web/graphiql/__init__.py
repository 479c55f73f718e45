"""runql's own GraphiQL page, whose assets runql serves itself (the code: ``page.py``)."""

from runql.web.graphiql.page import (
    ASSETS_DIR,
    ASSETS_PATH,
    DEFAULT_HEADERS,
    DEFAULT_QUERY,
    Asset,
    GraphiQLPage,
    Manifest,
    Package,
    asset_files,
    graphiql_page,
    load_manifest,
    missing_assets,
    render_page,
)

__all__ = [
    "ASSETS_DIR",
    "ASSETS_PATH",
    "DEFAULT_HEADERS",
    "DEFAULT_QUERY",
    "Asset",
    "GraphiQLPage",
    "Manifest",
    "Package",
    "asset_files",
    "graphiql_page",
    "load_manifest",
    "missing_assets",
    "render_page",
]
