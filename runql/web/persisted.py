"""Persisted documents: which text a request runs, before strawberry parses anything.

Two modes, each a switch of its own (``runql.settings``), both in docs/http.md:

* **Automatic persisted queries**, Apollo's protocol (``RUNQL_APQ``, on by default): a
  request whose ``extensions.persistedQuery`` is ``{"version": 1, "sha256Hash": H}`` and
  has no ``query`` runs the text stored under ``H``, or answers ``PersistedQueryNotFound``;
  the client then sends ``query`` with the same extension, the server checks that ``H`` is
  its SHA-256 (``provided sha does not match query`` otherwise), runs it and stores it once
  it parsed and validated (as Apollo Server does: a text that fails is not kept). The store
  is an LRU of ``RUNQL_APQ_CACHE_SIZE`` texts held by the process's view, so every request
  the process serves shares it. Switched off, any ``persistedQuery`` answers
  ``PersistedQueryNotSupported`` and Apollo's link falls back to sending the query.
* **Trusted documents** (``RUNQL_TRUSTED_DOCUMENTS``, a manifest: ``runql.web.manifest``):
  only the manifest's documents run, named by id (``documentId`` in the body or the URL,
  as GraphQL Code Generator's client preset sends it, or ``persistedQuery.sha256Hash``,
  as Apollo's link does) or sent as their exact text. Anything else is refused here,
  before parsing: ``PERSISTED_QUERY_NOT_IN_LIST`` for an unknown id,
  ``QUERY_NOT_IN_SAFELIST`` for another text. With
  ``RUNQL_TRUSTED_DOCUMENTS_ADMIN_BYPASS`` an ADMIN token runs any document (and APQ
  works for it as without a manifest); the APQ store never makes a document trusted.

:meth:`PersistedDocuments.resolve` is the one decision, used by the HTTP view and (texts
only) by the WebSocket handlers. Refusals are :class:`Refusal`: the GraphQL error, and the
status ``application/graphql-response+json`` answers with (the not-found and
not-supported answers stay 200 whatever the media type, as Apollo's server answers them:
older Apollo clients turn persisted queries off for good on a 400).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from runql.error_codes import ErrorCode
from runql.settings import Settings
from runql.web.manifest import TrustedDocuments, load_manifest

APQ_VERSION = 1
#: ``Cache-Control`` of every refusal here: a CDN that kept a GET's "not found" would
#: answer it to every client after the document was registered.
NO_CACHE = "private, no-cache, must-revalidate"
#: The request fields that name a trusted document by id, besides ``persistedQuery``
#: (GraphQL Code Generator's client preset and the GraphQL-over-HTTP persisted documents
#: draft send ``documentId``).
ID_FIELDS = ("documentId",)

#: Status with ``application/graphql-response+json`` (``application/json`` answers 200).
_STATUS = {
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: 200,
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED: 200,
    ErrorCode.PERSISTED_QUERY_NOT_IN_LIST: 404,
    ErrorCode.QUERY_NOT_IN_SAFELIST: 403,
}


class Refusal(Exception):
    """The request names no document runql will run; ``error`` says why."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})
        self.status = _STATUS.get(code, 400)


def status_for(codes: set[object]) -> int | None:
    """The ``application/graphql-response+json`` status of a refusal's error codes, or
    None when they are not a refusal of this module."""
    if len(codes) == 1:
        return _STATUS.get(next(iter(codes)))  # type: ignore[call-overload]
    return None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Resolved:
    """The text to run (None: the request has none; strawberry answers that), and the
    APQ hash to store it under once it ran (None: nothing to store)."""

    query: str | None
    register: str | None = None


