"""runql's GraphiQL page and the pinned assets it loads, which runql serves itself.

strawberry's built-in page loads React, GraphiQL and the explorer plugin from a public CDN,
so on a machine without internet access it never gets past "Loading...". This page lists
the same files, pinned with SRI hashes in ``assets.json``; ``make install`` fetches them
from the npm registry into ``assets/`` (see scripts/fetch_graphiql_assets.py) and the app
serves them under :data:`ASSETS_PATH`. When they are missing the page falls back to the
CDN (same files, same ``integrity``) and the server logs one line saying how to fix it.

Imports only the standard library at module level: the fetch script reuses the manifest
reader before the app's dependencies matter.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.staticfiles import StaticFiles

#: The package's logger: the missing-assets line names ``runql.web.graphiql``.
log = logging.getLogger("runql.web.graphiql")

HERE = Path(__file__).parent
MANIFEST_PATH = HERE / "assets.json"
TEMPLATE_PATH = HERE / "graphiql.html"
#: Where ``make install`` puts the files (git-ignored). Read at call time, so tests can
#: point it elsewhere.
ASSETS_DIR = HERE / "assets"
#: URL path the app serves ``ASSETS_DIR`` under; a path of runql's own.
ASSETS_PATH = "/graphiql-assets"

DEFAULT_QUERY = """\
# Welcome to runql's GraphiQL.
#
# 1. Paste your API token in the Headers tab
#    below, in place of <token>:
#      {"Authorization": "Bearer <token>"}
#    `make run` prints demo tokens.
#    Without one, only the Docs work.
# 2. Run: Ctrl-Enter or the play button.
#
# Docs (book icon) describe every type and
# field; Explorer (compass) builds queries.

# The runs page: newest runs, their status
# line, each job's latest submission.
query RunsPage {
  runs(first: 10) {
    edges {
      node {
        id
        name
        status
        statusMessage
        jobs(submissionsLimit: 1) {
          name
          status
          submissionNum
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

#: What the Headers tab holds before the user pastes a token (GraphiQL's defaultHeaders).
DEFAULT_HEADERS = '{\n  "Authorization": "Bearer <token>"\n}\n'


@dataclass(frozen=True)
class Asset:
    """One file of one pinned npm package, as the page loads it."""

    package: str
    version: str
    path: str
    #: SRI hash of the file (``sha384-...``): the page's ``integrity`` attribute.
    integrity: str

    @property
    def relative_path(self) -> str:
        """Where the file lives under ``ASSETS_DIR`` and under ``ASSETS_PATH``."""
        return f"{self.package}@{self.version}/{self.path}"

    @property
    def is_style(self) -> bool:
        return self.path.endswith(".css")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    #: npm's integrity of the package tarball (``sha512-...``).
    integrity: str


@dataclass(frozen=True)
class Manifest:
    cdn: str
    packages: tuple[Package, ...]
    assets: tuple[Asset, ...]


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    raw = json.loads(path.read_text(encoding="utf-8"))
    packages = {
        name: Package(name, spec["version"], spec["integrity"])
        for name, spec in raw["packages"].items()
    }
    assets = tuple(
        Asset(f["package"], packages[f["package"]].version, f["path"], f["integrity"])
        for f in raw["files"]
    )
    return Manifest(cdn=raw["cdn"].rstrip("/"), packages=tuple(packages.values()), assets=assets)


def missing_assets(manifest: Manifest, assets_dir: Path) -> list[Asset]:
    """Files of the manifest not present in ``assets_dir``.

    Presence only: the fetch script verified them, and the browser re-checks every file
    against its ``integrity`` attribute anyway.
    """
    return [a for a in manifest.assets if not (assets_dir / a.relative_path).is_file()]


@dataclass(frozen=True)
class GraphiQLPage:
    html: str
    #: True when every asset is served by runql itself (no request leaves the host).
    offline: bool


def render_page(manifest: Manifest, *, offline: bool) -> str:
    """The page's HTML: local asset URLs when ``offline``, else the CDN's."""
    styles, scripts = [], []
    for asset in manifest.assets:
        if offline:
            # Relative to /graphql, so the page also works behind a path prefix.
            url = f".{ASSETS_PATH}/{asset.relative_path}"
            cors = ""
        else:
            url = f"{manifest.cdn}/{asset.relative_path}"
            cors = ' crossorigin="anonymous"'
        if asset.is_style:
            styles.append(
                f'<link rel="stylesheet" href="{url}" integrity="{asset.integrity}"{cors} />'
            )
        else:
            scripts.append(f'<script src="{url}" integrity="{asset.integrity}"{cors}></script>')
    config = json.dumps({"defaultQuery": DEFAULT_QUERY, "defaultHeaders": DEFAULT_HEADERS})
    # Inside <script type="application/json">: "</script>" must not appear literally.
    config = config.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        TEMPLATE_PATH.read_text(encoding="utf-8")
        .replace("<!-- runql:styles -->", "\n    ".join(styles))
        .replace("<!-- runql:scripts -->", "\n    ".join(scripts))
        .replace("/*runql:config*/", config)
    )


@functools.cache
def _page_for(assets_dir: Path) -> GraphiQLPage:
    manifest = load_manifest()
    missing = missing_assets(manifest, assets_dir)
    if missing:
        log.warning(
            "GraphiQL assets not installed (%d of %d files missing in %s): the GraphiQL page "
            "loads them from %s, which needs internet access; run `make install` (needs npm) "
            "to serve them from runql itself.",
            len(missing),
            len(manifest.assets),
            assets_dir,
            manifest.cdn,
        )
    return GraphiQLPage(html=render_page(manifest, offline=not missing), offline=not missing)


def graphiql_page() -> GraphiQLPage:
    """The page for the installed assets; built (and any warning logged) once per process."""
    return _page_for(ASSETS_DIR)


def asset_files() -> StaticFiles:
    """An ASGI app serving ``ASSETS_DIR`` (mount it at :data:`ASSETS_PATH`).

    Starts even when the folder does not exist: the page then points at the CDN instead.
    """
    from starlette.staticfiles import StaticFiles

    return StaticFiles(directory=ASSETS_DIR, check_dir=False)
