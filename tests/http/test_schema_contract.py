"""The API contract: ``schema.graphql`` is the served SDL, and it composes as a subgraph.

Every API change is then a reviewed diff of ``schema.graphql`` (regenerate it with
``make schema``). Descriptions of every type, field and argument are guarded by
``tests/http/test_graphiql.py::test_docs_pane_describes_every_type_and_field``.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runql.schema import build_schema

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "schema.graphql"
COMPOSITION = Path(__file__).parents[1] / "composition"


def live_sdl() -> str:
    """What ``runql export-schema`` prints and ``_service { sdl }`` answers."""
    return build_schema().as_str() + "\n"


def test_schema_graphql_is_the_live_schema() -> None:
    live = live_sdl()
    stored = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    if stored != live:
        diff = "".join(
            difflib.unified_diff(
                stored.splitlines(keepends=True),
                live.splitlines(keepends=True),
                "schema.graphql",
                "live schema",
            )
        )
        pytest.fail(
            "schema.graphql differs from the live schema: run `make schema` and review the "
            f"diff.\n{diff[:4000]}",
            pytrace=False,
        )


def _tools() -> tuple[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    return (node, npm) if node and npm else None


def _install(npm: str) -> None:
    """``npm ci`` into tests/composition/node_modules (git-ignored), once per lockfile."""
    lock = COMPOSITION / "package-lock.json"
    stamp = COMPOSITION / "node_modules" / ".runql-installed"
    if stamp.exists() and stamp.read_text() == lock.read_text():
        return
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(
        command, cwd=COMPOSITION, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in tests/composition failed:\n{done.stderr[-3000:]}", pytrace=False)
    stamp.write_text(lock.read_text())


def node_with_packages(purpose: str) -> str:
    """Node.js, with tests/composition's packages installed. Without Node and npm the test
    is skipped, or fails under ``CI=true``."""
    tools = _tools()
    if tools is None:
        message = f"Node.js and npm are needed to {purpose}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true requires this check)", pytrace=False)
        pytest.skip(f"{message}; install Node 18+ to run this check")
    node, npm = tools
    _install(npm)
    return node


@pytest.mark.slow
def test_sdl_composes_with_apollo_composition_without_errors_or_hints() -> None:
    node = node_with_packages("compose the SDL with @apollo/composition")

    done = subprocess.run(
        [node, "compose.mjs", "runql"],
        cwd=COMPOSITION,
        input=live_sdl(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.stdout, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"ok": True, "errors": [], "hints": []}
