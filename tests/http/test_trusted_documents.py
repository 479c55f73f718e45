"""Trusted documents: with ``RUNQL_TRUSTED_DOCUMENTS`` only the manifest's documents run.

By id (``documentId`` as GraphQL Code Generator's client preset sends it, in the body or
the URL; ``extensions.persistedQuery.sha256Hash`` as Apollo's link sends it) or by their
exact text; anything else is refused before parsing, over HTTP and over WebSockets. Both
manifest formats client tooling writes are read; a manifest runql cannot use stops
``runql serve`` with exit 1 and a message naming the fault.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.settings import Settings
from runql.web.graphql_view import GRAPHQL_RESPONSE_JSON
from runql.web.manifest import ManifestError, load_manifest
from tests.factories import Factory
from tests.inloop import serving
from tests.wsclient import socket

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

ME = "query Me { me { name } }"
ME_ID = hashlib.sha256(ME.encode()).hexdigest()
UNTRUSTED = "query Other { me { name } }"
GQL_RESPONSE = {"Accept": GRAPHQL_RESPONSE_JSON}


def apollo_manifest(*bodies: str) -> dict[str, Any]:
    """As ``generate-persisted-query-manifest`` writes it."""
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {
                "id": hashlib.sha256(body.encode()).hexdigest(),
                "name": body.split()[1],
                "type": "query",
                "body": body,
            }
            for body in bodies
        ],
    }


def client_preset_manifest(*bodies: str) -> dict[str, str]:
    """As the client preset's ``persistedDocuments`` writes ``persisted-documents.json``."""
    return {hashlib.sha256(body.encode()).hexdigest(): body for body in bodies}


@pytest.fixture(params=[apollo_manifest, client_preset_manifest])
def manifest(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(request.param(ME)))
    return str(path)


@pytest.fixture
async def tokens(factory: Factory) -> dict[str, dict[str, str]]:
    alice = await factory.user("alice")
    root = await factory.user("root", admin=True)
    await factory.project("vision", [(alice, MemberRole.USER)])
    return {
        "alice": {"Authorization": f"Bearer {alice.token}"},
        "root": {"Authorization": f"Bearer {root.token}"},
    }


def code(response: httpx.Response) -> str:
    [error] = response.json()["errors"]
    return str(error["extensions"]["code"])


async def test_trusted_by_id_and_by_text(client_with: ClientFactory, manifest, tokens) -> None:  # type: ignore[no-untyped-def]
    alice = tokens["alice"]
    apq_body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ME_ID}}}
    async with client_with(trusted_documents=manifest) as client:
        answers = [
            await client.post("/graphql", json={"documentId": ME_ID}, headers=alice),
            await client.post("/graphql", json={"documentId": f"sha256:{ME_ID}"}, headers=alice),
            await client.get("/graphql", params={"documentId": ME_ID}, headers=alice),
            await client.post("/graphql", json=apq_body, headers=alice),
            await client.post("/graphql", json={"query": ME}, headers=alice),
            await client.get("/graphql", params={"query": ME}, headers=alice),
        ]

    for answer in answers:
        assert answer.json() == {"data": {"me": {"name": "alice"}}}


async def test_anything_else_is_refused_before_parsing(
    client_with: ClientFactory, manifest, tokens
) -> None:  # type: ignore[no-untyped-def]
    alice = {**tokens["alice"], **GQL_RESPONSE}
    async with client_with(trusted_documents=manifest) as client:
        other_text = await client.post("/graphql", json={"query": UNTRUSTED}, headers=alice)
        not_even_graphql = await client.post("/graphql", json={"query": "{ me {"}, headers=alice)
        reformatted = await client.post("/graphql", json={"query": ME + " "}, headers=alice)
        unknown_id = await client.post("/graphql", json={"documentId": "abc"}, headers=alice)
        id_with_other_text = await client.post(
            "/graphql",
            json={
                "query": UNTRUSTED,
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": ME_ID}},
            },
            headers=alice,
        )
        plain_json = await client.post(
            "/graphql", json={"query": UNTRUSTED}, headers=tokens["alice"]
        )

    for refused in (other_text, not_even_graphql, reformatted):
        assert (refused.status_code, code(refused)) == (403, "QUERY_NOT_IN_SAFELIST")
        assert refused.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert (unknown_id.status_code, code(unknown_id)) == (404, "PERSISTED_QUERY_NOT_IN_LIST")
    assert "'abc'" in unknown_id.json()["errors"][0]["message"]
    assert code(id_with_other_text) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert plain_json.status_code == 200 and code(plain_json) == "QUERY_NOT_IN_SAFELIST"


