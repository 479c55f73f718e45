"""Apollo Client's own persisted query link (``@apollo/client`` 4) against a real runql.

``tests/apollo_link/apq.mjs`` runs one query three times through ``PersistedQueryLink`` +
``HttpLink`` in Node and reports every HTTP request the link made. With APQ on, the link
must see the miss, register the text once and then send the hash alone (over GET when
asked); with ``RUNQL_APQ=false`` it must see ``PersistedQueryNotSupported`` and fall back
to sending the text. Needs Node and npm (``npm ci`` into the git-ignored node_modules);
skipped without them, except under CI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runql.db.engine import Database
from runql.settings import Settings
from tests.factories import Factory
from tests.inloop import serving

PACKAGE = Path(__file__).parents[1] / "apollo_link"
# The text Apollo Client sends for `query Me { me { name } }`: printed, with __typename.
PRINTED = "query Me {\n  me {\n    name\n    __typename\n  }\n}"
HASH = hashlib.sha256(PRINTED.encode()).hexdigest()
ALICE = {"me": {"__typename": "User", "name": "alice"}}


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "Node.js and npm are needed to run Apollo Client's persisted query link"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true requires it)", pytrace=False)
        pytest.skip(message)
    lock = PACKAGE / "package-lock.json"
    stamp = PACKAGE / "node_modules" / ".runql-installed"
    if not (stamp.exists() and stamp.read_text() == lock.read_text()):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PACKAGE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in tests/apollo_link failed:\n{done.stderr[-3000:]}")
        stamp.write_text(lock.read_text())
    return node


async def _link(settings: Settings, db: Database, token: str, method: str) -> dict[str, Any]:
    node = _node()
    async with serving(settings, db) as server:
        url = server.http_url + "/graphql"
        process = await asyncio.create_subprocess_exec(
            node,
            "apq.mjs",
            url,
            token,
            method,
            cwd=PACKAGE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-3000:]
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_link_registers_once_then_sends_the_hash(
    db: Database, settings: Settings, factory: Factory, method: str
) -> None:
    alice = await factory.user("alice")

    report = await _link(settings, db, alice.token, method)

    assert report["results"] == [ALICE, ALICE, ALICE]
    assert report["requests"] == [
        {"method": method, "query": False, "hash": HASH, "status": 200},  # the miss
        {"method": "POST", "query": True, "hash": HASH, "status": 200},  # registers
        {"method": method, "query": False, "hash": HASH, "status": 200},
        {"method": method, "query": False, "hash": HASH, "status": 200},
    ]


async def test_the_link_falls_back_to_texts_when_apq_is_off(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice = await factory.user("alice")

    report = await _link(dataclasses.replace(settings, apq=False), db, alice.token, "POST")

    assert report["results"] == [ALICE, ALICE, ALICE]
    assert report["requests"] == [
        {"method": "POST", "query": False, "hash": HASH, "status": 200},  # not supported
        {"method": "POST", "query": True, "hash": None, "status": 200},
        {"method": "POST", "query": True, "hash": None, "status": 200},
        {"method": "POST", "query": True, "hash": None, "status": 200},
    ]
