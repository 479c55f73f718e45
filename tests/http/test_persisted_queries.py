"""Automatic persisted queries, spoken as Apollo's persisted query link speaks them.

The bodies and URLs below are the exact wire format of ``createPersistedQueryLink``
(``extensions.persistedQuery = {version: 1, sha256Hash}``, the hash of the printed query;
GET with ``extensions`` as URL-encoded JSON), and the answers are Apollo Server's:
``PersistedQueryNotFound`` until the query was sent once with its hash, then the hash alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from runql.db.enums import MemberRole
from runql.web.graphql_view import GRAPHQL_RESPONSE_JSON
from tests.factories import Factory

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

ME = "query Me {\n  me {\n    name\n  }\n}"
ME_HASH = hashlib.sha256(ME.encode()).hexdigest()
NOT_FOUND = {
    "message": "PersistedQueryNotFound",
    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
}
NO_CACHE = "private, no-cache, must-revalidate"


def extensions(sha256: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


def hashed(sha256: str = ME_HASH, **fields: Any) -> dict[str, Any]:
    """The link's first request: no ``query``."""
    return {"operationName": "Me", "variables": {}, "extensions": extensions(sha256), **fields}


def get_url(body: dict[str, Any]) -> str:
    """The link's GET (``useGETForHashedQueries``): every field a JSON query parameter."""
    params = {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in body.items()
    }
    return "/graphql?" + urlencode(params)


@pytest.fixture
async def alice(factory: Factory) -> dict[str, str]:
    user = await factory.user("alice")
    await factory.project("vision", [(user, MemberRole.USER)])
    return {"Authorization": f"Bearer {user.token}"}


async def test_miss_then_register_then_hash_alone_over_post_and_get(http, alice) -> None:  # type: ignore[no-untyped-def]
    miss = await http.post("/graphql", json=hashed(), headers=alice)
    register = await http.post("/graphql", json=hashed(query=ME), headers=alice)
    post = await http.post("/graphql", json=hashed(), headers=alice)
    get = await http.get(get_url(hashed()), headers=alice)

    assert miss.status_code == 200
    assert miss.json()["errors"] == [NOT_FOUND]
    assert miss.headers["cache-control"] == NO_CACHE
    for answer in (register, post, get):
        assert answer.status_code == 200
        assert answer.json() == {"data": {"me": {"name": "alice"}}}


async def test_register_over_get(http, alice) -> None:  # type: ignore[no-untyped-def]
    register = await http.get(get_url(hashed(query=ME)), headers=alice)
    again = await http.get(get_url(hashed()), headers=alice)

    assert register.json() == again.json() == {"data": {"me": {"name": "alice"}}}


async def test_a_hash_only_get_from_curl_is_not_mistaken_for_graphiql(http, alice) -> None:  # type: ignore[no-untyped-def]
    await http.post("/graphql", json=hashed(query=ME), headers=alice)

    answer = await http.get(get_url(hashed()), headers={**alice, "Accept": "*/*"})

    assert answer.json() == {"data": {"me": {"name": "alice"}}}


async def test_miss_stays_200_with_graphql_response_json(http, alice) -> None:  # type: ignore[no-untyped-def]
    """Apollo Server answers 200; older Apollo clients turn APQ off for good on a 400."""
    miss = await http.post(
        "/graphql", json=hashed(), headers={**alice, "Accept": GRAPHQL_RESPONSE_JSON}
    )

    assert miss.status_code == 200
    assert miss.json() == {"errors": [NOT_FOUND]}


async def test_hash_mismatch_is_refused_and_not_stored(http, alice) -> None:  # type: ignore[no-untyped-def]
    other = hashlib.sha256(b"{ __typename }").hexdigest()

    mismatch = await http.post(
        "/graphql", json=hashed(other, query=ME), headers={**alice, "Accept": GRAPHQL_RESPONSE_JSON}
    )
    after = await http.post("/graphql", json=hashed(other), headers=alice)

    assert mismatch.status_code == 400
    assert mismatch.json()["errors"] == [
        {
            "message": "provided sha does not match query",
            "extensions": {"code": "PERSISTED_QUERY_HASH_MISMATCH"},
        }
    ]
    assert after.json()["errors"] == [NOT_FOUND]