async def test_apq_registration_does_not_make_a_document_trusted(
    client_with: ClientFactory, manifest, tokens
) -> None:  # type: ignore[no-untyped-def]
    sha256 = hashlib.sha256(UNTRUSTED.encode()).hexdigest()
    persisted = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}}
    async with client_with(trusted_documents=manifest) as client:
        register = await client.post(
            "/graphql", json={**persisted, "query": UNTRUSTED}, headers=tokens["alice"]
        )
        hash_only = await client.post("/graphql", json=persisted, headers=tokens["alice"])

    assert code(register) == "PERSISTED_QUERY_NOT_IN_LIST"
    assert code(hash_only) == "PERSISTED_QUERY_NOT_IN_LIST"


@pytest.mark.parametrize(
    ("bypass", "who", "runs"),
    [(True, "root", True), (False, "root", False), (True, "alice", False)],
)
async def test_admin_bypass(
    client_with: ClientFactory, manifest, tokens, bypass: bool, who: str, runs: bool
) -> None:  # type: ignore[no-untyped-def]
    async with client_with(
        trusted_documents=manifest, trusted_documents_admin_bypass=bypass
    ) as client:
        answer = await client.post("/graphql", json={"query": UNTRUSTED}, headers=tokens[who])

    if runs:
        assert answer.json() == {"data": {"me": {"name": who}}}
    else:
        assert code(answer) == "QUERY_NOT_IN_SAFELIST"


async def test_websocket_operations_are_held_to_the_manifest(
    db: Database, settings: Settings, manifest, factory: Factory
) -> None:  # type: ignore[no-untyped-def]
    alice = await factory.user("alice")
    trusted = Settings(**{**settings.__dict__, "trusted_documents": manifest})
    subscription = "subscription { jobsReady { project } }"
    async with (
        serving(trusted, db) as server,
        socket(server.ws_url, alice.token) as sock,
    ):
        ok = await sock.execute(ME)
        refused = await sock.execute(UNTRUSTED)
        refused_subscription = await sock.execute(subscription)

    assert ok == {"data": {"me": {"name": "alice"}}}
    for answer in (refused, refused_subscription):
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["QUERY_NOT_IN_SAFELIST"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the manifest"),
        ("{not json", "not a JSON manifest"),
        ("[]", "must be a JSON object"),
        ("{}", "lists no document"),
        ('{"abc": 3}', "the document of id 'abc' must be a non-empty string"),
        ('{"format": "relay", "version": 1}', "unknown format 'relay'"),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
            "unsupported manifest version 2",
        ),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, '
            '"operations": [{"id": "a", "body": "{ me { name } }"}, {"id": "b"}]}',
            "operations[1]: `body` must be a non-empty string",
        ),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": '
            '[{"id": "a", "body": "{ a }"}, {"id": "a", "body": "{ b }"}]}',
            "id 'a' is listed twice with different bodies",
        ),
    ],
)
def test_unusable_manifests_name_the_fault(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ManifestError, match=r"^RUNQL_TRUSTED_DOCUMENTS=.*manifest\.json: ") as err:
        load_manifest(path)

    assert message in str(err.value)


def test_serve_refuses_to_start_with_an_unusable_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"format": "apollo-persisted-query-manifest", "version": 1}')
    env = {
        "RUNQL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "RUNQL_TRUSTED_DOCUMENTS": str(manifest),
        "RUNQL_PORT": "1",  # never bound: it must stop before
        "PATH": "",
    }
    result = subprocess.run(
        [sys.executable, "-m", "runql.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"runql: RUNQL_TRUSTED_DOCUMENTS={manifest}: `operations` must be a list"
    )