class ApqStore:
    """The process's APQ texts by hash, least recently used first out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._texts: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, sha256: str) -> str | None:
        text = self._texts.get(sha256)
        if text is not None:
            self._texts.move_to_end(sha256)
        return text

    def put(self, sha256: str, text: str) -> None:
        self._texts[sha256] = text
        self._texts.move_to_end(sha256)
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)


class PersistedDocuments:
    """APQ and trusted documents for one process (one per app: ``runql.web.app``)."""

    def __init__(
        self,
        *,
        apq: bool = True,
        apq_cache_size: int = 1000,
        trusted: TrustedDocuments | None = None,
        admin_bypass: bool = False,
    ) -> None:
        self.apq = ApqStore(apq_cache_size) if apq else None
        self.trusted = trusted
        self.admin_bypass = admin_bypass

    @classmethod
    def from_settings(cls, settings: Settings) -> PersistedDocuments:
        """Reads the manifest when one is set (``ManifestError`` when it is unusable)."""
        trusted = load_manifest(settings.trusted_documents) if settings.trusted_documents else None
        return cls(
            apq=settings.apq,
            apq_cache_size=settings.apq_cache_size,
            trusted=trusted,
            admin_bypass=settings.trusted_documents_admin_bypass,
        )

    def resolve(
        self,
        query: str | None,
        extensions: dict[str, Any] | None,
        document_id: object = None,
        *,
        admin: bool = False,
    ) -> Resolved:
        """The text a request runs; raises :class:`Refusal`."""
        sha256 = self._persisted_hash(extensions)
        named = sha256 if sha256 is not None else _document_id(document_id)
        if self.trusted is not None:
            text = self._trusted(query, named)
            if text is not None:
                return Resolved(text)
            if not (admin and self.admin_bypass):
                if named is not None:
                    raise _not_in_list(named)
                if query is not None:
                    raise Refusal(
                        ErrorCode.QUERY_NOT_IN_SAFELIST,
                        "the document is not one of the trusted documents "
                        "(RUNQL_TRUSTED_DOCUMENTS); send a trusted document's id or its exact text",
                    )
                return Resolved(None)
        if sha256 is not None:
            return self._automatic(query, sha256)
        if named is not None and query is None:
            if self.trusted is not None:
                raise _not_in_list(named)
            raise Refusal(
                ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
                "documentId: this server has no trusted documents (RUNQL_TRUSTED_DOCUMENTS); "
                "send the query",
            )
        return Resolved(query)

    def allows_text(self, query: str, *, admin: bool = False) -> GraphQLError | None:
        """For a transport that carries texts only (WebSocket): None when ``query`` may run,
        else the refusal's error."""
        try:
            self.resolve(query, None, admin=admin)
        except Refusal as refusal:
            return refusal.error
        return None

    def remember(self, resolved: Resolved) -> None:
        """Stores an APQ registration once its text ran (parsed, validated, executed)."""
        if resolved.register is not None and resolved.query is not None and self.apq is not None:
            self.apq.put(resolved.register, resolved.query)

    def _persisted_hash(self, extensions: dict[str, Any] | None) -> str | None:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return None
        if self.apq is None and self.trusted is None:
            raise Refusal(ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported")
        if not isinstance(persisted, dict) or persisted.get("version") != APQ_VERSION:
            raise Refusal(
                ErrorCode.PERSISTED_QUERY_VERSION_NOT_SUPPORTED,
                "Unsupported persisted query version",
            )
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not sha256:
            raise Refusal(
                ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                "extensions.persistedQuery.sha256Hash must be a non-empty string",
            )
        return sha256

    def _trusted(self, query: str | None, named: str | None) -> str | None:
        assert self.trusted is not None
        if named is not None:
            text = self.trusted.by_id.get(named)
            if text is not None and query is not None and query != text:
                raise Refusal(
                    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                    f"the query is not the text of trusted document "
                    f"{self.trusted.describe(named)}; send the id alone",
                )
            if text is not None:
                return text
        return query if query is not None and query in self.trusted.texts else None

    def _automatic(self, query: str | None, sha256: str) -> Resolved:
        if self.apq is None:
            raise Refusal(ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported")
        if query is None:
            text = self.apq.get(sha256)
            if text is None:
                raise Refusal(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return Resolved(text)
        if sha256_hex(query) != sha256:
            raise Refusal(
                ErrorCode.PERSISTED_QUERY_HASH_MISMATCH, "provided sha does not match query"
            )
        return Resolved(query, register=sha256)


def _document_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Refusal(
            ErrorCode.PERSISTED_QUERY_NOT_IN_LIST, "documentId must be a non-empty string"
        )
    return value.removeprefix("sha256:")


def _not_in_list(document_id: str) -> Refusal:
    return Refusal(
        ErrorCode.PERSISTED_QUERY_NOT_IN_LIST,
        f"Persisted query '{document_id}' not found in the trusted documents "
        "(RUNQL_TRUSTED_DOCUMENTS)",
    )


def document_id_of(fields: Any) -> object:
    """The id a request body or query string names its document by (``ID_FIELDS``)."""
    if not hasattr(fields, "get"):
        return None
    for name in ID_FIELDS:
        value = fields.get(name)
        if value is not None:
            return value
    return None


__all__ = [
    "APQ_VERSION",
    "NO_CACHE",
    "ApqStore",
    "PersistedDocuments",
    "Refusal",
    "Resolved",
    "document_id_of",
    "http_document_id",
    "names_a_document",
    "sha256_hex",
    "status_for",
]


def names_a_document(params: Any) -> bool:
    """Whether a GET's query string names its document without ``query``."""
    return "extensions" in params or any(name in params for name in ID_FIELDS)


async def http_document_id(
    request: Any, query: str | None, extensions: dict[str, Any] | None
) -> object:
    """The ``documentId`` of an HTTP request that sent neither ``query`` nor
    ``persistedQuery``: from the URL of a GET, else from the JSON body (strawberry keeps
    only the fields of the GraphQL-over-HTTP request; the body it read is cached)."""
    if query is not None or "persistedQuery" in (extensions or {}):
        return None
    if request.method == "GET":
        return document_id_of(request.query_params)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return document_id_of(body) if isinstance(body, dict) else None