@pytest.mark.parametrize("version", [2, "1", None])
async def test_unsupported_version_is_refused(http, alice, version: object) -> None:  # type: ignore[no-untyped-def]
    body = {"query": ME, "extensions": extensions(ME_HASH, version)}

    answer = await http.post("/graphql", json=body, headers=alice)

    assert answer.json()["errors"] == [
        {
            "message": "Unsupported persisted query version",
            "extensions": {"code": "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"},
        }
    ]


async def test_a_document_that_fails_validation_is_not_stored(http, alice) -> None:  # type: ignore[no-untyped-def]
    broken = "query Me { me { nope } }"
    sha256 = hashlib.sha256(broken.encode()).hexdigest()

    first = await http.post("/graphql", json=hashed(sha256, query=broken), headers=alice)
    again = await http.post("/graphql", json=hashed(sha256), headers=alice)

    assert first.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert again.json()["errors"] == [NOT_FOUND]


async def test_no_mutation_over_get_by_hash(http, alice) -> None:  # type: ignore[no-untyped-def]
    stop = "mutation Stop { stopRuns(input: {runIds: []}) { results { runId } } }"
    sha256 = hashlib.sha256(stop.encode()).hexdigest()
    body = {"operationName": "Stop", "variables": {}, "extensions": extensions(sha256)}

    registered = await http.post("/graphql", json={**body, "query": stop}, headers=alice)
    over_get = await http.get(get_url(body), headers=alice)

    assert "errors" not in registered.json(), registered.json()
    assert over_get.status_code == 405
    assert over_get.headers["allow"] == "POST"


async def test_the_store_is_a_bounded_lru(client_with: ClientFactory, alice) -> None:  # type: ignore[no-untyped-def]
    typename = "{ __typename }"
    typename_hash = hashlib.sha256(typename.encode()).hexdigest()
    async with client_with(apq_cache_size=1) as client:
        await client.post("/graphql", json=hashed(query=ME), headers=alice)
        await client.post(
            "/graphql",
            json=hashed(typename_hash, query=typename, operationName=None),
            headers=alice,
        )
        pushed_out = await client.post("/graphql", json=hashed(), headers=alice)
        kept = await client.post(
            "/graphql", json=hashed(typename_hash, operationName=None), headers=alice
        )

    assert pushed_out.json()["errors"] == [NOT_FOUND]
    assert kept.json() == {"data": {"__typename": "Query"}}


async def test_switched_off(client_with: ClientFactory, alice) -> None:  # type: ignore[no-untyped-def]
    async with client_with(apq=False) as client:
        hash_only = await client.post("/graphql", json=hashed(), headers=alice)
        with_query = await client.post("/graphql", json=hashed(query=ME), headers=alice)
        plain = await client.post("/graphql", json={"query": ME}, headers=alice)

    not_supported = {
        "message": "PersistedQueryNotSupported",
        "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
    }
    assert hash_only.status_code == with_query.status_code == 200
    assert hash_only.json()["errors"] == with_query.json()["errors"] == [not_supported]
    assert plain.json() == {"data": {"me": {"name": "alice"}}}


async def test_a_document_id_without_trusted_documents_says_so(http, alice) -> None:  # type: ignore[no-untyped-def]
    answer = await http.post("/graphql", json={"documentId": ME_HASH}, headers=alice)

    [error] = answer.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert "RUNQL_TRUSTED_DOCUMENTS" in error["message"]


async def test_a_missing_hash_is_named(http, alice) -> None:  # type: ignore[no-untyped-def]
    body = {"query": ME, "extensions": {"persistedQuery": {"version": 1}}}

    answer = await http.post("/graphql", json=body, headers=alice)

    [error] = answer.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert "sha256Hash" in error["message"]
